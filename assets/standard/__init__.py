"""The ``standard`` asset bundle (Teraslice's standard-assets 2.1.2, in Python).

Registry layout (docs/assets.md): :data:`ASSETS` maps each ``_op`` to its class; each class
declares its ``Options``. ``data_generator`` and ``stdout`` are the built-in operations of
the same name. The ts-transforms operations (``extraction``, ``match``, ``selection``,
``post_process``, ``output``, ``transform``) are not implemented yet: they are registered as
processors whose options always fail, so a job naming one is refused at submit with a
message saying so. See docs/standard-asset.md for every operation's status.
"""

from __future__ import annotations

from typing import Any

from teraslice_k8s.runtime.operations.data_generator import DataGenerator
from teraslice_k8s.runtime.operations.simple import Stdout

from .batches import (
    CountUnique,
    DataWindowToArray,
    Dedupe,
    GroupBy,
    JsonParser,
    SampleExact,
    SampleRandom,
    Sort,
)
from .conditional import CountByField, DropFieldConditional
from .es_sample import SampleExactEsPercent
from .fields import (
    AddShortId,
    CopyField,
    CopyMetadataField,
    DropField,
    RemoveEmptyFields,
    SetField,
    SetFieldConditional,
)
from .filters import Filter, FilterByDate, FilterByRequiredFields, FilterByUnknownFields
from .keys import AddKey, RemoveKey, SetKey
from .routed_sender import RoutedSender
from .routing import DateRouter, DebugRoutes, FieldRouter, HashRouter, KeyRouter
from .transforms import TRANSFORM_OPS, NotImplementedTransform
from .windows import Accumulate, AccumulateByKey, Window

_PROCESSORS: dict[str, Any] = {
    "accumulate": Accumulate,
    "accumulate_by_key": AccumulateByKey,
    "add_key": AddKey,
    "add_short_id": AddShortId,
    "copy_field": CopyField,
    "copy_metadata_field": CopyMetadataField,
    "count_by_field": CountByField,
    "count_unique": CountUnique,
    "data_window_to_array": DataWindowToArray,
    "date_router": DateRouter,
    "debug_routes": DebugRoutes,
    "dedupe": Dedupe,
    "drop_field": DropField,
    "drop_field_conditional": DropFieldConditional,
    "field_router": FieldRouter,
    "filter": Filter,
    "filter_by_date": FilterByDate,
    "filter_by_required_fields": FilterByRequiredFields,
    "filter_by_unknown_fields": FilterByUnknownFields,
    "group_by": GroupBy,
    "hash_router": HashRouter,
    "json_parser": JsonParser,
    "key_router": KeyRouter,
    "remove_empty_fields": RemoveEmptyFields,
    "remove_key": RemoveKey,
    "routed_sender": RoutedSender,
    "sample_exact": SampleExact,
    "sample_exact_es_percent": SampleExactEsPercent,
    "sample_random": SampleRandom,
    "set_field": SetField,
    "set_field_conditional": SetFieldConditional,
    "set_key": SetKey,
    "sort": Sort,
    "stdout": Stdout,
    "window": Window,
}

ASSETS: dict[str, dict[str, Any]] = {
    "data_generator": {"Reader": DataGenerator},
    **{name: {"Processor": cls} for name, cls in _PROCESSORS.items()},
    **{name: {"Processor": NotImplementedTransform.named(name)} for name in TRANSFORM_OPS},
}

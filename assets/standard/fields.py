"""Field operations (map processors): set_field, set_field_conditional, drop_field, copy_field,
copy_metadata_field, remove_empty_fields, add_short_id."""

from __future__ import annotations

import random
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.data_entity import DataEntity
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import (
    MISSING,
    MapProcessor,
    each_record,
    js_text,
    map_key,
    path_get,
    path_has,
    path_set,
    required_string,
)

RequiredString = Annotated[str, BeforeValidator(required_string)]


def _field(default: Any = None) -> Any:
    # validate_default: a missing required option gets Teraslice's message, not pydantic's.
    return Field(default, validate_default=True)


class SetFieldOptions(OpOptions):
    field: RequiredString = _field()
    value: Any = _field()
    overwrite: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("null cannot be null")
        return value


class SetField(MapProcessor):
    Options: ClassVar[type[OpOptions]] = SetFieldOptions
    options: SetFieldOptions

    def _set(self, record: Any) -> Any:
        opts = self.options
        if opts.overwrite or not path_has(record, opts.field):
            path_set(record, opts.field, opts.value)
        return record

    def map(self, record: Any) -> Any:
        return each_record(record, self._set)


class SetFieldConditionalOptions(OpOptions):
    conditional_field: RequiredString = _field("")
    conditional_values: list[Any] = Field(default_factory=list)
    set_field: RequiredString = _field("")
    value: Any = None

    @field_validator("conditional_values", mode="before")
    @classmethod
    def _array(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError('Parameter "conditional_values" must be an array')
        return value


class SetFieldConditional(MapProcessor):
    Options: ClassVar[type[OpOptions]] = SetFieldConditionalOptions
    options: SetFieldConditionalOptions

    async def initialize(self) -> None:
        self._values = {map_key(v) for v in self.options.conditional_values}

    def map(self, record: Any) -> Any:
        opts = self.options
        value = record.get(opts.conditional_field, MISSING)
        if value is not MISSING and map_key(value) in self._values:
            path_set(record, opts.set_field, opts.value)
        return record


def _field_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"Field must be a string or an array of string, received {js_text(value)}")


class DropFieldOptions(OpOptions):
    field: Annotated[list[str], BeforeValidator(_field_list)] = _field()


class DropField(MapProcessor):
    Options: ClassVar[type[OpOptions]] = DropFieldOptions
    options: DropFieldOptions

    def _drop(self, record: Any) -> Any:
        for name in self.options.field:
            record.pop(name, None)
        return record

    def map(self, record: Any) -> Any:
        return each_record(record, self._drop)


class CopyFieldOptions(OpOptions):
    source: RequiredString = _field()
    destination: RequiredString = _field()
    delete_source: bool = False


class CopyField(MapProcessor):
    Options: ClassVar[type[OpOptions]] = CopyFieldOptions
    options: CopyFieldOptions

    def _copy(self, record: Any) -> Any:
        opts = self.options
        value = path_get(record, opts.source)
        if value is not MISSING and value is not None:
            path_set(record, opts.destination, value)
        if opts.delete_source:
            record.pop(opts.source, None)
        return record

    def map(self, record: Any) -> Any:
        return each_record(record, self._copy)


class CopyMetadataFieldOptions(OpOptions):
    destination: RequiredString = _field()
    meta_key: RequiredString = "_key"


class CopyMetadataField(MapProcessor):
    """``record[destination] = metadata[meta_key]``; an absent (or null) metadata value removes
    the field (JavaScript sets it to ``undefined``, which no output shows)."""

    Options: ClassVar[type[OpOptions]] = CopyMetadataFieldOptions
    options: CopyMetadataFieldOptions

    def map(self, record: Any) -> Any:
        record = DataEntity.make(record)
        value = record.get_metadata(self.options.meta_key)
        if value is None:
            record.pop(self.options.destination, None)
        else:
            record[self.options.destination] = value
        return record


class RemoveEmptyFieldsOptions(OpOptions):
    """No options."""


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool | int | float):
        return False
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, list | dict):
        return len(value) == 0
    return False


class RemoveEmptyFields(MapProcessor):
    Options: ClassVar[type[OpOptions]] = RemoveEmptyFieldsOptions

    def map(self, record: Any) -> Any:
        for key in [k for k, v in record.items() if _empty(v)]:
            del record[key]
        return record


DICTIONARIES = {
    "number": "0123456789",
    "alpha": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alpha_lower": "abcdefghijklmnopqrstuvwxyz",
    "alpha_upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alphanum": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alphanum_lower": "0123456789abcdefghijklmnopqrstuvwxyz",
    "alphanum_upper": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "hex": "0123456789abcdef",
}


class AddShortIdOptions(OpOptions):
    field: RequiredString = _field()
    length: Any = 10
    dictionary: Any = "alphanum"
    seed: int | None = Field(None, description="ours: seed the generator (tests)")

    @field_validator("length", mode="before")
    @classmethod
    def _length(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 16:
            raise ValueError("number must be an integer between 2 and 16")
        return value

    @field_validator("dictionary", mode="before")
    @classmethod
    def _dictionary(cls, value: Any) -> Any:
        if value not in DICTIONARIES:
            names = ",".join(DICTIONARIES)
            raise ValueError(f"dictionary value must be one of {names}.  Input was {js_text(value)}")
        return value


class AddShortId(MapProcessor):
    Options: ClassVar[type[OpOptions]] = AddShortIdOptions
    options: AddShortIdOptions

    async def initialize(self) -> None:
        self._random = random.Random(self.options.seed)
        self._chars = DICTIONARIES[self.options.dictionary]

    def _add(self, record: Any) -> Any:
        record[self.options.field] = "".join(self._random.choices(self._chars, k=self.options.length))
        return record

    def map(self, record: Any) -> Any:
        return each_record(record, self._add)

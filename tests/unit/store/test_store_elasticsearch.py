"""The store contract on Elasticsearch, plus what only the Elasticsearch store promises.

Against a real server when ``TEST_ELASTICSEARCH_URL`` is set (marker ``elasticsearch``), and
always against the HTTP emulator in ``es_emulator.py`` (which checks the store's requests and
response handling, not Elasticsearch itself). Every test uses its own cluster name, and its
indices are deleted afterwards.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from es_emulator import Emulator, running_emulator
from store_contract import Opener, StoreContract, job

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.store.base import Page, StoreError
from teraslice_k8s.store.elasticsearch import ElasticsearchStore
from teraslice_k8s.store.es_client import make_client

ES_URL = os.environ.get("TEST_ELASTICSEARCH_URL", "")
SMALL = {
    name: {"number_of_shards": 1, "number_of_replicas": 0}
    for name in ("jobs", "execution", "state", "analytics")
}


def _opener(url: str) -> Iterator[Opener]:
    cluster = f"ts-test-{uuid.uuid4().hex[:12]}"
    yield functools.partial(ElasticsearchStore, url, cluster, index_settings=SMALL)
    client = make_client(url)
    for suffix in ("jobs", "ex", "state", "analytics"):
        client.indices.delete(index=f"{cluster}__{suffix}", ignore_unavailable=True)
    client.close()


@pytest.fixture
def store(store_opener: Opener) -> Iterator[ElasticsearchStore]:
    opened = store_opener()
    assert isinstance(opened, ElasticsearchStore)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, Emulator]]:
    with running_emulator() as served:
        yield served


@pytest.mark.elasticsearch
@pytest.mark.skipif(not ES_URL, reason="TEST_ELASTICSEARCH_URL is not set: no Elasticsearch to test against")
class TestElasticsearchContract(StoreContract):
    @pytest.fixture
    def store_opener(self) -> Iterator[Opener]:
        yield from _opener(ES_URL)


class TestElasticsearchContractOnEmulator(StoreContract):
    @pytest.fixture
    def store_opener(self, emulator: tuple[str, Emulator]) -> Iterator[Opener]:
        yield from _opener(emulator[0])


def test_indices_have_teraslice_names_and_explicit_mappings(emulator: tuple[str, Emulator]) -> None:
    url, state = emulator
    with ElasticsearchStore(url, "mapped", index_settings=SMALL) as store:
        assert store.index_names == ("mapped__jobs", "mapped__ex", "mapped__state", "mapped__analytics")
        # a second store on the same cluster finds the indices and creates nothing
        ElasticsearchStore(url, "mapped").close()
    ex_mapping = state.indices["mapped__ex"].mappings
    assert ex_mapping["dynamic"] is False
    assert ex_mapping["properties"]["_status"] == {"type": "keyword"}
    assert ex_mapping["properties"]["metadata"] == {"type": "object", "enabled": False}
    assert state.indices["mapped__state"].mappings["properties"] == {
        "ex_id": {"type": "keyword"},
        "slice_id": {"type": "keyword"},
        "slicer_id": {"type": "keyword"},
        "state": {"type": "keyword"},
        "error": {"type": "keyword", "ignore_above": 8191},
        "slicer_order": {"type": "integer"},
        "_created": {"type": "date"},
        "_updated": {"type": "date"},
    }


def test_sort_by_unindexed_field_is_invalid(emulator: tuple[str, Emulator]) -> None:
    with ElasticsearchStore(emulator[0], "unindexed", index_settings=SMALL) as store:
        store.create_job(job("a"))
        with pytest.raises(ValidationError) as caught:
            store.list_jobs(page=Page(sort="operations:asc"))
    assert caught.value.problems == (
        Problem("sort", 'cannot sort job records by "operations": it is not indexed'),
    )


def test_requests_ask_for_version_8_compatibility(emulator: tuple[str, Emulator]) -> None:
    # The emulator answers 400 to compatible-with=9 (as an Elasticsearch 8 server does).
    plain = Elasticsearch(emulator[0])
    with pytest.raises(StoreError) as caught:
        ElasticsearchStore(plain, "compat", startup_timeout=0)
    plain.close()
    # the first request is a HEAD (index exists?), so the 400 comes without a body
    assert str(caught.value) == "cannot create index compat__jobs: BadRequestError(400, 'None')"
    ElasticsearchStore(make_client(emulator[0]), "compat").close()


def test_unreachable_cluster_fails_after_startup_timeout() -> None:
    with pytest.raises(StoreError) as caught:
        ElasticsearchStore(make_client("http://127.0.0.1:9", max_retries=0), "down", startup_timeout=0)
    assert str(caught.value).startswith("cannot reach Elasticsearch to create down__jobs: ")


def test_invalid_cluster_name() -> None:
    with pytest.raises(
        ValueError, match="cluster name 'Bad/Name' is not a valid lowercase index name prefix"
    ):
        ElasticsearchStore("http://127.0.0.1:9", "Bad/Name")

"""Watch resumption after ``410 Gone`` against the real API server (issue 10 item 6).

A watch that resumes from a resourceVersion the server no longer holds (a master that was cut
off for longer than the watch cache's window) gets ``410 Gone`` from the real API server; the
object cache must list again at once (no retries, no fallback to polling) and go on watching
from the fresh list, seeing the changes made after it. The emulator test
(``tests/integration/test_k8s_backend_faults.py::test_expired_watch_relists``) injects the 410;
here the API server produces it: a namespace's Deployments are listed, one more is created,
etcd is compacted and the API server restarted (its watch cache starts over from a list newer
than the first one), so a watch from the first list's resourceVersion has expired for real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support.k8s_real import Cluster, wait_until
from support.k8s_stack import ApiServer
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, ObjectList, load_client_configuration
from teraslice_k8s.kubernetes.errors import Gone
from teraslice_k8s.kubernetes.state import CacheSettings, ObjectCache

pytestmark = pytest.mark.cluster

SELECTOR = "app.kubernetes.io/name=teraslice,test=watch-resumption"


def deployment(name: str) -> dict[str, Any]:
    """A worker-less Deployment (0 replicas: the kubelet runs nothing) the cache selects."""
    labels = {"app.kubernetes.io/name": "teraslice", "test": "watch-resumption", "app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "teraslice-k8s:dev"}]},
            },
        },
    }


class StaleFirstList(KubeApi):
    """The real API, except that its first Deployment list reports ``stale`` as its
    resourceVersion, as a master's cache holds after a long disconnection: the watch that
    follows resumes from it and the real server answers 410."""

    def __init__(self, stale: str, *args: Any) -> None:
        super().__init__(*args)
        self.stale: str | None = stale

    def list(self, kind: Kind, label_selector: str) -> ObjectList:
        listing = super().list(kind, label_selector)
        if kind is Kind.DEPLOYMENT and self.stale is not None:
            stale, self.stale = self.stale, None
            return ObjectList(listing.items, stale)
        return listing


def compact_etcd(apiserver: ApiServer) -> None:
    """Compact etcd up to its current revision (its HTTP gateway; the API server's own
    compaction runs every 5 minutes), so no watch can be served from older history there."""
    (etcd,) = [a.split("=", 1)[-1] for a in apiserver.argv if "127.0.0.1" in a and a.startswith("http")]
    with httpx.Client(base_url=etcd, timeout=10) as etcd_client:
        header = etcd_client.post("/v3/kv/range", json={"key": "AA=="}).json()["header"]
        response = etcd_client.post(
            "/v3/kv/compaction", json={"revision": header["revision"], "physical": True}
        )
        assert response.status_code == 200, response.text


@dataclass
class Expired:
    namespace: str
    #: A resourceVersion of this namespace's Deployments that the API server no longer serves.
    resource_version: str


@pytest.fixture(scope="module")
def expired(k8s_cluster: Cluster) -> Iterator[Expired]:
    """A namespace with the Deployment ``before`` listed at a resourceVersion that then
    expired: ``during`` was created after that list, etcd compacted, and the API server
    restarted (its watch cache starts over from a fresh list, newer than that version)."""
    apiserver = ApiServer(k8s_cluster)
    if not apiserver.available:
        pytest.skip("only a k8s-real control plane can be restarted by the test")
    with k8s_cluster.namespace("ts-watch") as namespace:
        api = KubeApi(
            ApiSettings(namespace=namespace), load_client_configuration(kubeconfig=k8s_cluster.kubeconfig)
        )
        try:
            api.create(deployment("before"))
            old = api.list(Kind.DEPLOYMENT, SELECTOR).resource_version
            api.create(deployment("during"))
            apiserver.stop()
            try:
                compact_etcd(apiserver)
            finally:
                apiserver.start()
        finally:
            api.close()
        yield Expired(namespace, old)


def client(k8s_cluster: Cluster, namespace: str, stale: str) -> StaleFirstList:
    return StaleFirstList(
        stale, ApiSettings(namespace=namespace), load_client_configuration(kubeconfig=k8s_cluster.kubeconfig)
    )


def test_the_real_server_answers_an_expired_watch_with_410(k8s_cluster: Cluster, expired: Expired) -> None:
    api = client(k8s_cluster, expired.namespace, expired.resource_version)
    try:
        stream = api.watch(Kind.DEPLOYMENT, SELECTOR, expired.resource_version, timeout=10)
        with pytest.raises(Gone) as info:
            list(stream)
    finally:
        api.close()
    assert info.value.status == 410
    assert "resource version expired" in str(info.value), str(info.value)


def test_the_cache_lists_again_after_a_410_and_keeps_watching(
    k8s_cluster: Cluster, expired: Expired, caplog: pytest.LogCaptureFixture
) -> None:
    api = client(k8s_cluster, expired.namespace, expired.resource_version)
    changed = threading.Event()
    cache = ObjectCache(
        api,
        Kind.DEPLOYMENT,
        SELECTOR,
        CacheSettings(watch_timeout=30.0, poll_delay=60.0),
        lambda kind, old, new: changed.set(),
    )
    caplog.set_level(logging.INFO, logger="teraslice_k8s.kubernetes.state")
    cache.start()
    try:
        assert cache.wait_synced(30)
        # The first watch resumed from the expired version: the server's 410 made the cache
        # list again at once (the second list), then watch from that list's version.
        wait_until(lambda: api.calls().get(("watch", "apps/deployments"), 0) >= 2, 60, "the second watch")
        assert api.calls()[("list", "apps/deployments")] == 2
        assert "watch of Deployment expired (410); listing again" in caplog.text
        assert "polling every" not in caplog.text  # a 410 is not a failed watch
        assert {d["metadata"]["name"] for d in cache.items()} == {"before", "during"}

        # Changes after the relist arrive through the watch, with no further list.
        api.create(deployment("after"))
        wait_until(
            lambda: {d["metadata"]["name"] for d in cache.items()} == {"before", "during", "after"},
            60,
            "the Deployment created after the 410 in the cache",
        )
        api.delete(Kind.DEPLOYMENT, "before", propagation="Background")
        wait_until(
            lambda: {d["metadata"]["name"] for d in cache.items()} == {"during", "after"},
            60,
            "the deleted Deployment gone from the cache",
        )
        assert api.calls()[("list", "apps/deployments")] == 2
        assert changed.is_set()
    finally:
        cache.stop()
        api.close()

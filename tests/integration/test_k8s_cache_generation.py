"""ObjectCache.generation: bumped by every change a list or watch brings, before listeners hear
of it, and by nothing else (what the master's /cluster/state can key its rendered body by)."""

from __future__ import annotations

import threading
import time
from typing import Any

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import NAMESPACE
from teraslice_k8s.kubernetes.api import Kind, KubeApi
from teraslice_k8s.kubernetes.state import CacheSettings, ObjectCache

SELECTOR = "app.kubernetes.io/name=teraslice"
TIMEOUT = 10.0


def pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "teraslice"}},
        "status": {"phase": phase},
    }


class Seen:
    """Records the cache's generation as each listener call sees it."""

    def __init__(self) -> None:
        self.cache: ObjectCache | None = None
        self.generations: list[int] = []
        self.cond = threading.Condition()

    def __call__(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        assert self.cache is not None
        with self.cond:
            self.generations.append(self.cache.generation)
            self.cond.notify_all()

    def wait(self, count: int) -> list[int]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.generations) >= count, TIMEOUT), self.generations
            return list(self.generations)


def test_relists_bump_the_generation_only_when_something_changed(
    api: KubeApi, emulator: EmulatorThread
) -> None:
    seen = Seen()
    cache = ObjectCache(api, Kind.POD, SELECTOR, CacheSettings(watch=False), seen)
    seen.cache = cache
    assert cache.generation == 0
    cache.relist()  # nothing there: no change
    assert cache.generation == 0
    emulator.apply("v1/pods", NAMESPACE, pod("a"))
    emulator.apply("v1/pods", NAMESPACE, pod("b"))
    cache.relist()  # two changes from one list: one new generation, seen by both notifications
    assert cache.generation == 1
    assert seen.generations == [1, 1]
    cache.relist()  # same resource versions: unchanged
    assert cache.generation == 1
    emulator.apply("v1/pods", NAMESPACE, pod("a", "Succeeded"))
    cache.relist()
    assert cache.generation == 2
    emulator.remove("v1/pods", NAMESPACE, "b")
    cache.relist()
    assert cache.generation == 3
    assert [p["metadata"]["name"] for p in cache.items()] == ["a"]


def test_each_watched_change_bumps_the_generation_before_listeners_hear_of_it(
    api: KubeApi, emulator: EmulatorThread
) -> None:
    seen = Seen()
    cache = ObjectCache(api, Kind.POD, SELECTOR, CacheSettings(resync=300.0, watch_timeout=30.0), seen)
    seen.cache = cache
    cache.start()
    try:
        assert cache.wait_synced(TIMEOUT)
        watching = threading.Event()
        deadline = time.monotonic() + TIMEOUT
        while not any(method == "WATCH" for method, _ in emulator.calls()):  # events need a watch
            assert time.monotonic() < deadline, "the cache did not start watching"
            watching.wait(0.02)
        start = cache.generation
        emulator.apply("v1/pods", NAMESPACE, pod("a"))
        emulator.apply("v1/pods", NAMESPACE, pod("a", "Failed"))
        emulator.remove("v1/pods", NAMESPACE, "a")
        assert seen.wait(3) == [start + 1, start + 2, start + 3]
        assert cache.generation == start + 3
    finally:
        cache.stop()


def test_backend_state_version_follows_the_pod_cache(
    make_backend: Any, emulator: EmulatorThread, events: Any
) -> None:
    """KubernetesBackend.state_version (what /cluster/state is keyed by): never equal before
    start() (each call lists afresh); after it, equal until a pod changes."""
    backend = make_backend()
    assert backend.state_version() != backend.state_version()
    backend.start(events)
    version = backend.state_version()
    assert backend.state_version() == version
    worker = pod("worker-1")
    worker["metadata"]["labels"]["app.kubernetes.io/instance"] = backend.instance
    emulator.apply("v1/pods", NAMESPACE, worker)
    backend._caches[Kind.POD].relist()  # what the watch brings too, without waiting for it
    assert backend.state_version() != version

"""ObjectCache: one list + one watch per kind, resync, polling, against the emulator."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import NAMESPACE
from teraslice_k8s.kubernetes.api import Kind, KubeApi
from teraslice_k8s.kubernetes.state import CacheSettings, ObjectCache

PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
SELECTOR = "app.kubernetes.io/name=teraslice"
TIMEOUT = 10.0

Change = tuple[str | None, str | None]


def pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "teraslice"}},
        "status": {"phase": phase},
    }


class Changes:
    def __init__(self) -> None:
        self._queue: queue.Queue[Change] = queue.Queue()

    def __call__(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        name = (old or new or {}).get("metadata", {}).get("name")
        self._queue.put((None if old is None else name, None if new is None else name))

    def next(self) -> Change:
        try:
            return self._queue.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no change within {TIMEOUT}s") from None


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
def make_cache(api: KubeApi, changes: Changes) -> Iterator[Any]:
    caches: list[ObjectCache] = []

    def make(settings: CacheSettings) -> ObjectCache:
        cache = ObjectCache(api, Kind.POD, SELECTOR, settings, changes)
        caches.append(cache)
        cache.start()
        assert cache.wait_synced(TIMEOUT)
        return cache

    yield make
    for cache in caches:
        cache.stop()


def test_lists_once_then_follows_the_watch(
    make_cache: Any, emulator: EmulatorThread, changes: Changes
) -> None:
    emulator.apply("v1/pods", NAMESPACE, pod("a"))
    emulator.clear_log()
    cache = make_cache(CacheSettings(resync=300.0, watch_timeout=30.0))
    assert changes.next() == (None, "a")  # from the list
    emulator.apply("v1/pods", NAMESPACE, pod("b"))
    assert changes.next() == (None, "b")
    emulator.apply("v1/pods", NAMESPACE, pod("a", "Failed"))
    assert changes.next() == ("a", "a")
    emulator.remove("v1/pods", NAMESPACE, "b")
    assert changes.next() == ("b", None)
    assert [p["status"]["phase"] for p in cache.items()] == ["Failed"]
    assert emulator.calls() == [("GET", PODS), ("WATCH", PODS)]
    assert all(r.query["labelSelector"] == SELECTOR for r in emulator.requests)


def test_resync_catches_a_missed_event(make_cache: Any, emulator: EmulatorThread, changes: Changes) -> None:
    emulator.apply("v1/pods", NAMESPACE, pod("a"))
    cache = make_cache(CacheSettings(resync=0.2, watch_timeout=30.0))
    assert changes.next() == (None, "a")
    emulator.remove("v1/pods", NAMESPACE, "a", silent=True)  # the watch never hears of it
    assert changes.next() == ("a", None)  # the periodic relist does
    assert cache.items() == []


def test_polling_only_mode_never_watches(make_cache: Any, emulator: EmulatorThread, changes: Changes) -> None:
    emulator.clear_log()
    make_cache(CacheSettings(watch=False, poll_delay=0.05))
    emulator.apply("v1/pods", NAMESPACE, pod("a"))
    assert changes.next() == (None, "a")
    assert {method for method, _ in emulator.calls()} == {"GET"}


def test_unchanged_relists_report_nothing(
    make_cache: Any, emulator: EmulatorThread, changes: Changes
) -> None:
    emulator.apply("v1/pods", NAMESPACE, pod("a"))
    cache = make_cache(CacheSettings(watch=False, poll_delay=0.05))
    assert changes.next() == (None, "a")
    cache.relist()
    cache.relist()
    emulator.apply("v1/pods", NAMESPACE, pod("b"))
    assert changes.next() == (None, "b")  # not a repeat of "a"

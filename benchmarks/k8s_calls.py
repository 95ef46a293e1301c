"""Kubernetes API calls per execution lifecycle (issue 4), counted against the emulator.

Phases: start (controller + workers), running (pods come up, cluster state is read many
times), completed (the controller Job succeeds), cleanup (stop, the objects disappear). The
observation cost (one list + one watch per kind: pods, Jobs, Deployments) is paid once per
master, not per execution; it is printed separately. Teraslice 3.18 for comparison: start 4
calls (POST Job, POST Service, list Jobs, POST Deployment), stop 2 (list Jobs, DELETE), plus
a pod list every ``node_state_interval`` (5 s) for the whole cluster.

Then the steady state: ``--steady-executions`` (100) executions with ``--workers`` (10) worker
pods each, running, while the cluster state and execution ids are read every 10 ms for
``--steady-seconds`` (60): the calls per minute (only re-established watches: the pod cache
needs no call per pod).

Usage: ``.venv/bin/python benchmarks/k8s_calls.py [--workers N] [--state-reads N]
[--steady-executions N] [--steady-seconds S]``.

``--real``: the same lifecycle against a real API server (``shared/k8s-real`` started on free
ports with its process kubelet, as the ``cluster`` tests do): a master in this process (the API
module's own counters, :meth:`KubeApi.calls`) runs a job through its HTTP API whose controller
and workers are real pods; every request is counted, watches included. Needs root (the process
kubelet writes /etc/hosts); takes about a minute.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.k8s_emulator import EmulatorThread
from teraslice_k8s.backend.base import BackendEvent, EventKind
from teraslice_k8s.kubernetes.api import ApiSettings, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import worker_execution
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.models.job import validate_job

NAMESPACE = "ts-dev1"
EX_ID = "e76a0278-d9bc-4d78-bf14-431bcd97528c"
JOB_ID = "7ba9afb0-417a-4936-adc5-b15e31d1edd1"
EVENT_TIMEOUT = 10.0


def pod(name: str, component: str, host: int, *, ex: str = EX_ID, job: str = JOB_ID) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "teraslice",
        "app.kubernetes.io/instance": "ts-dev1",
        "app.kubernetes.io/component": component,
        "teraslice.terascope.io/exId": ex,
        "teraslice.terascope.io/jobId": job,
    }
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "teraslice:k8sdev"}]},
        "status": {"phase": "Running", "hostIP": f"10.0.0.{host}", "podIP": f"10.1.0.{host}"},
    }


def counted(emulator: EmulatorThread) -> Counter[str]:
    calls = Counter(
        f"{method} {path.rsplit('/namespaces/' + NAMESPACE, 1)[-1]}" for method, path in emulator.calls()
    )
    emulator.clear_log()
    return calls


def wait_until(condition: Callable[[], bool], what: str, timeout: float = EVENT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--state-reads", type=int, default=100)
    parser.add_argument("--real", action="store_true", help="count against a real API server (k8s-real)")
    parser.add_argument(
        "--steady-executions",
        type=int,
        default=100,
        help="executions running in the steady phase (0: skip it)",
    )
    parser.add_argument("--steady-seconds", type=float, default=60.0, help="length of the steady phase")
    args = parser.parse_args()
    if args.real:
        real(args.workers, args.state_reads)
        return

    config = parse_config(
        {
            "teraslice": {
                "name": "ts-dev1",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": NAMESPACE,
                "kubernetes_image": "teraslice:k8sdev",
            }
        }
    )
    job = validate_job(
        {
            "name": "bench",
            "workers": args.workers,
            "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
        },
        config,
    ).config
    execution = {**job, "job_id": JOB_ID, "ex_id": EX_ID, "_status": "scheduling"}
    events: queue.Queue[BackendEvent] = queue.Queue()

    def expect(kind: EventKind) -> None:
        while True:
            event = events.get(timeout=EVENT_TIMEOUT)
            if event.kind is kind:
                return

    with EmulatorThread() as emulator:
        emulator.apply("v1/configmaps", NAMESPACE, {"metadata": {"name": "teraslice-worker"}})
        api = KubeApi(ApiSettings(namespace=NAMESPACE), load_client_configuration(host=emulator.url))
        backend = KubernetesBackend(config, api, cache_settings=CacheSettings(watch_timeout=30.0))
        emulator.clear_log()
        phases: list[tuple[str, Counter[str]]] = []

        backend.start(events.put)
        wait_until(lambda: sum(m == "WATCH" for m, _ in emulator.calls()) == 3, "the three watches")
        phases.append(("observe (once per master)", counted(emulator)))

        backend.allocate_controller(execution)
        backend.allocate_workers(worker_execution(execution, config))
        phases.append(("start", counted(emulator)))

        names = [f"ts-wkr-bench-{i}" for i in range(args.workers)]
        emulator.apply("v1/pods", NAMESPACE, pod("ts-exc-bench-0", "execution_controller", 1))
        for i, name in enumerate(names):
            emulator.apply("v1/pods", NAMESPACE, pod(name, "worker", 2 + i % 3))
        # The pod cache catches up through the watch (no API call).
        wait_until(
            lambda: sum(len(n["active"]) for n in backend.cluster_state().values()) == args.workers + 1,
            "the pod cache to see every pod",
        )
        for _ in range(args.state_reads):
            backend.cluster_state()
            backend.execution_ids()
        phases.append(
            (f"running ({args.workers} workers, {args.state_reads} state reads)", counted(emulator))
        )

        job_name = "ts-exc-bench-7ba9afb0-417a"
        complete = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
        emulator.apply("batch/v1/jobs", NAMESPACE, {"metadata": {"name": job_name}, "status": complete})
        expect(EventKind.CONTROLLER_SUCCEEDED)
        phases.append(("completed", counted(emulator)))

        backend.scale_workers(EX_ID, "add", 2)
        phases.append(("scale (_workers?add=2)", counted(emulator)))

        backend.stop_execution(EX_ID)
        for name in ["ts-exc-bench-0", *names]:  # the garbage collector's part
            emulator.remove("v1/pods", NAMESPACE, name)
        expect(EventKind.GONE)
        # The stop is done once the API server lists nothing of the execution (one list per
        # kind, what the master's stop flow asks before writing `stopped`).
        assert EX_ID not in backend.execution_ids()
        phases.append(("cleanup", counted(emulator)))

        if args.steady_executions:
            steady = steady_running(emulator, backend, config, args)
        backend.close()

    total = 0
    for phase, calls in phases:
        count = sum(calls.values())
        if not phase.startswith("observe"):
            total += count
        print(f"{phase}: {count} calls")
        for call, n in sorted(calls.items()):
            print(f"    {n:4d}  {call}")
    print(f"per execution lifecycle (start -> running -> scale -> completed -> cleanup): {total} calls")
    if args.steady_executions:
        seconds, calls = steady
        count = sum(calls.values())
        per_pod = sum(n for call, n in calls.items() if "/pods/" in call)
        print(
            f"steady running, {args.steady_executions} executions x {args.workers} workers, "
            f"{seconds:.0f} s of state reads: {count} calls = {count * 60 / seconds:.1f} per minute, "
            f"{per_pod} per pod (goal: 0 per pod, watches only)"
        )
        for call, n in sorted(calls.items()):
            print(f"    {n:4d}  {call}")


def steady_running(
    emulator: EmulatorThread, backend: KubernetesBackend, config: Any, args: argparse.Namespace
) -> tuple[float, Counter[str]]:
    """``--steady-executions`` executions with ``--workers`` worker pods each, all running;
    then ``--steady-seconds`` of what a busy master does (cluster state and execution ids read
    every 10 ms): every API call in that time."""
    template = validate_job(
        {
            "name": "steady",
            "workers": args.workers,
            "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
        },
        config,
    ).config
    pods = 0
    for n in range(args.steady_executions):
        ex_id, job_id = f"{n:08x}-0000-4000-8000-00000000e000", f"{n:08x}-1111-4000-8000-00000000b000"
        execution = {**template, "job_id": job_id, "ex_id": ex_id, "_status": "scheduling"}
        backend.allocate_controller(execution)
        backend.allocate_workers(worker_execution(execution, config))
        labels = {"ex": ex_id, "job": job_id}
        emulator.apply("v1/pods", NAMESPACE, pod(f"ts-exc-steady-{n}", "execution_controller", 1, **labels))
        for i in range(args.workers):
            emulator.apply("v1/pods", NAMESPACE, pod(f"ts-wkr-steady-{n}-{i}", "worker", 2 + i % 3, **labels))
            pods += 1
        pods += 1
    wait_until(
        lambda: sum(len(n["active"]) for n in backend.cluster_state().values()) == pods,
        "the pod cache to see every steady pod",
        timeout=120.0,
    )
    emulator.clear_log()
    started = time.monotonic()
    while time.monotonic() - started < args.steady_seconds:
        backend.cluster_state()
        backend.execution_ids()
        time.sleep(0.01)  # the pace of the reads, not synchronisation
    return time.monotonic() - started, counted(emulator)


def real(workers: int, state_reads: int) -> None:
    """The lifecycle on k8s-real (see the module docstring)."""
    import tempfile

    from support.k8s_real import ProcessCluster, find_k8s_real
    from support.k8s_real import wait_until as wait
    from support.k8s_stack import master_in_process, objects_left, stack

    source = find_k8s_real()
    if source is None:
        raise SystemExit("no k8s-real found (K8S_REAL_SOURCE, ../shared/k8s-real or /work/shared/k8s-real)")
    plane = ProcessCluster(source, Path(tempfile.mkdtemp(prefix="k8s-calls-logs-")))
    cluster = plane.start()
    phases: list[tuple[str, Counter[str]]] = []
    try:
        with (
            cluster.namespace("ts-bench") as namespace,
            stack(cluster, namespace) as s,
            master_in_process(s) as master,
        ):
            last: Counter[tuple[str, str]] = Counter()

            def phase(name: str) -> None:
                nonlocal last
                now = Counter(master.backend.api_calls())
                phases.append((name, Counter({f"{v} {r}": n for (v, r), n in (now - last).items()})))
                last = now

            phase("observe (once per master)")
            job = {
                "name": "bench",
                "workers": workers,
                "operations": [
                    {"_op": "data_generator", "size": workers * 400, "slice_size": 100, "delay": 0.5},
                    {"_op": "noop"},
                ],
            }
            ex_id = master.http.post("/v1/jobs", json=job).json()["ex_id"]
            wait(
                lambda: len(s.running_pods(ex_id, "worker")) == workers,
                180,
                f"{workers} running worker pods",
            )
            phase("start (until every worker pod runs)")
            for _ in range(state_reads):
                master.http.get("/v1/cluster/state")
                master.http.get("/txt/workers")
            phase(f"running ({workers} workers, {state_reads} state + worker table reads)")
            wait(
                lambda: master.http.get(f"/v1/ex/{ex_id}").json()["_status"] == "completed",
                300,
                "completed",
            )
            wait(lambda: objects_left(s.api, ex_id) == [], 180, "nothing left")
            wait(lambda: master.backend.execution_ids() == set(), 60, "the master seeing nothing")
            phase("completed + cleanup (until nothing is left)")
    finally:
        plane.stop()
    total = 0
    for name, counts in phases:
        count = sum(counts.values())
        if not name.startswith("observe"):
            total += count
        print(f"{name}: {count} calls")
        for call, n in sorted(counts.items()):
            print(f"    {n:4d}  {call}")
    print(f"per execution lifecycle on a real API server: {total} calls (watch renewals included)")


if __name__ == "__main__":
    main()

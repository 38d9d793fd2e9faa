"""The Ray engine of `msmae extract --engine ray` (`run_extraction(engine="ray")`): the same per-source work as the
local process pool (`msmae.data.extract._extract_source`: same rows, part files and failure records), scheduled by
Ray on one machine or a cluster. Imported only on this path; Ray is the optional extra `msmae[cluster]`.

One Ray task per source video. Each Ray worker process keeps one MediaPipe graph across the tasks it runs (built on
its first task: `msmae.data.extract._worker_task`), so a worker costs one graph start-up, as a pool process does.
Tasks, not actors: when a worker process or a whole node dies, Ray runs its tasks again on any node with a free CPU
(`max_retries`), where a restarted actor would wait for room on its own share. A source whose worker dies on every
try is logged as failed, as the local pool does. Parts are written by the workers (atomically; a retried task
rewrites the same part), the failure log and the summary only by the driver (the caller of `run_tasks`).

What a run needs on a cluster: every node has msmae[video] installed (same version) and reaches the inputs and the
output folder at the same paths (a shared file system) or the output as an fsspec URL (s3://...).
"""

import logging
import os
import sys

logger = logging.getLogger(__name__)

# Tries of one source after its worker process or node died (kill, OOM, native crash, node loss).
MAX_RETRIES = 3


def _start(address, num_workers, quiet):
    """Connect to the cluster at `address`, or start a local Ray with `num_workers` CPUs that listens on 127.0.0.1
    only. Returns (ray module, whether this call started or joined Ray and so must shut it down)."""
    if address is None and "ray" not in sys.modules:
        # Read by Ray at import: a local Ray then binds to 127.0.0.1 instead of the machine's external address.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as error:
        raise ImportError("--engine ray needs Ray: pip install 'msmae[cluster]' (on every node of the cluster).") \
            from error
    if ray.is_initialized():  # the caller's own Ray session: use it, leave it running
        return ray, False
    options = dict(include_dashboard=False, log_to_driver=not quiet, logging_level=logging.WARNING)
    if address is None:
        ray.init(address="local", num_cpus=num_workers, _node_ip_address="127.0.0.1", **options)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConnectionError(
                f"Cannot join the Ray cluster at {address!r} ({error}): start it first (`ray start --head` on the "
                "head node, `ray start --address HEAD:6379` on the others), check the address and, where the "
                "cluster uses token authentication, that RAY_AUTH_TOKEN is set here too.") from error
    return ray, True


def _check_reachable(address, timeout=10.0):
    """Fail fast, naming the address, where nothing listens at HOST:PORT: Ray itself retries for minutes."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise ConnectionError(
            f"Cannot reach the Ray cluster at {address!r} ({error}): give --ray_address as HOST:PORT of the head "
            "node's GCS (6379 unless `ray start --head --port` said otherwise), start the cluster first (`ray start "
            "--head` on the head node, `ray start --address HEAD:6379` on the others), or leave --ray_address out "
            "for a Ray on this machine only.") from error


def run_tasks(tasks, work, failed, shared, num_workers, quiet, address=None):
    """Yield `work(*task, *shared)` for each task, as they finish, in Ray workers (the caller's per-source work:
    `msmae.data.extract._worker_task`); `failed(task, message)` stands for a task whose worker died on every try.
    `num_workers` tasks run at once (0: one per CPU of the cluster); `address`: the Ray cluster to join (None: a
    local Ray on this machine, shut down at the end)."""
    ray, owned = _start(address, max(num_workers, 1), quiet)
    try:
        if num_workers < 1:
            num_workers = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(work)
        shared = [ray.put(value) for value in shared]  # to the object store once, not with every task
        pending, in_flight = list(reversed(tasks)), {}  # pop() from the end keeps the sorted order
        try:
            while pending or in_flight:
                while pending and len(in_flight) < num_workers:  # bounded: ray.wait stays cheap on huge runs
                    task = pending.pop()
                    in_flight[remote.remote(*task, *shared)] = task
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                task = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as error:  # its worker died on every try (e.g. a native crash)
                    result = failed(task, f"the Ray worker died {MAX_RETRIES + 1} times while extracting "
                                                f"this video ({type(error).__name__})")
                yield result
        finally:
            for ref in in_flight:  # the run stopped early (a write error, Ctrl-C): drop what is queued
                ray.cancel(ref, force=True)
    finally:
        if owned:
            ray.shutdown()

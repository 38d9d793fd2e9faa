"""`msmae extract --engine ray --ray_address HEAD` on a real two-node Ray cluster: each node in a network namespace of
its own made by the test (a veth pair with private addresses 10.231.0.1/24 and 10.231.0.2/24 that exist only in
those namespaces, so Ray's ports, which listen on every interface of their namespace, are reachable from nowhere
else), the driver in the head's namespace, token authentication on. The cluster's rows equal the local engine's;
then the worker node's processes are killed with -9 in the middle of a run, which still finishes with every video
once. Everything the test started is killed by PID and the namespaces deleted at the end. Needs root and `ip`."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, alive, process_tree

pytest.importorskip("mediapipe")
pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'msmae[cluster]'")

BIN = Path(sys.executable).parent
HEAD_IP, WORKER_IP, PORT = "10.231.0.1", "10.231.0.2", 6379
VIDEOS = [SHARED_DATA / "pose-format-samples" / "test_video.mp4",
          *sorted((SHARED_DATA / "msl150" / "data" / "original_source").glob("*.mp4"))]


def run(*args, timeout=60, check=True):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result


def kill(pids):
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Cluster:
    """Two namespaces joined by a veth pair; a Ray head in one, a Ray worker node in the other (`ray start --block`,
    so each node's processes stay its descendants and can be killed by PID)."""

    def __init__(self, root):
        tag = f"{os.getpid() % 100000}"
        self.head_ns, self.worker_ns = f"msmae-h{tag}", f"msmae-w{tag}"
        self.root, self.nodes, self.seen = root, {}, {}
        token = secrets.token_hex(32)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "HOME": str(root / "home"),
                    "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
        self.env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # a cluster is refused with it
        (root / "home").mkdir()

    def network(self):
        run("ip", "netns", "add", self.head_ns)
        run("ip", "netns", "add", self.worker_ns)
        head_if, worker_if = f"vh{os.getpid() % 100000}", f"vw{os.getpid() % 100000}"
        run("ip", "link", "add", head_if, "type", "veth", "peer", "name", worker_if)
        for ns, interface, address in ((self.head_ns, head_if, HEAD_IP), (self.worker_ns, worker_if, WORKER_IP)):
            run("ip", "link", "set", interface, "netns", ns)
            run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", interface)
            run("ip", "-n", ns, "link", "set", interface, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def start_node(self, name, ns, *args):
        temp = self.root / name  # short: Ray's socket paths must stay under 108 characters
        self.nodes[name] = subprocess.Popen(
            ["ip", "netns", "exec", ns, str(BIN / "ray"), "start", "--block", f"--temp-dir={temp}", "--num-cpus=1",
             "--disable-usage-stats", *args],
            env=self.env, stdout=open(self.root / f"{name}.log", "w"), stderr=subprocess.STDOUT)

    def start(self):
        self.network()
        self.start_node("h", self.head_ns, "--head", f"--node-ip-address={HEAD_IP}", f"--port={PORT}",
                        "--include-dashboard=false")
        self.wait_for_nodes(1)
        self.start_node("w", self.worker_ns, f"--address={HEAD_IP}:{PORT}", f"--node-ip-address={WORKER_IP}")
        self.wait_for_nodes(2)

    def wait_for_nodes(self, count, timeout=180):
        script = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                  "print(sum(n['Alive'] for n in ray.nodes()))")
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            self.poll()
            for name, node in self.nodes.items():
                assert node.poll() is None, f"ray start ({name}) ended: {(self.root / f'{name}.log').read_text()}"
            result = self.driver([sys.executable, "-c", script, f"{HEAD_IP}:{PORT}"], timeout=120)
            last = result.stdout.strip().splitlines()[-1:] or result.stderr[-500:]
            if result.returncode == 0 and int(result.stdout.split()[-1]) >= count:
                return
            time.sleep(2)
        raise AssertionError(f"the cluster did not reach {count} nodes: {last}")

    def driver(self, args, timeout):
        return subprocess.run(["ip", "netns", "exec", self.head_ns, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def poll(self):
        for name, node in self.nodes.items():
            for pid, command in process_tree(node.pid).items():
                self.seen[pid] = (name, command)
        return self.seen

    def pids(self, name):
        return [self.nodes[name].pid, *(pid for pid, (node, _) in self.poll().items() if node == name)]

    def stop(self):
        self.poll()
        for name in self.nodes:
            kill(self.pids(name))
        for node in self.nodes.values():
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for ns in (self.head_ns, self.worker_ns):  # anything still inside our namespaces is ours
            listed = run("ip", "netns", "pids", ns, check=False).stdout.split()
            kill(int(pid) for pid in listed)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(pid) for pid in self.seen):
            time.sleep(0.5)
        left = [(pid, self.seen[pid]) for pid in self.seen if alive(pid)]
        for ns in (self.head_ns, self.worker_ns):
            run("ip", "netns", "del", ns, check=False)
        return left


@pytest.fixture
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the two-node test makes network namespaces: it needs root")
    if not shutil.which("ip"):
        pytest.skip("the two-node test needs the `ip` command (iproute2)")
    if not all(path.is_file() for path in VIDEOS[:4]):
        pytest.skip(f"the sample videos are not under {SHARED_DATA} (set MSMAE_SHARED_DATA)")
    root = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))
    cluster = Cluster(root)
    try:
        try:
            cluster.network()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"cannot make network namespaces here: {error}")
        cluster.network = lambda: None
        cluster.start()
        yield cluster
    finally:
        left = cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        assert left == [], f"processes left running: {left}"


def rows(folder):
    from msmae.data.parts import load_extracted

    dataset = load_extracted(folder, cache_dir=str(Path(folder).parent / f".cache-{Path(folder).name}"))
    assert len(dataset["clip_id"]) == len(set(dataset["clip_id"])), "a clip has more than one row"
    return {row["clip_id"]: row for row in dataset.with_format("numpy")}


@pytest.mark.slow
@pytest.mark.shared_data
def test_two_node_cluster_rows_and_a_dead_worker_node(cluster, tmp_path):
    from msmae.data.extract import run_extraction

    videos = [str(path) for path in VIDEOS]
    local = tmp_path / "local"
    run_extraction(videos, local, num_workers=1, progress=False, quiet=True)
    extract = [str(BIN / "msmae"), "extract", *videos, "--engine", "ray", "--ray_address", f"{HEAD_IP}:{PORT}",
               "--num_workers", "2", "--no_progress"]

    result = cluster.driver([*extract, "--output_dir", str(tmp_path / "cluster")], timeout=600)
    assert result.returncode == 0 and f"{len(videos)} extracted" in result.stderr, result.stderr[-3000:]
    ran_on = {node for node, command in cluster.poll().values() if command.startswith("ray::")}
    assert ran_on == {"h", "w"}, f"Ray workers ran on {ran_on}, not on both nodes"
    first, second = rows(local), rows(tmp_path / "cluster")
    assert sorted(first) == sorted(second)
    for clip_id, row in first.items():
        for name, value in row.items():
            assert np.array_equal(np.asarray(value), np.asarray(second[clip_id][name])), (clip_id, name)

    # The worker node dies (every one of its processes, -9) while it extracts a video.
    out = tmp_path / "after_kill"
    driver = subprocess.Popen(["ip", "netns", "exec", cluster.head_ns, *extract, "--output_dir", str(out)],
                              env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, killed = time.monotonic() + 300, False
        while not killed:
            assert driver.poll() is None, f"the run ended before the worker node was killed: {driver.stdout.read()}"
            assert time.monotonic() < deadline, "the worker node never ran a video"
            if any(node == "w" and command.startswith("ray::_worker_task")
                   for node, command in cluster.poll().values()):
                kill(cluster.pids("w"))
                killed = True
            time.sleep(0.1)
        output, _ = driver.communicate(timeout=600)
    finally:
        kill([driver.pid])
        driver.wait(timeout=30)
    assert driver.returncode == 0, output[-3000:]
    assert f"{len(videos)} extracted" in output and "0 failed" in output, output[-3000:]
    assert not any(alive(pid) for pid in cluster.pids("w")), "a process of the dead node is still running"
    assert not list(out.glob("failures*.jsonl"))
    assert sorted(row["source"] for row in rows(out).values()) == sorted(videos)

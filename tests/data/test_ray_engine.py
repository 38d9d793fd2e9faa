"""`msmae extract --engine ray` on a local Ray (no address: started on 127.0.0.1 by the run itself): the same rows as
the local process pool, a folder begun on one engine finished on the other, and a Ray worker killed with -9 in the
middle of a run (Ray runs its video again; every video once). Real MediaPipe on the real sample videos; the runs are
subprocesses whose whole process tree (Ray's GCS, raylet and workers included) is checked to be gone at the end."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, alive, process_tree, write_video

pytest.importorskip("mediapipe")
pytest.importorskip("ray", reason="the Ray engine needs Ray: pip install 'msmae[cluster]'")

MSMAE = [str(Path(sys.executable).with_name("msmae"))]
VIDEOS = [SHARED_DATA / "pose-format-samples" / "test_video.mp4",
          *sorted((SHARED_DATA / "msl150" / "data" / "original_source").glob("*.mp4"))]


@pytest.fixture
def videos():
    present = [path for path in VIDEOS if path.is_file()]
    if len(present) < 4:
        pytest.skip(f"the sample videos are not under {SHARED_DATA} (set MSMAE_SHARED_DATA)")
    if not Path(MSMAE[0]).exists():
        pytest.skip("the msmae console script is not installed beside this interpreter")
    return [str(path) for path in present]


def ray_env(tmp_path):
    """A local Ray that binds to 127.0.0.1 only and keeps its token file out of the user's home."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "HOME": str(home), "RAY_ADDRESS": "",
            "PYTHONUNBUFFERED": "1"}


def listening(pids) -> list:
    """The TCP addresses that processes of `pids` listen on (from `ss`), as "address (command)"."""
    import re
    import shutil

    if not shutil.which("ss"):
        return []
    table = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, timeout=30).stdout
    return [f"{line.split()[3]} ({line.split()[-1]})" for line in table.splitlines()
            if set(map(int, re.findall(r"pid=(\d+)", line))) & set(pids)]


def loopback(address) -> bool:
    import ipaddress

    host = ipaddress.ip_address(address.split()[0].rsplit(":", 1)[0].strip("[]"))
    return (getattr(host, "ipv4_mapped", None) or host).is_loopback


class Run:
    """A subprocess whose descendants are recorded while it runs, so that none can be left behind."""

    def __init__(self, args, env, timeout):
        self.seen, self.deadline = {}, time.monotonic() + timeout
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def poll_tree(self):
        self.seen.update(process_tree(self.process.pid))
        return self.seen

    def wait(self):
        while self.process.poll() is None:
            assert time.monotonic() < self.deadline, "the run did not finish in time"
            self.poll_tree()
            time.sleep(0.2)
        return self.process.returncode, self.process.stdout.read()

    def left_running(self, grace=30):
        end = time.monotonic() + grace
        while time.monotonic() < end:
            left = [pid for pid in self.seen if alive(pid)]
            if not left:
                return []
            time.sleep(0.5)
        return [(pid, self.seen[pid]) for pid in self.seen if alive(pid)]

    def kill_all(self):
        for pid in [self.process.pid, *self.seen]:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process.wait(timeout=30)


def extract(args, env, timeout=600):
    run = Run([*MSMAE, "extract", *args, "--no_progress"], env, timeout)
    try:
        code, output = run.wait()
        assert run.left_running() == [], f"processes left running after the run:\n{output}"
        return code, output
    finally:
        run.kill_all()


def rows(folder) -> dict:
    from msmae.data.parts import load_extracted

    dataset = load_extracted(folder, cache_dir=str(Path(folder).parent / f".cache-{Path(folder).name}"))
    ids = dataset["clip_id"]
    assert len(ids) == len(set(ids)), "a clip has more than one row"
    return {row["clip_id"]: row for row in dataset.with_format("numpy")}


def assert_same_rows(first, second):
    assert sorted(first) == sorted(second)
    for clip_id, row in first.items():
        other = second[clip_id]
        for name, value in row.items():
            assert np.array_equal(np.asarray(value), np.asarray(other[name])), (clip_id, name)


@pytest.mark.slow
@pytest.mark.shared_data
def test_ray_engine_gives_the_local_engines_rows(videos, tmp_path):
    env = ray_env(tmp_path)
    local, ray_dir = tmp_path / "local", tmp_path / "ray"
    code, output = extract([*videos, "--output_dir", str(local), "--num_workers", "2"], env)
    assert code == 0, output
    # Begun on the local engine (one video), finished on Ray: the done video is not extracted again.
    code, output = extract([videos[0], "--output_dir", str(ray_dir)], env)
    assert code == 0, output
    code, output = extract([*videos, "--output_dir", str(ray_dir), "--engine", "ray", "--num_workers", "2"], env)
    assert code == 0, output
    assert f"{len(videos) - 1} extracted" in output and "1 already done" in output, output
    assert not list(ray_dir.glob("failures*.jsonl"))
    assert_same_rows(rows(local), rows(ray_dir))


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_ray_worker_killed_mid_run_loses_no_video(videos, tmp_path):
    env = ray_env(tmp_path)
    out = tmp_path / "out"
    run = Run([*MSMAE, "extract", *videos, "--output_dir", str(out), "--engine", "ray", "--num_workers", "2",
               "--no_progress"], env, timeout=600)
    killed = None
    try:
        while killed is None and run.process.poll() is None:
            assert time.monotonic() < run.deadline, "no Ray worker ever ran a video"
            busy = [pid for pid, command in run.poll_tree().items() if command.startswith("ray::_worker_task")]
            if busy:
                os.kill(busy[0], signal.SIGKILL)  # mid-video: its part is not written yet
                killed = busy[0]
                # The local Ray is reachable from this machine only.
                addresses = listening([run.process.pid, *run.seen])
                assert addresses and all(map(loopback, addresses)), addresses
            time.sleep(0.1)
        code, output = run.wait()
        assert killed is not None, f"the run ended before a worker could be killed:\n{output}"
        assert code == 0, output
        assert f"{len(videos)} extracted" in output and "0 failed" in output, output
        assert run.left_running() == [], output
    finally:
        run.kill_all()
    assert not list(out.glob("failures*.jsonl"))
    assert len(list((out / "data").glob("*.parquet"))) == len(videos)
    assert sorted(row["source"] for row in rows(out).values()) == sorted(videos)


def test_bad_engine_arguments_are_refused(tmp_path):
    from msmae.data.extract import run_extraction

    with pytest.raises(ValueError, match="Unknown extraction engine 'spark'"):
        run_extraction(["x.mp4"], tmp_path, engine="spark")
    with pytest.raises(ValueError, match="ray_address is for engine='ray'"):
        run_extraction(["x.mp4"], tmp_path, ray_address="10.0.0.1:6379")
    if not Path(MSMAE[0]).exists():
        return
    for args, message in ((["--ray_address", "h:6379"], "--ray_address needs --engine ray"),
                          (["--num_workers", "0"], "--num_workers must be at least 1")):
        result = subprocess.run([*MSMAE, "extract", "v.mp4", "--output_dir", str(tmp_path / "o"), *args],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_an_unreachable_cluster_is_named_at_once(tmp_path):
    import socket

    if not Path(MSMAE[0]).exists():
        pytest.skip("the msmae console script is not installed beside this interpreter")
    with socket.socket() as probe:  # a port on 127.0.0.1 where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytest.importorskip("av")
    video = write_video(tmp_path / "v.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    started = time.monotonic()
    result = subprocess.run([*MSMAE, "extract", video, "--output_dir", str(tmp_path / "o"),
                             "--engine", "ray", "--ray_address", f"127.0.0.1:{port}", "--no_progress"],
                            env=ray_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and f"Cannot reach the Ray cluster at '127.0.0.1:{port}'" in result.stderr, \
        result.stderr[-2000:]
    assert time.monotonic() - started < 60


@pytest.mark.slow
@pytest.mark.shared_data
def test_prepare_on_ray(videos, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"path,start,end,label,signer,split\n{videos[0]},0,0.6,hello,a,train\n"
                        f"{videos[0]},0.6,1.2,thanks,a,test\n{videos[1]},0,0.5,hello,b,train\n")
    run = Run([*MSMAE, "prepare", "manifest", str(manifest), "--output_dir", str(tmp_path / "out"), "--engine", "ray",
               "--num_workers", "2", "--no_progress"], ray_env(tmp_path), timeout=600)
    try:
        code, output = run.wait()
        assert code == 0, output
        assert run.left_running() == [], output
    finally:
        run.kill_all()
    from datasets import load_from_disk

    prepared = load_from_disk(str(tmp_path / "out"))
    assert {name: len(split) for name, split in prepared.items()} == {"train": 2, "validation": 0, "test": 1}

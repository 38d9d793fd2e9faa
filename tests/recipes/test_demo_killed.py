"""Issue 26, point 4: a `msmae demo` killed with -9 part way can be overwritten (`--overwrite_output_dir`) without
deleting the folder by hand, and still nothing the demo did not write is removed. Before, the killed demo's newest
checkpoint was not in its record, so `--overwrite_output_dir` refused as for another run's checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from msmae.recipes import demo


@pytest.mark.slow
def test_a_demo_killed_part_way_is_overwritten(tmp_path, capsys):
    output = tmp_path / "demo"
    command = [sys.executable, "-m", "msmae.cli", "demo", "--quick", "--data", "synthetic", "--output_dir", str(output)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not list(output.glob("*/checkpoint-*/*.safetensors")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL  # killed part way, not finished
    recorded = set(json.loads((output / demo.WRITTEN).read_text())["files"])
    unrecorded = [p for p in output.rglob("*") if p.is_file() and str(p.relative_to(output)) not in recorded]
    assert any("checkpoint-" in str(p) for p in unrecorded)  # what made the overwrite refuse before
    (output / "notes.txt").write_text("mine")  # the user's file, written after the demo started

    capsys.readouterr()
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output), "--overwrite_output_dir"]) == 0
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "summary.json").is_file()


def test_a_running_demo_is_not_overwritten(tmp_path, capsys):
    output = tmp_path / "demo"
    output.mkdir()
    (output / "pretraining" / "checkpoint-2").mkdir(parents=True)
    (output / "pretraining" / "checkpoint-2" / "model.safetensors").write_bytes(b"x")
    running = subprocess.Popen(["sleep", "60"])  # stands for the demo still at work
    try:
        record = {"written_by": "msmae demo", "files": [demo.WRITTEN],
                  "running": {"pid": running.pid, "started_ns": time.time_ns() - 10**9}}
        (output / demo.WRITTEN).write_text(json.dumps(record))
        assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output), "--overwrite_output_dir"]) == 2
    finally:
        running.kill()
        running.wait()
    assert f"another msmae demo (pid {running.pid}) is still writing into {output}" in capsys.readouterr().err
    assert (output / "pretraining" / "checkpoint-2" / "model.safetensors").exists()

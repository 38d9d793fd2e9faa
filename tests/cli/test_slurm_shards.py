"""`msmae extract` inside a Slurm job array: with no --shard_index/--num_shards, the array task's variables choose
the shard (said in the log); two array tasks run as processes cover every video exactly once between them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_video

from msmae.data.extract import slurm_shard

MSMAE = str(Path(sys.executable).with_name("msmae"))


@pytest.mark.parametrize("environ, shard", [
    ({}, None),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8"}, (0, 8)),
    ({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8",
      "SLURM_ARRAY_TASK_COUNT": "8"}, (7, 8)),
])
def test_shard_from_the_array_variables(environ, shard):
    assert slurm_shard(environ) == shard


@pytest.mark.parametrize("environ, message", [
    ({"SLURM_ARRAY_TASK_ID": "0"}, "SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, "Cannot read the Slurm array variables"),
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "4",
      "SLURM_ARRAY_TASK_COUNT": "3"}, "not contiguous"),  # --array=0-4:2
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2"}, "outside the array"),
])
def test_unusable_array_variables_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        slurm_shard(environ)


@pytest.mark.slow
def test_two_array_tasks_cover_every_video_once(tmp_path):
    pytest.importorskip("mediapipe")
    pytest.importorskip("av")
    if not Path(MSMAE).exists():
        pytest.skip("the msmae console script is not installed beside this interpreter")
    # Blank videos: MediaPipe runs on each and finds no person, so each shard logs every video it was given.
    videos = [write_video(tmp_path / f"v{i}.mp4", np.full((2, 32, 32, 3), 10 * i, np.uint8)) for i in range(5)]
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    tasks = [subprocess.Popen([MSMAE, "extract", *videos, "--output_dir", str(out), "--no_progress"],
                              env={**env, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "1",
                                   "SLURM_ARRAY_TASK_MAX": "2", "SLURM_ARRAY_TASK_COUNT": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for task in (1, 2)]
    try:
        outputs = [task.communicate(timeout=300)[0] for task in tasks]
    finally:
        for task in tasks:
            task.kill()
            task.wait(timeout=30)
    covered = []
    for index, output in enumerate(outputs):
        assert f"Shard {index} of 2, from the Slurm job array" in output, output
        log = out / f"failures-{index:05d}-of-00002.jsonl"
        covered.append({json.loads(line)["path"] for line in log.read_text().splitlines()})
    assert not covered[0] & covered[1] and covered[0] | covered[1] == set(videos), covered
    # An explicit shard wins over the array variables.
    result = subprocess.run([MSMAE, "extract", videos[0], "--output_dir", str(tmp_path / "one"), "--no_progress",
                             "--shard_index", "0", "--num_shards", "1"], env={**env, "SLURM_ARRAY_TASK_ID": "x"},
                            capture_output=True, text=True, timeout=300)
    assert "Slurm" not in result.stderr and (tmp_path / "one" / "failures.jsonl").exists(), result.stderr

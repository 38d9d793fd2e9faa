"""The training scripts under `accelerate launch` with 2 CPU processes (gloo), as on a multi-GPU machine."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_overrides
from datasets import load_from_disk

from msmae.data.loading import split_dataset
from msmae.training.synthetic import synthetic_pretraining_dataset, synthetic_sign_dataset

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "accelerate_configs" / "cpu_2proc.yaml"
ACCELERATE = Path(sys.executable).parent / "accelerate"
pytestmark = [
    pytest.mark.slow,  # two processes
    pytest.mark.skipif(
        not ACCELERATE.exists() and shutil.which("accelerate") is None, reason="the accelerate command is not installed"
    ),
]


def launch(script, *arguments, cwd):
    command = [str(ACCELERATE) if ACCELERATE.exists() else "accelerate", "launch", "--config_file", str(CONFIG),
               str(REPO / "examples" / script), "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
               "--log_level", "warning", "--log_level_replica", "warning", *arguments]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_pretraining_on_two_processes(tmp_path):
    data = tmp_path / "corpus"
    train_clips = 20
    synthetic_pretraining_dataset(num_clips=train_clips, seed=0, cache_dir=str(tmp_path / "cache")).save_to_disk(str(data))
    output = tmp_path / "out"
    log = launch(
        "run_pretraining.py", "--dataset_name", str(data), "--output_dir", str(output),
        "--config_overrides", tiny_overrides(), "--do_train", "--do_eval", "--max_steps", "3", "--per_device_train_batch_size", "2",
        "--validation_split_percentage", "0.2", "--window_size", "48", "--num_frames", "24",
        "--warmup_steps", "1", "--logging_steps", "1", cwd=tmp_path,
    )
    for rank in (0, 1):
        assert f"Process rank: {rank}, device: cpu" in log and "distributed: True" in log
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # 3 steps x 2 processes x 2 clips of the 16 training clips: the processes shared the batches.
    assert state["epoch"] == pytest.approx(3 * 2 * 2 / 16)
    assert (output / "model.safetensors").is_file() and (output / "preprocessor_config.json").is_file()
    assert "eval_loss" in json.loads((output / "eval_results.json").read_text())


def test_classification_on_two_processes_writes_each_prediction_once(tmp_path):
    data = tmp_path / "signs"
    signs = synthetic_sign_dataset(num_classes=4, clips_per_class=6, num_signers=4, seed=0, cache_dir=str(tmp_path / "cache"))
    signs.save_to_disk(str(data))
    output = tmp_path / "out"
    launch(
        "run_sign_classification.py", "--dataset_name", str(data), "--output_dir", str(output),
        "--config_overrides", tiny_overrides(), "--do_train", "--do_eval", "--do_predict", "--max_steps", "2",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--num_frames", "8",
        "--validation_split_percentage", "0.25", "--test_split_percentage", "0.25", cwd=tmp_path,
    )
    with open(output / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    # The script's signer-independent test split, gathered from both processes in order: each clip once.
    expected = split_dataset(load_from_disk(str(data)), validation_size=0.25, test_size=0.25, seed=42)["test"]
    assert [r["source"] for r in rows] == expected["source"]
    test = json.loads((output / "test_results.json").read_text())
    assert sum(int(r["correct"]) for r in rows) / len(rows) == pytest.approx(test["test_top1"])

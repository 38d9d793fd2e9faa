"""Training under faults: automatic resume takes the newest complete checkpoint and names the incomplete ones it
skips; a finished run is reported, not trained again; --overwrite_output_dir removes only the Trainer's files; and a
few trials of tools/fault_injection.py (kill -9 inside checkpoint writes, a full disk, a permission flip), each
ending in exactly the weights and logged losses of an uninterrupted run. The 60-trial randomised run is
tools/fault_injection.py itself (RELIABILITY.md)."""

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_config

from msmae.training.resume import TrainingFinished, checkpoint_problem, find_last_checkpoint

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_injection.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("fault_injection", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fi = load_tool()


@pytest.fixture(scope="module")
def bench():
    """The tool's setup: the data and an uninterrupted 6-step run (checkpoints 4 and 6 kept), checked against a
    resumed one. In a folder of its own that user nobody can reach (pytest's are root's only)."""
    workdir = Path(tempfile.mkdtemp(prefix="msmae-faults-"))
    os.chmod(workdir, 0o755)
    torch.set_num_threads(1)
    try:
        data, reference, seconds = fi.setup(workdir)
        yield SimpleNamespace(workdir=workdir, data=data, reference=reference, seconds=seconds,
                              run=workdir / "reference")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def arguments(output, max_steps=fi.MAX_STEPS, **overrides):
    values = dict(output_dir=str(output), do_train=True, resume_from_checkpoint=None, save_only_model=False,
                  max_steps=max_steps, num_train_epochs=3.0, overwrite_output_dir=False,
                  main_process_first=lambda desc: _nothing())
    return SimpleNamespace(**{**values, **overrides})


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


DAMAGE = {
    "no trainer_state.json": lambda c: (c / "trainer_state.json").unlink(),
    "torn trainer_state.json": lambda c: os.truncate(c / "trainer_state.json", 100),
    "torn model.safetensors": lambda c: os.truncate(c / "model.safetensors", 1000),
    "no optimizer state": lambda c: (c / "optimizer.pt").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.slow
def test_resume_skips_an_incomplete_newest_checkpoint_and_names_it(bench, tmp_path, caplog, damage):
    output = tmp_path / "run"
    shutil.copytree(bench.run, output)
    (output / "trainer_state.json").unlink()  # the run was stopped before its final save ...
    shutil.copytree(output / "checkpoint-4", output / "checkpoint-8")  # ... while writing a checkpoint
    DAMAGE[damage](output / "checkpoint-8")
    assert checkpoint_problem(output / "checkpoint-8") is not None
    with caplog.at_level(logging.WARNING):
        chosen = find_last_checkpoint(arguments(output, max_steps=10), logging.getLogger("test"))
    assert chosen == str(output / "checkpoint-6")
    assert "checkpoint-8 (" in caplog.text and "resuming from checkpoint-6" in caplog.text
    # An incomplete checkpoint asked for by name is an error that says what to do.
    incomplete = arguments(output, resume_from_checkpoint=str(output / "checkpoint-8"))
    with pytest.raises(ValueError, match="checkpoint-8 is not a complete checkpoint.*earlier checkpoint"):
        find_last_checkpoint(incomplete, logging.getLogger())


@pytest.mark.slow
def test_finished_checkpoint_without_the_final_save_resumes_from_the_one_before(bench, tmp_path, caplog):
    """Resuming from checkpoint-6 of a 6-step run would train a 7th step: the run goes on from checkpoint-4."""
    output = tmp_path / "run"
    shutil.copytree(bench.run, output)
    (output / "trainer_state.json").unlink()
    with caplog.at_level(logging.WARNING):
        assert find_last_checkpoint(arguments(output), logging.getLogger("test")) == str(output / "checkpoint-4")
    assert "checkpoint-6 (the end of training, but the final model was not saved" in caplog.text
    shutil.rmtree(output / "checkpoint-4")
    assert find_last_checkpoint(arguments(output), logging.getLogger("test")) is None  # from the start


@pytest.mark.slow
def test_a_finished_run_is_reported_and_not_trained_again(bench, tmp_path, capsys):
    from msmae.recipes import pretraining

    output = tmp_path / "run"
    shutil.copytree(bench.run, output)
    weights = (output / "model.safetensors").read_bytes()
    argv = fi.recipe_arguments(bench.data, output, bench.workdir / "cache")
    with pytest.raises(TrainingFinished) as finished:
        pretraining.main(argv)
    assert finished.value.code == 0 and "finished training run (step 6" in finished.value.message
    assert (output / "model.safetensors").read_bytes() == weights
    assert fi.result(output)["step"] == fi.MAX_STEPS
    # Asked for more steps, it trains on from the newest checkpoint.
    assert find_last_checkpoint(arguments(output, max_steps=8), logging.getLogger()) == str(output / "checkpoint-6")


@pytest.mark.slow
def test_overwrite_output_dir_trains_from_the_start_and_removes_only_the_trainers_files(bench, tmp_path):
    from msmae.recipes import pretraining

    output = tmp_path / "run"
    shutil.copytree(bench.run, output)
    shutil.copytree(output / "checkpoint-6", output / "checkpoint-60")  # a longer earlier run's
    (output / "notes.txt").write_text("mine")
    (output / "checkpoint-6" / "my-comment.txt").write_text("also mine, but inside a checkpoint")
    pretraining.main(fi.recipe_arguments(bench.data, output, bench.workdir / "cache") + ["--overwrite_output_dir"])
    assert fi.same(fi.result(output), bench.reference) is None  # seeded: the same run again
    assert (output / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


FAULTS = {
    "kill -9 with trainer_state.json half written": {"kind": "kill_in_checkpoint", "point": "torn_state", "nth": 2},
    "kill -9 with optimizer.pt half written": {"kind": "kill_in_checkpoint", "point": "torn_optimizer", "nth": 3},
    "kill -9 with the final model half written": {"kind": "kill_in_checkpoint", "point": "torn_final_model", "nth": 1},
    "disk full (ulimit -f 64 KiB)": {"kind": "disk_full", "file_size_limit": 64 * 1024},
    "output folder read-only": {"kind": "permission", "flip_target": "output", "flip_after": 0.0},
    "output folder read-only at the final save": {"kind": "permission", "point": "readonly_final_save", "nth": 1},
    "re-run of a finished run": {"kind": "rerun_finished"},
    "kill -9 in checkpoint 6, checkpoint 4's weights damaged in place": {
        "kind": "damaged_checkpoint", "point": "after_rng", "nth": 3, "damage": "checksum", "seed": 1},
}


@pytest.mark.parametrize("name", FAULTS)
@pytest.mark.slow
def test_fault_then_plain_rerun_equals_an_uninterrupted_run(bench, name):
    fault = {**FAULTS[name], "text": name}
    if fault["kind"] == "permission" and not fi.runs_as_nobody():
        reason = "this is not root" if os.geteuid() != 0 else fi.nobody_cannot_read_msmae()
        pytest.skip(f"permission flips need the run done as user nobody by root (root ignores permissions): {reason}")
    record = fi.trial(0, fault, bench.workdir, bench.data, bench.reference)
    assert record["outcome"] in ("equal", "failed_clearly_then_equal"), record
    if fault["kind"] in ("disk_full", "permission"):
        assert record["outcome"] == "failed_clearly_then_equal" and record["faulted_exit"] == 1, record
    if fault["kind"] == "kill_in_checkpoint":
        assert record["faulted_exit"] == -9 and any("Skipping" in said for said in record["rerun_said"]), record
    if fault["kind"] == "damaged_checkpoint":  # issue 26: resume does not take weights damaged in place
        assert record["damaged"].startswith("checkpoint-4: one character of msmae_weights_sha256"), record
        assert any("checkpoint-4 (damaged weights" in said for said in record["rerun_said"]), record


def test_nan_at_missing_keypoints_gives_finite_scores_through_the_pipeline(tmp_path):
    """Issue 14 point 8, through the processor and the pipeline: NaN where the mask says "missing" (as a pose
    reader may leave it) changes nothing; scores are finite and equal to the clean clip's."""
    from transformers import pipeline

    from msmae import MSMAEForSignClassification
    from msmae.pipeline_msmae import RECOGNITION_TASK
    from msmae.keypoint_layout import NUM_STORED_KEYPOINTS
    from msmae.processing_msmae import MSMAEPoseProcessor

    torch.manual_seed(0)
    config = tiny_config(num_hidden_layers=1, num_labels=3)
    model = MSMAEForSignClassification(config).eval()
    processor = MSMAEPoseProcessor.from_preset("recognition", streams=config.streams)
    recognizer = pipeline(RECOGNITION_TASK, model=model, feature_extractor=processor, device="cpu")
    rng = np.random.default_rng(0)
    ready = processor(rng.uniform(0.3, 0.7, (40, NUM_STORED_KEYPOINTS, 2)).astype(np.float32), width=640, height=480)
    clean = {"pose_values": ready["pose_values"][0], "keypoint_mask": ready["keypoint_mask"][0].copy()}
    clean["keypoint_mask"][5:15, :20] = False  # undetected keypoints ...
    poisoned = {k: v.copy() for k, v in clean.items()}
    poisoned["pose_values"][~poisoned["keypoint_mask"]] = np.nan  # ... holding NaN
    expected, got = recognizer(clean, top_k=3), recognizer(poisoned, top_k=3)
    assert all(np.isfinite(r["score"]) for r in got)
    assert [r["label"] for r in got] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in expected], atol=1e-6)

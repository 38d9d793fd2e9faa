"""Automatic resume checks the weights' checksum, not only their length (issue 26, point 3): a checkpoint whose
weights were damaged in place is skipped and named, and the next complete one is chosen."""

import json
import logging
from types import SimpleNamespace

import pytest
import torch

from conftest import damage_in_place, tiny_config

from msmae import MSMAEForPreTraining
from msmae.training.resume import checkpoint_problem, find_last_checkpoint


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def arguments(output, **overrides):
    values = dict(output_dir=str(output), do_train=True, resume_from_checkpoint=None, save_only_model=False,
                  max_steps=10, num_train_epochs=3.0, overwrite_output_dir=False,
                  main_process_first=lambda desc: _nothing())
    return SimpleNamespace(**{**values, **overrides})


def write_checkpoint(folder, step, model):
    """What the Trainer leaves in `checkpoint-N`, as far as resume looks: weights, optimizer and scheduler states,
    and `trainer_state.json` last."""
    model.save_pretrained(folder)
    (folder / "optimizer.pt").write_bytes(b"optimizer")
    (folder / "scheduler.pt").write_bytes(b"scheduler")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": step / 10}))


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config())
    output = tmp_path / "run"
    for step in (2, 4, 6):
        write_checkpoint(output / f"checkpoint-{step}", step, model)
    return output


def test_resume_skips_a_checkpoint_whose_weights_fail_their_checksum(run, caplog):
    size = (run / "checkpoint-6" / "model.safetensors").stat().st_size
    damage_in_place(run / "checkpoint-6" / "model.safetensors")
    assert (run / "checkpoint-6" / "model.safetensors").stat().st_size == size  # the length check cannot see it
    assert "checksum" in checkpoint_problem(run / "checkpoint-6")
    with caplog.at_level(logging.WARNING):
        chosen = find_last_checkpoint(arguments(run), logging.getLogger("test"))
    assert chosen == str(run / "checkpoint-4")
    assert "checkpoint-6 (" in caplog.text and "checksum" in caplog.text and "resuming from checkpoint-4" in caplog.text

    damage_in_place(run / "checkpoint-4" / "model.safetensors")
    assert find_last_checkpoint(arguments(run), logging.getLogger("test")) == str(run / "checkpoint-2")

    named = arguments(run, resume_from_checkpoint=str(run / "checkpoint-6"))
    with pytest.raises(ValueError, match=r"checkpoint-6 .*checksum.*earlier checkpoint"):
        find_last_checkpoint(named, logging.getLogger("test"))


def test_checkpoints_without_a_checksum_still_resume(run):
    """Checkpoints written before checksums (msmae 0.1.0) are trusted as before: length checks only."""
    from safetensors.torch import load_file, save_file

    path = run / "checkpoint-6" / "model.safetensors"
    save_file(load_file(path), path, metadata={"format": "pt"})
    assert checkpoint_problem(run / "checkpoint-6") is None
    assert find_last_checkpoint(arguments(run), logging.getLogger("test")) == str(run / "checkpoint-6")


@pytest.mark.slow
def test_a_real_run_checksums_its_checkpoints_and_resumes_past_a_damaged_one(tmp_path, caplog):
    """The Trainer's checkpoints carry the checksum (they are written by the model's save_pretrained); with the newest
    damaged in place, the same command resumes from the one before and finishes."""
    import importlib.util
    from pathlib import Path

    from safetensors import safe_open

    from msmae.recipes import pretraining

    tool = Path(__file__).resolve().parents[2] / "tools" / "fault_injection.py"
    spec = importlib.util.spec_from_file_location("fault_injection", tool)
    fi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fi)

    torch.set_num_threads(1)
    data, output = fi.prepare(tmp_path), tmp_path / "run"
    argv = fi.recipe_arguments(data, output, tmp_path / "cache")
    pretraining.main(argv)
    for folder in (output, output / "checkpoint-4", output / "checkpoint-6"):
        with safe_open(folder / "model.safetensors", "pt") as f:
            assert len(f.metadata()["msmae_weights_sha256"]) == 64, folder
    (output / "trainer_state.json").unlink()  # as if stopped before the final save ...
    damage_in_place(output / "checkpoint-6" / "model.safetensors")  # ... with the newest checkpoint damaged
    longer = [*argv]
    longer[longer.index("--max_steps") + 1] = "8"
    with caplog.at_level(logging.WARNING):
        pretraining.main(longer)
    assert "checkpoint-6 (damaged weights" in caplog.text and "resuming from checkpoint-4" in caplog.text
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 8
    assert checkpoint_problem(output / "checkpoint-8") is None

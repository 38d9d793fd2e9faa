"""The pretraining recipe (msmae.recipes.pretraining, behind examples/run_pretraining.py) end to end on tiny models:
real data, resuming, continual pretraining, arguments."""

import json
import math
import shutil

import pytest
from conftest import tiny_overrides
from safetensors.torch import load_file

from msmae.recipes import pretraining as recipe
from msmae.training.synthetic import synthetic_pretraining_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def script():
    return recipe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    synthetic_pretraining_dataset(num_clips=24, seed=0, cache_dir=str(folder / "cache")).save_to_disk(str(folder / "data"))
    return str(folder / "data")


def common(output_dir, *extra):
    return [
        "--output_dir", str(output_dir), "--config_overrides", tiny_overrides(), "--do_train",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--window_size", "48", "--num_frames", "24", "--warmup_steps", "2", "--logging_steps", "1",
        "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "warning", *extra,
    ]


@pytest.mark.slow
def test_pretraining_on_real_poses(script, shared_data, tmp_path):
    output = tmp_path / "out"
    script.main(common(
        output,
        "--dataset_name", str(shared_data / "signsuisse"), str(shared_data / "asl-app-100"),
        "--cache_dir", str(tmp_path / "cache"),
        "--do_eval", "--eval_strategy", "steps", "--eval_steps", "2", "--max_steps", "4", "--max_eval_samples", "6",
        "--mask_ratio", "0.7", "--masking_strategy", "same", "--activation_checkpointing",
    ))
    config = json.loads((output / "config.json").read_text())
    assert config["mask_ratio"] == 0.7 and config["masking_strategy"] == "same" and config["hidden_size"] == 32
    assert config["auto_map"]["AutoModelForPreTraining"] == "modeling_msmae.MSMAEForPreTraining"
    processor = json.loads((output / "preprocessor_config.json").read_text())
    assert processor["sampling"] == "window" and processor["window_size"] == 48 and processor["num_frames"] == 24
    for name in ("model.safetensors", "modeling_msmae.py", "configuration_msmae.py", "README.md"):
        assert (output / name).is_file(), name
    eval_loss = json.loads((output / "eval_results.json").read_text())["eval_loss"]
    assert math.isfinite(eval_loss) and eval_loss > 0
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [e["eval_loss"] for e in state["log_history"] if "eval_loss" in e]  # evaluated during training
    # A picture at each evaluation (steps 2 and 4; the final evaluate() redraws step 4).
    assert sorted(p.name for p in (output / "reconstructions").glob("*.png")) == ["step-0000002.png", "step-0000004.png"]
    card = (output / "README.md").read_text()
    assert "pipeline_tag: feature-extraction" in card and "- sgg" in card and "- ase" in card


def test_resume_reproduces_uninterrupted_run(script, corpus, tmp_path):
    """Stopped after the step-3 checkpoint and resumed, a run ends with the same weights, losses and eval loss."""
    # 8 training clips in batches of 4: the run crosses two epoch boundaries, the resume starts mid-epoch.
    arguments = ["--dataset_name", corpus, "--max_train_samples", "8", "--max_steps", "6", "--save_steps", "3",
                 "--do_eval", "--seed", "3"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    script.main(common(full, *arguments))
    # What an interrupted run leaves behind: everything up to the step-3 checkpoint.
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    script.main(common(resumed, *arguments))  # finds checkpoint-3 in output_dir and resumes from it

    expected, actual = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert (expected[name] == actual[name]).all(), name

    def losses(folder):
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return {e["step"]: e["loss"] for e in history if "loss" in e}

    full_losses, resumed_losses = losses(full), losses(resumed)
    assert [resumed_losses[s] for s in (4, 5, 6)] == [full_losses[s] for s in (4, 5, 6)]
    eval_full = json.loads((full / "eval_results.json").read_text())["eval_loss"]
    assert json.loads((resumed / "eval_results.json").read_text())["eval_loss"] == eval_full


def test_continual_pretraining_from_json_arguments(script, corpus, tmp_path):
    base = tmp_path / "base"
    script.main(common(base, "--dataset_name", corpus, "--max_steps", "2", "--validation_split_percentage", "0"))
    # Continue from `base` with a zero learning rate: the weights must be base's, not a fresh initialisation.
    arguments = {
        "model_name_or_path": str(base), "dataset_name": [corpus], "output_dir": str(tmp_path / "continued"),
        "do_train": True, "max_steps": 1, "learning_rate": 0.0, "per_device_train_batch_size": 2,
        "window_size": 48, "num_frames": 24, "use_cpu": True, "report_to": "none", "disable_tqdm": True,
        "validation_split_percentage": 0.0,
    }
    (tmp_path / "args.json").write_text(json.dumps(arguments))
    script.main([str(tmp_path / "args.json")])
    before, after = load_file(base / "model.safetensors"), load_file(tmp_path / "continued" / "model.safetensors")
    for name in before:
        assert (before[name] == after[name]).all(), name
    # Scoring a checkpoint's reconstruction on held-out clips: evaluation only, no training data needed.
    scored = tmp_path / "scored"
    script.main(["--model_name_or_path", str(base), "--validation_dataset_name", corpus, "--do_eval",
                 "--output_dir", str(scored), "--window_size", "48", "--num_frames", "24", "--max_eval_samples", "4",
                 "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "warning"])
    assert math.isfinite(json.loads((scored / "eval_results.json").read_text())["eval_loss"])
    assert not (scored / "model.safetensors").exists()

    card = (tmp_path / "continued" / "README.md").read_text()
    # Paper defaults fill what the file leaves out; the card's hyperparameter table shows them.
    assert "| adam_betas | (0.9, 0.95) |" in card and "| warmup_steps | 2000 |" in card and "| lr_scheduler | cosine |" in card


def test_streaming_corpus(script, corpus, tmp_path):
    output = tmp_path / "streamed"
    script.main(common(output, "--dataset_name", corpus, "--streaming", "--max_steps", "3", "--do_eval",
                       "--max_eval_samples", "4", "--shuffle_buffer_size", "8"))
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 3
    assert math.isfinite(json.loads((output / "eval_results.json").read_text())["eval_loss"])


def test_paper_defaults_and_overrides(script):
    from transformers import TrainingArguments

    from msmae.training.arguments import parse_arguments

    types = (script.ModelArguments, script.DataTrainingArguments, TrainingArguments)
    defaults = {**script.PAPER_DEFAULTS, **script.CHOSEN_DEFAULTS, **script.SCRIPT_DEFAULTS}
    _, data_args, args = parse_arguments(types, defaults, ["--output_dir", "x", "--dataset_name", "a", "b"])
    assert (args.learning_rate, args.adam_beta1, args.adam_beta2) == (8e-4, 0.9, 0.95)
    assert (args.weight_decay, args.per_device_train_batch_size) == (0.05, 64)  # chosen: the paper states neither
    assert args.warmup_steps == 2000 and args.max_steps == 120_000 and args.lr_scheduler_type.value == "cosine"
    assert args.label_names == [] and data_args.dataset_name == ["a", "b"]
    assert (data_args.window_size, data_args.num_frames) == (600, 300)
    _, _, args = parse_arguments(types, defaults, ["--output_dir", "x", "--learning_rate", "1e-4", "--max_steps", "5"])
    assert args.learning_rate == 1e-4 and args.max_steps == 5


def test_bad_arguments_are_named(script, corpus, tmp_path):
    with pytest.raises(ValueError, match="--dataset_name"):
        script.main(common(tmp_path / "a", "--max_steps", "1"))
    with pytest.raises(ValueError, match="hidden_size"):
        script.main(common(
            tmp_path / "b", "--dataset_name", corpus, "--max_steps", "1", "--config_overrides", "hidden_size=30"
        ))


def test_example_script_is_the_packaged_recipe():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "run_pretraining.py"
    spec = importlib.util.spec_from_file_location("example_run_pretraining", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is recipe.main


@pytest.mark.parametrize("cuda", [True, False])
def test_data_loader_defaults_feed_a_gpu(monkeypatch, cuda):
    """With CUDA: min(8, CPUs) persistent workers and pinned memory unless given; without: TrainingArguments' own."""
    import os
    from types import SimpleNamespace

    from transformers import TrainingArguments

    from msmae.training import arguments
    from msmae.training.arguments import parse_arguments

    # Only what the defaults see: TrainingArguments itself would try to set up the (absent) device.
    monkeypatch.setattr(arguments, "torch", SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: cuda)))
    cpus = len(os.sched_getaffinity(0))
    (args,) = parse_arguments((TrainingArguments,), {}, ["--output_dir", "x"])
    loader = (args.dataloader_num_workers, args.dataloader_persistent_workers, args.dataloader_pin_memory)
    assert loader == ((min(8, cpus), True, True) if cuda else (0, False, True))
    (args,) = parse_arguments((TrainingArguments,), {}, ["--output_dir", "x", "--dataloader_num_workers", "2"])
    assert (args.dataloader_num_workers, args.dataloader_persistent_workers) == (2, cuda)
    (args,) = parse_arguments((TrainingArguments,), {}, ["--output_dir", "x", "--dataloader_num_workers", "0"])
    assert (args.dataloader_num_workers, args.dataloader_persistent_workers) == (0, False)
    (args,) = parse_arguments((TrainingArguments,), {}, ["--output_dir", "x", "--dataloader_pin_memory", "false"])
    assert args.dataloader_pin_memory is False
    # Training on the CPU of a GPU machine, or a script's own default, keeps those values.
    (args,) = parse_arguments((TrainingArguments,), {}, ["--output_dir", "x", "--use_cpu"])
    assert (args.dataloader_num_workers, args.dataloader_persistent_workers) == (0, False)
    (args,) = parse_arguments((TrainingArguments,), {"dataloader_num_workers": 3}, ["--output_dir", "x"])
    assert args.dataloader_num_workers == 3

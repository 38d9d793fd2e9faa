"""The sign classification recipe (msmae.recipes.sign_classification, behind examples/run_sign_classification.py)
end to end on tiny models, and the recognition metrics."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import tiny_config, tiny_overrides
from safetensors.torch import load_file

from msmae import MSMAEForPreTraining
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.recipes import sign_classification as recipe
from msmae.metrics.classification import classification_metrics, confusion_matrix
from msmae.training.synthetic import synthetic_sign_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def script():
    return recipe


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny MSMAEForPreTraining checkpoint with its processor, as run_pretraining.py saves one."""
    folder = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(0)
    MSMAEForPreTraining(tiny_config()).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("pretraining").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def signs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signs")
    dataset = synthetic_sign_dataset(num_classes=6, clips_per_class=8, num_signers=4, seed=0, cache_dir=str(folder / "cache"))
    dataset.save_to_disk(str(folder / "data"))
    return str(folder / "data")


def common(output_dir, *extra):
    return [
        "--output_dir", str(output_dir), "--do_train", "--do_eval", "--do_predict",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16", "--num_frames", "16",
        "--learning_rate", "1e-3", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
        "--log_level", "warning", *extra,
    ]


def encoder_weights(folder):
    return {k: v for k, v in load_file(folder / "model.safetensors").items() if k.startswith("msmae.encoder.")}


@pytest.mark.slow
def test_finetuning_on_msl150_from_pretrained(script, pretrained, shared_data, tmp_path):
    output = tmp_path / "out"
    result = script.main(common(
        output, "--model_name_or_path", str(pretrained), "--dataset_name", str(shared_data / "msl150"),
        "--cache_dir", str(tmp_path / "cache"), "--max_steps", "4", "--warmup_steps", "1",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
    ))
    glosses = ["ambulancia", "doctor", "dolor", "hoy", "yo"]
    config = json.loads((output / "config.json").read_text())
    assert list(config["id2label"].values()) == glosses and config["label2id"]["yo"] == 4
    assert config["auto_map"]["AutoModelForVideoClassification"].endswith("MSMAEForSignClassification")
    assert not config["linear_probe"] and result["label_names"] == glosses

    # The best validation checkpoint (top-1) is the model that was saved and tested.
    state = json.loads((output / "trainer_state.json").read_text())
    evaluations = [e for e in state["log_history"] if "eval_top1" in e]
    assert len(evaluations) >= 2 and state["best_metric"] == max(e["eval_top1"] for e in evaluations)
    best = load_file(output / state["best_model_checkpoint"].split("/")[-1] / "model.safetensors")
    final = load_file(output / "model.safetensors")
    assert all((best[k] == final[k]).all() for k in final)

    test = json.loads((output / "test_results.json").read_text())
    assert 0 <= test["test_top1"] <= 1 and test["test_top5"] == 1.0  # 5 signs: top-5 always holds
    with open(output / "predictions_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and {r["label"] for r in rows} <= set(glosses)  # 10% of 86 clips, stratified
    assert np.mean([int(r["correct"]) for r in rows]) == pytest.approx(test["test_top1"])
    # Named relative to the folder above the clips' common folder: no local directories in a file a push uploads.
    assert all(r["source"].startswith("sample_npy/") for r in rows)
    assert all((shared_data / "msl150" / "data" / r["source"]).is_dir() for r in rows)
    matrix = json.loads((output / "confusion_matrix_test.json").read_text())
    assert matrix["labels"] == glosses and np.sum(matrix["matrix"]) == 9
    assert (output / "confusion_matrix_test.png").stat().st_size > 1000
    processor = json.loads((output / "preprocessor_config.json").read_text())
    assert processor["num_frames"] == 16 and processor["sampling"] == "random"
    assert [a["type"] for a in processor["augmentations"]] == ["augment2d"]


def test_linear_probe_trains_only_the_classifier(script, pretrained, signs, tmp_path):
    output = tmp_path / "probe"
    script.main(common(
        output, "--model_name_or_path", str(pretrained), "--dataset_name", signs, "--freeze_encoder",
        "--no_augmentation", "--max_steps", "3", "--warmup_steps", "0", "--eval_strategy", "steps",
        "--eval_steps", "3", "--save_strategy", "steps", "--save_steps", "3",
    ))
    assert json.loads((output / "config.json").read_text())["linear_probe"] is True
    before, after = encoder_weights(pretrained), encoder_weights(output)
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    classifier = load_file(output / "model.safetensors")["classifier.weight"]
    assert classifier.shape == (6, 32)
    assert json.loads((output / "preprocessor_config.json").read_text())["augmentations"] is None


def test_from_scratch_choosing_by_top5_with_signer_split(script, signs, tmp_path):
    output = tmp_path / "scratch"
    overrides = tiny_overrides()
    script.main(common(
        output, "--dataset_name", signs, "--config_overrides", overrides, "--streams", "body", "right_hand",
        "--metric_for_best_model", "top5", "--num_train_epochs", "2", "--warmup_epochs", "1",
        "--validation_split_percentage", "0.25", "--test_split_percentage", "0.25",
    ))
    config = json.loads((output / "config.json").read_text())
    assert config["streams"] == ["body", "right_hand"] and len(config["id2label"]) == 6
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["best_metric"] == max(e["eval_top5"] for e in state["log_history"] if "eval_top5" in e)
    # One of 4 signers per held-out split: 12 of 48 clips each, 24 for training -> 3 steps per epoch.
    with open(output / "predictions_test.csv") as f:
        assert len(list(csv.DictReader(f))) == 12
    card = (output / "README.md").read_text()
    assert "| warmup_steps | 3 |" in card and "| best_checkpoint_by | validation top5 |" in card


def test_resume_reproduces_uninterrupted_finetuning(script, pretrained, signs, tmp_path):
    """With augmentation and random frames on, a run stopped after its step-2 checkpoint and resumed ends with
    the same weights and test metrics; 24 training clips in batches of 8 make it cross an epoch boundary."""
    import shutil

    arguments = [
        "--model_name_or_path", str(pretrained), "--dataset_name", signs, "--max_steps", "4", "--warmup_steps", "1",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
        "--validation_split_percentage", "0.25", "--test_split_percentage", "0.25", "--seed", "5",
        "--load_best_model_at_end", "false", "--logging_steps", "1",  # the final weights are step 4's
    ]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    script.main(common(full, *arguments))
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-2", resumed / "checkpoint-2")
    script.main(common(resumed, *arguments))
    expected, actual = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all((expected[k] == actual[k]).all() for k in expected)
    assert json.loads((resumed / "test_results.json").read_text())["test_loss"] == json.loads(
        (full / "test_results.json").read_text())["test_loss"]

    def losses(folder):
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return {e["step"]: e["loss"] for e in history if "loss" in e}

    assert [losses(resumed)[s] for s in (3, 4)] == [losses(full)[s] for s in (3, 4)]


def test_classification_metrics_by_hand():
    logits = np.array([
        [3.0, 2.0, 1.0, 0.0],  # true 0: top-1 hit
        [3.0, 2.0, 1.0, 0.0],  # true 1: top-2 hit
        [0.0, 1.0, 2.0, 3.0],  # true 0: last
        [0.0, 3.0, 2.0, 1.0],  # true 2: top-2 hit
    ])
    labels = np.array([0, 1, 0, 2])
    metrics = classification_metrics(logits, labels, top_k=(1, 2, 5))
    assert metrics["top1"] == 0.25 and metrics["top2"] == 0.75 and metrics["top5"] == 1.0
    # Per class: class 0 -> 1/2 (top-1), 1/2 (top-2); class 1 -> 0, 1; class 2 -> 0, 1.
    assert metrics["top1_per_class"] == pytest.approx(1 / 6)
    assert metrics["top2_per_class"] == pytest.approx((0.5 + 1 + 1) / 3)
    np.testing.assert_array_equal(
        confusion_matrix(logits.argmax(-1), labels, 4),
        [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]],
    )
    with pytest.raises(ValueError, match="logits"):
        classification_metrics(logits[:3], labels)


def test_missing_label_column_is_named(script, signs, tmp_path):
    with pytest.raises(ValueError, match="no label column 'gloss'"):
        script.main(common(tmp_path / "x", "--dataset_name", signs, "--label_column_name", "gloss", "--max_steps", "1"))


def test_example_script_is_the_packaged_recipe():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "run_sign_classification.py"
    spec = importlib.util.spec_from_file_location("example_run_sign_classification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is recipe.main


def test_predictions_name_clips_without_local_directories():
    from msmae.recipes.sign_classification import portable_sources

    sources = ["/home/me/data/msl150/yo/1.pose", "/home/me/data/msl150/hoy/2.pose", "someone/signs:train:7"]
    assert portable_sources(sources) == ["msl150/yo/1.pose", "msl150/hoy/2.pose", "someone/signs:train:7"]
    assert portable_sources(["/home/me/clips/a.pose"]) == ["clips/a.pose"]
    assert portable_sources(["rel/a.pose", "b"]) == ["rel/a.pose", "b"]

"""The PHOENIX14T adapter and the translation recipe (msmae.recipes.sign_translation, run by
examples/run_sign_translation.py): Table 5 presets, generation and selection defaults, scoring against the raw text,
inherited normalisation, and an offline end-to-end run on the PHOENIX14T sample (a tokenizer fitted on the PHOENIX
sentences, a tiny random mBART and MS-MAE; train a few steps, keep the best checkpoint, generate, score)."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import fit_tokenizer, make_parts

from msmae.data.corpora.phoenix_skels import (
    load_phoenix_split,
    parse_skels_line,
    phoenix_dataset,
    phoenix_sentences,
    skeleton_to_sign_pose,
)
from msmae.keypoint_layout import stream_slices
from msmae.metrics import load_translation_metric
from msmae.modeling_sign_translation import SignTranslationModel
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.recipes import sign_translation as recipe
from msmae.training.arguments import inherited_normalization, parse_arguments

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "examples" / "run_sign_translation.py"
# ---- the PHOENIX14T .skels reader (msmae.data.corpora.phoenix_skels) -------------------------------------------------


def synthetic_joints(frames=3):
    """Joints whose x encodes the joint index (x = index / 100) and y the frame, so the mapping can be read back."""
    joints = np.zeros((frames, 50, 3), dtype=np.float32)
    joints[..., 0] = np.arange(50) / 100
    joints[..., 1] = np.arange(frames)[:, None] / 10
    joints[..., 2] = 0.2
    return joints


def skels_line(joints):
    frames = len(joints)
    values = np.concatenate([joints.reshape(frames, -1), (np.arange(frames) / frames)[:, None]], axis=1)
    return " ".join(f"{v:.5f}" for v in values.ravel())


def test_skeleton_to_sign_pose_mapping():
    joints = synthetic_joints()
    joints[1, 30] = 0.0  # an undetected left-hand joint
    pose = skeleton_to_sign_pose(joints, source="synthetic")
    slices = stream_slices()
    joint_of = lambda stream: np.round((pose.keypoints[0, slices[stream], 0] - 0.5) * 100).astype(int).tolist()
    # Body in MediaPipe 11-16 order: LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST.
    assert joint_of("body") == [2, 5, 3, 6, 4, 7]
    assert joint_of("left_hand") == list(range(29, 50)) and joint_of("right_hand") == list(range(8, 29))
    np.testing.assert_allclose(pose.keypoints[2, slices["body"], 1], 0.5 + 0.2)  # y of frame 2, shifted
    np.testing.assert_allclose(pose.keypoints[0, slices["body"], 2:], [[0.2, 1.0]] * 6)  # z kept, visible
    assert not pose.keypoint_mask[:, slices["face"]].any() and not pose.keypoints[:, slices["face"]].any()
    assert not pose.keypoint_mask[1, slices["left_hand"].start + 1] and pose.keypoint_mask[0, slices["left_hand"]].all()
    assert (pose.fps, pose.width, pose.height) == (25.0, 0, 0)


def test_parse_skels_line_checks_the_layout():
    joints = synthetic_joints(4)
    np.testing.assert_allclose(parse_skels_line(skels_line(joints)), joints, atol=1e-5)
    with pytest.raises(ValueError, match="not a multiple of 151"):
        parse_skels_line(" ".join(["0.1"] * 150), "x.skels:1")
    shuffled = skels_line(joints).split()
    shuffled[150], shuffled[301] = shuffled[301], shuffled[150]  # frame counters out of order
    with pytest.raises(ValueError, match="increasing frame counter"):
        parse_skels_line(" ".join(shuffled))


def test_load_phoenix_split_checks_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.skels"):
        load_phoenix_split(tmp_path, "train")
    with pytest.raises(ValueError, match="`split` must be one of"):
        load_phoenix_split(tmp_path, "validation")
    (tmp_path / "dev.skels").write_text(skels_line(synthetic_joints()) + "\n")
    (tmp_path / "dev.text").write_text("eins\nzwei\n")
    with pytest.raises(ValueError, match="2 lines but"):
        load_phoenix_split(tmp_path, "dev")


def test_phoenix_sample_layout(shared_data):
    phoenix = shared_data / "phoenix14t-sample"
    poses = [pose for split in ("train", "dev", "test") for pose in load_phoenix_split(phoenix, split)]
    assert len(poses) == 15
    lengths = {}
    for row in csv.DictReader((phoenix / "metadata_all" / "phoenix14t_train.tsv").open(), delimiter="\t",
                              quoting=csv.QUOTE_NONE):
        lengths[row["name"]] = (int(row["num_frames"]), row["text"])
    slices = stream_slices()
    left_wrist, right_wrist = slices["body"].start + 4, slices["body"].start + 5
    right_moves_more = 0
    for pose in poses:
        name = pose.metadata["name"]
        if name in lengths:
            assert (pose.num_frames, pose.metadata["text"]) == lengths[name]
        xy = pose.keypoints[..., :2]
        # Each hand's wrist sits on its own arm's wrist; the signer's left is on the image right (larger x).
        assert np.linalg.norm(xy[:, slices["left_hand"].start] - xy[:, left_wrist], axis=-1).mean() < 0.08
        assert np.linalg.norm(xy[:, slices["right_hand"].start] - xy[:, right_wrist], axis=-1).mean() < 0.08
        assert (xy[:, slices["body"].start, 0] > xy[:, slices["body"].start + 1, 0]).all()
        path = lambda i: np.linalg.norm(np.diff(xy[:, i], axis=0), axis=-1).sum()
        right_moves_more += path(slices["right_hand"].start) > path(slices["left_hand"].start)
    assert right_moves_more == 12  # the dominant hand, as expected of right-handed signers (see phoenix_skels)

    dataset = phoenix_dataset(phoenix, "dev")
    assert len(dataset) == 5 and {"keypoints", "keypoint_mask", "text", "gloss", "name"} <= set(dataset.column_names)
    assert type(dataset.features["keypoints"]).__name__ == "Array3D"
    assert len(phoenix_sentences(phoenix)) == 8257


def test_fitted_tokenizer_frames_targets_like_mbart50(shared_data):
    sentences = phoenix_sentences(shared_data / "phoenix14t-sample")
    tokenizer = fit_tokenizer(sentences)
    ids = tokenizer(text_target=sentences[0])["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("de_DE") and ids[-1] == tokenizer.eos_token_id == 2
    assert tokenizer.pad_token_id == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == sentences[0]


@pytest.mark.parametrize(
    "preset, frozen, argv, expected",
    [
        ("phoenix14t", True, [], (1e-3, 0.1)),
        ("phoenix14t", False, [], (1e-4, 0.1)),
        ("csl-daily", False, [], (1e-4, 0.1)),
        ("how2sign", True, [], (3e-4, 1.0)),
        ("how2sign", False, [], (5e-5, 1.0)),
        ("how2sign", False, ["--learning_rate", "2e-5"], (2e-5, 1.0)),  # given values win
        ("phoenix14t", True, ["--max_grad_norm=0.5"], (1e-3, 0.5)),
    ],
)
def test_dataset_presets_follow_table_5(preset, frozen, argv, expected, tmp_path):
    script = recipe
    argv = ["--output_dir", str(tmp_path), "--dataset_preset", preset, *argv]
    argv += ["--freeze_pose_encoder"] if frozen else []
    classes = (script.ModelArguments, script.DataTrainingArguments, script.Seq2SeqTrainingArguments)
    model_args, data_args, training_args = parse_arguments(classes, script.PAPER_DEFAULTS, argv)
    script.apply_dataset_preset(training_args, data_args, model_args.freeze_pose_encoder, argv)
    assert (training_args.learning_rate, training_args.max_grad_norm) == pytest.approx(expected)


def test_paper_defaults_apply_unless_given(tmp_path):
    script = recipe
    classes = (script.ModelArguments, script.DataTrainingArguments, script.Seq2SeqTrainingArguments)
    model_args, data_args, args = parse_arguments(classes, script.DEFAULTS, ["--output_dir", str(tmp_path)])
    assert (args.weight_decay, args.num_train_epochs, args.per_device_train_batch_size) == (1e-3, 100, 32)
    assert getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "cosine"
    assert args.predict_with_generate and not args.remove_unused_columns
    assert data_args.warmup_epochs == 10 and data_args.frame_drop_duplicate_rate == 0.2
    # Selection: validation every epoch, the best BLEU-4 kept; generation: TwoStreamSLT's beam search.
    strategy = lambda value: getattr(value, "value", value)
    assert (strategy(args.eval_strategy), strategy(args.save_strategy)) == ("epoch", "epoch")
    assert args.load_best_model_at_end and args.metric_for_best_model == "bleu4" and args.greater_is_better
    assert (args.generation_num_beams, args.generation_max_length, data_args.length_penalty) == (5, 100, 1.0)
    assert recipe.generation_settings(args, data_args) == {"num_beams": 5, "max_length": 100}
    assert recipe.selection_note(args) == "the highest validation bleu4 (scored every epoch)"
    assert model_args.normalization is None  # inherited from the checkpoint
    _, _, args = parse_arguments(classes, script.DEFAULTS, ["--output_dir", str(tmp_path), "--weight_decay", "0.1"])
    assert args.weight_decay == 0.1


def test_example_script_is_the_packaged_recipe():
    spec = importlib.util.spec_from_file_location("run_sign_translation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main is recipe.main


def test_normalization_is_inherited_and_a_mismatch_is_an_error(tmp_path):
    checkpoint = tmp_path / "pretrained"
    MSMAEPoseProcessor(normalization="none").save_pretrained(checkpoint)
    assert inherited_normalization(None, str(checkpoint)) == "none"
    assert inherited_normalization("none", str(checkpoint)) == "none"
    with pytest.raises(ValueError, match=r"--normalization 'shoulder' differs from the normalization 'none'"):
        inherited_normalization("shoulder", str(checkpoint))
    # A checkpoint saved without its processor, or none: the asked value, else shoulder.
    assert inherited_normalization(None, str(tmp_path)) == "shoulder"
    assert inherited_normalization("none", None) == "none"
    # Every recipe goes through it: pretraining (continued) and classification as well as translation.
    from msmae import MSMAEConfig
    from msmae.recipes import pretraining, sign_classification

    assert pretraining.normalization_of(pretraining.ModelArguments(model_name_or_path=str(checkpoint))) == "none"
    classification_args = sign_classification.ModelArguments(model_name_or_path=str(checkpoint))
    processor = sign_classification.build_processor(
        classification_args, sign_classification.DataTrainingArguments(), MSMAEConfig())
    assert processor.normalization == "none"
    mismatch = {"model_name_or_path": str(checkpoint), "normalization": "shoulder"}
    with pytest.raises(ValueError, match="differs from the normalization 'none'"):
        pretraining.normalization_of(pretraining.ModelArguments(**mismatch))
    with pytest.raises(ValueError, match="differs from the normalization 'none'"):
        sign_classification.build_processor(sign_classification.ModelArguments(**mismatch),
                                            sign_classification.DataTrainingArguments(), MSMAEConfig())
    assert recipe.pose_checkpoint(recipe.ModelArguments(pose_encoder_name_or_path="enc")) == "enc"
    both = recipe.ModelArguments(model_name_or_path="slt", pose_encoder_name_or_path="enc")
    assert recipe.pose_checkpoint(both) == "slt"


def test_references_are_the_raw_text_not_decoded_labels(shared_data):
    """A perfect model (it generates the target ids) scored through the recipe's scorer: the references are the text
    column as it is, so full-width punctuation, which the NFKC tokenizer turns half-width, lowers the uncorrected
    scores only; decoded labels would have made both 100."""
    sentences = phoenix_sentences(shared_data / "phoenix14t-sample")[:200] + ["heute，morgen！übermorgen"]
    tokenizer = fit_tokenizer(sentences)
    references = ["es regnet heute，morgen！übermorgen .", "und nun die wettervorhersage ."]
    ids = tokenizer(text_target=references)["input_ids"]
    generated = np.full((2, max(map(len, ids))), tokenizer.pad_token_id)
    for i, row in enumerate(ids):
        generated[i, : len(row)] = row
    assert recipe.decode_generated(tokenizer, generated)[0] == "es regnet heute,morgen!übermorgen ."  # NFKC
    metric = load_translation_metric()
    scorer = recipe.translation_scorer(metric, tokenizer, references, "de")
    scores = scorer(type("EvalPrediction", (), {"predictions": generated})())
    assert scores["bleu4"] == pytest.approx(100.0) and scores["rougeL"] == pytest.approx(100.0)
    assert scores["bleu1_uncorrected"] < 100.0 and scores["rougeL_uncorrected"] < 100.0
    with pytest.raises(ValueError, match="2 generated sentences for 1 references"):
        recipe.translation_scorer(metric, tokenizer, references[:1], "de")(
            type("EvalPrediction", (), {"predictions": generated})())


@pytest.mark.slow
def test_end_to_end_on_the_phoenix_sample(shared_data, tmp_path):
    phoenix = shared_data / "phoenix14t-sample"
    tokenizer, text_dir, pose_dir = make_parts(tmp_path, phoenix_sentences(phoenix), normalization="none")
    output_dir = tmp_path / "out"
    command = [
        sys.executable, str(SCRIPT),
        "--pose_encoder_name_or_path", str(pose_dir), "--text_model_name_or_path", str(text_dir),
        "--phoenix_dir", str(phoenix), "--target_lang", "de_DE", "--dataset_preset", "phoenix14t",
        "--freeze_pose_encoder", "--lora_r", "4", "--lora_alpha", "8", "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "5", "--per_device_eval_batch_size", "5", "--warmup_epochs", "0",
        "--logging_steps", "1", "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps",
        "--save_steps", "3", "--report_to", "none", "--generation_max_length", "24", "--max_target_length", "8",
        "--generation_num_beams", "2", "--dataloader_num_workers", "0", "--seed", "0",
    ]
    # One thread: the tiny model gains nothing from more, and on a busy 2-core machine they slow it down tenfold.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "datasets_cache")}

    def run(*extra):
        result = subprocess.run(
            command + list(extra), capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        return result.stdout + result.stderr

    # An interrupted run (3 steps, checkpoint-3), then the full run in the same folder resumes from it.
    run("--do_train", "--max_steps", "3")
    history = json.loads((output_dir / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    first_losses = [entry["loss"] for entry in history if "loss" in entry]
    log = run("--do_train", "--do_eval", "--do_predict", "--max_steps", "6")
    assert f"resuming from {output_dir / 'checkpoint-3'}" in log

    # Trained: the preset's learning rate (frozen encoder) and the loss went down on the 5 training sentences.
    state = json.loads((output_dir / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[:3] == first_losses and losses[-1] < losses[0]
    assert (output_dir / "checkpoint-6").is_dir()
    card = (output_dir / "README.md").read_text()
    assert "| learning_rate | 0.001 |" in card and "| max_grad_norm | 0.1 |" in card and "translation" in card
    assert "| num_beams | 2 |" in card and "| max_length | 24 |" in card and "no width correction" not in card.split(
        "## Evaluation")[1].split("\n\n")[1]  # German: the uncorrected scores equal the corrected ones

    # Selection: validation BLEU-4 at steps 3 and 6; the saved model is the best checkpoint (the first on ties).
    bleu = {entry["step"]: entry["eval_bleu4"] for entry in state["log_history"] if "eval_bleu4" in entry}
    assert sorted(bleu) == [3, 6] and state["best_metric"] == max(bleu.values())
    best_step = min(step for step, value in bleu.items() if value == max(bleu.values()))
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{best_step}")
    saved = SignTranslationModel.from_pretrained(output_dir).state_dict()
    best = SignTranslationModel.from_pretrained(state["best_model_checkpoint"]).state_dict()
    last = SignTranslationModel.from_pretrained(output_dir / "checkpoint-6").state_dict()
    assert all(torch.equal(saved[name], best[name]) for name in saved)
    assert best_step == 6 or any(not torch.equal(saved[name], last[name]) for name in saved)

    # The pretraining's normalisation ("none", from its processor) was inherited.
    assert json.loads((output_dir / "preprocessor_config.json").read_text())["normalization"] == "none"

    # Predictions: one line per test sentence, scored with the same metric the script reports.
    predictions = (output_dir / "generated_predictions.txt").read_text(encoding="utf-8").splitlines()
    references = [pose.metadata["text"] for pose in load_phoenix_split(phoenix, "test")]
    assert len(predictions) == len(references) == 5
    scores = json.loads((output_dir / "predict_results.json").read_text())
    expected = load_translation_metric().compute(predictions=predictions, references=references, language="de")
    # Against the full text: labels were cut at 8 tokens, so scoring decoded labels would have differed.
    for key in ("bleu1", "bleu4", "rougeL", "bleu4_uncorrected", "rougeL_uncorrected", "sacrebleu"):
        assert scores[f"predict_{key}"] == pytest.approx(expected[key], abs=1e-6)
    truncated = [tokenizer.decode(tokenizer(text_target=r, max_length=8, truncation=True)["input_ids"],
                                  skip_special_tokens=True) for r in references]
    assert truncated != references
    assert scores["predict_level"] == "word"
    assert scores["predict_sacrebleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert {"eval_bleu4", "eval_rougeL"} <= set(json.loads((output_dir / "eval_results.json").read_text()))

    # The saved folder (adapters included) reloads and generates what the script wrote.
    model = SignTranslationModel.from_pretrained(output_dir).eval()
    assert model.config.freeze_pose_encoder and model.config.lora_r == 4 and model.adapter_parameter_names()
    assert model.generation_config.forced_bos_token_id == tokenizer.convert_tokens_to_ids("de_DE")
    generation = model.generation_config
    assert (generation.num_beams, generation.max_length, generation.length_penalty) == (2, 24, 1.0)
    processor = MSMAEPoseProcessor.from_pretrained(output_dir)
    inputs = processor(load_phoenix_split(phoenix, "test")[:2], return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs)  # the saved generation settings
    decoded = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    assert decoded == predictions[:2]

"""The transfer evaluation's measuring pieces (BENCHMARKS.md section 5 rests on them): the interpolation baseline,
the reconstruction error being the model's own loss, paired few-shot episodes, and merging reports."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "transfer"))
import transfer_eval  # noqa: E402
from transfer_fewshot import encoder_features, episodes, fine_tune_accuracy, linear_probe_accuracy  # noqa: E402
from transfer_recon import batch_windows, interpolate, masks_for, reconstruction_errors  # noqa: E402

from conftest import tiny_config  # noqa: E402

from msmae import MSMAEConfig, MSMAEForPreTraining, MSMAEForSignClassification  # noqa: E402

SIZE = dict(num_hidden_layers=1, cubelet_size=2)  # the model here: conftest's TINY with one encoder layer


def test_interpolation_is_linear_between_visible_detections_and_falls_back():
    t = np.arange(6, dtype=np.float32)
    values = np.stack([t, 10 * t], -1)[None, :, None, :].repeat(2, 2)  # (1, 6, 2 keypoints, 2)
    mask = np.ones((1, 6, 2), bool)
    mask[0, 2, 0] = False  # keypoint 0 not detected at frame 2: interpolation must skip it
    mask[0, :, 1] = False  # keypoint 1 never detected: the fallback
    hidden = np.zeros((1, 6, 2), bool)
    hidden[0, 1:4] = True
    fallback = np.array([[7.0, 7.0], [-1.0, -2.0]], np.float32)
    out, neither = interpolate(values, mask, hidden, fallback)
    np.testing.assert_allclose(out[0, 1:4, 0], values[0, 1:4, 0])  # from frames 0 and 4
    np.testing.assert_allclose(out[0, :, 1], np.broadcast_to(fallback[1], (6, 2)))
    assert neither[0, :, 1].all() and not neither[0, :, 0].any()
    # only one side known: the nearest visible value
    hidden[0, 4:] = True
    out, _ = interpolate(values, mask, hidden, fallback)
    np.testing.assert_allclose(out[0, 4:, 0], np.broadcast_to(values[0, 0, 0], (2, 2)))


def windows_of(count, frames, keypoints=48, seed=0):
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(count):
        values = np.cumsum(rng.normal(0, 0.05, (frames, keypoints, 2)), 0).astype(np.float32)
        mask = rng.random((frames, keypoints)) > 0.1
        pieces.append((values, mask))
    return pieces


@pytest.mark.parametrize("strategy", ["diff", "same"])
def test_reconstruction_error_is_the_models_loss(strategy):
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config(masking_strategy=strategy, **SIZE))
    pieces = windows_of(3, 16) + windows_of(1, 11, seed=1)  # one shorter window: padding must not be scored
    mean_pose = np.zeros((48, 2), np.float32)
    result = reconstruction_errors(model, pieces, mean_pose, repeats=2)
    check = result["loss_check"]
    assert check["recomputed"] == pytest.approx(check["model_loss"], rel=1e-5)
    # Smooth motion: interpolation beats a random model and the zero pose on the same masks.
    assert result["interpolation"]["all"] < result["model"]["all"]
    assert result["interpolation"]["all"] < result["mean_pose"]["all"]
    # Fixed, seeded masks: the same figures twice.
    assert reconstruction_errors(model, pieces, mean_pose, repeats=2)["model"] == result["model"]


def test_episodes_are_seeded_disjoint_and_balanced():
    labels = np.repeat(np.arange(4), 5)
    first = episodes(labels, 2, 10)
    assert [s.tolist() for s, _ in first] == [s.tolist() for s, _ in episodes(labels, 2, 10)]
    for support, query in first:
        assert np.bincount(labels[support]).tolist() == [2, 2, 2, 2]
        assert not set(support) & set(query) and len(support) + len(query) == len(labels)


def test_frozen_features_and_fine_tuning_run_on_the_models_device():
    torch.manual_seed(0)
    config = tiny_config(num_labels=3, **SIZE)
    values = np.random.default_rng(0).normal(0, 1, (9, 8, 48, 2)).astype(np.float32)
    mask = np.ones((9, 8, 48), bool)
    labels = np.repeat(np.arange(3), 3)
    features = encoder_features(MSMAEForPreTraining(config).msmae, values, mask)
    assert features.shape == (9, 32) and np.isfinite(features).all()
    support, query = episodes(labels, 1, 1)[0]
    assert 0.0 <= linear_probe_accuracy(features, labels, support, query) <= 1.0
    # Well-separated classes are learned from one clip each.
    values[labels == 1] += 3.0
    values[labels == 2] -= 3.0
    accuracy = fine_tune_accuracy(lambda: MSMAEForSignClassification(config), values, mask, labels, support, query,
                                  steps=20, learning_rate=1e-2, device="cpu")
    assert accuracy == 1.0


def report(results, command="x", environment=None):
    return {"date": "2026-11-27T00:00:00+00:00", "command": command, "heldout_signsuisse_files": ["a.pose"],
            "heldout_windows": 1, "msl150_clips": 86, "environment": environment or {"device": "cpu"},
            "results": results}


def test_combine_labels_runs_and_keeps_earlier_scores_without_their_models(tmp_path):
    scored = {"reconstruction_at_diff-0.5": {"model": {"all": 0.1}}, "evaluated": str(tmp_path / "gone")}
    (tmp_path / "a.json").write_text(json.dumps(report({"diff-0.5-seed0": scored}, "first", {"device": "gpu"})))
    (tmp_path / "b.json").write_text(json.dumps(report({"diff-0.5-seed0": dict(scored)}, "second")))
    output = tmp_path / "combined.json"
    with pytest.MonkeyPatch.context() as patch:  # its tables need full results; the merge is what is tested here
        for name in ("table", "variant_table", "curve_table"):
            patch.setattr(transfer_eval, name, lambda results: "")
        transfer_eval.main(["--combine", str(tmp_path / "a.json"), f"cpu={tmp_path / 'b.json'}",
                            "--common-masking", "diff-0.5", "--output", str(output)])
    results = json.loads(output.read_text())["results"]
    assert set(results) == {"diff-0.5-seed0", "cpu/diff-0.5-seed0"}
    assert results["diff-0.5-seed0"]["environment"] == {"device": "gpu"}
    assert results["cpu/diff-0.5-seed0"]["report_command"] == "second"
    assert results["diff-0.5-seed0"]["reconstruction_at_diff-0.5"] == {"model": {"all": 0.1}}  # not recomputed

    # A merged report merges again, its runs keeping their own environment and command.
    with pytest.MonkeyPatch.context() as patch:
        for name in ("table", "variant_table", "curve_table"):
            patch.setattr(transfer_eval, name, lambda results: "")
        transfer_eval.main(["--combine", f"again={output}", "--common-masking", "none",
                            "--output", str(tmp_path / "again.json")])
    again = json.loads((tmp_path / "again.json").read_text())["results"]
    assert again["again/cpu/diff-0.5-seed0"]["environment"] == {"device": "cpu"}
    assert again["again/diff-0.5-seed0"]["report_command"] == "first"


def test_combine_refuses_reports_with_different_held_out_files(tmp_path):
    other = report({})
    other["heldout_signsuisse_files"] = ["b.pose"]
    (tmp_path / "a.json").write_text(json.dumps(report({})))
    (tmp_path / "b.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="different held-out"):
        transfer_eval.main(["--combine", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--common-masking", "none",
                            "--output", str(tmp_path / "c.json")])


def test_hands_variant_turns_on_the_stream_type_embedding_in_the_pretraining_command():
    strategy, ratio, overrides = transfer_eval.parse_variant("diff-0.5-hands")
    assert (strategy, ratio) == ("diff", "0.5") and overrides.endswith(",stream_type_embedding=true")
    config = MSMAEConfig()
    config.update_from_string(overrides)  # what the recipe's --config_overrides does with it
    assert config.stream_type_embedding is True and config.hidden_size == 256
    assert "stream_type_embedding" not in transfer_eval.parse_variant("same-0.5")[2]
    for bad in ("diff-0.5-face", "mixed-0.5", "diff"):
        with pytest.raises(SystemExit, match="Unknown variant"):
            transfer_eval.parse_variant(bad)


def test_target_variants_set_the_reconstruction_target_and_the_model_size():
    for variant, field, value in (("diff-0.5-norm", "norm_target_loss", True),
                                  ("diff-0.5-velocity", "reconstruction_target", "velocity")):
        _, _, overrides = transfer_eval.parse_variant(variant, "hidden_size=128,num_attention_heads=4")
        config = MSMAEConfig()
        config.update_from_string(overrides)
        assert getattr(config, field) == value and config.hidden_size == 128
    args = transfer_eval.parse_args(["--model-overrides", "hidden_size=64", "--variants", "diff-0.5-norm"])
    command = transfer_eval.pretrain_command(args, "train", "diff-0.5-norm", 0)
    assert command[command.index("--config_overrides") + 1] == "hidden_size=64,norm_target_loss=true"


def test_reconstruction_is_scored_in_pose_coordinates_for_a_normalised_target():
    # Scored on the de-normalised `reconstruction`, the model's error equals the squared error of that output.
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config(norm_target_loss=True, **SIZE)).eval()
    pieces = windows_of(2, 16)
    result = reconstruction_errors(model, pieces, np.zeros((48, 2), np.float32), repeats=1)
    values, kmask, frames = batch_windows(pieces, model.config.streams)
    hidden = masks_for(model, frames, 1234, 0, 0)
    with torch.no_grad():
        out = model(pose_values=values, keypoint_mask=kmask, attention_mask=frames, bool_masked_pos=hidden)
    weights = model._loss_weights(kmask, hidden)
    error = ((out.reconstruction - values) ** 2).mean(-1)[weights].mean()
    assert result["model"]["all"] == pytest.approx(float(error), rel=1e-5)
    assert result["model"]["all"] != pytest.approx(float(((out.logits - values) ** 2).mean(-1)[weights].mean()), rel=1e-3)


def test_token_mean_baseline_predicts_each_hidden_token_by_its_own_mean():
    from transfer_recon import token_mean_errors

    model = MSMAEForPreTraining(tiny_config(**SIZE))
    constant = [(np.full((16, 48, 2), 0.3, np.float32), np.ones((16, 48), bool))]
    assert token_mean_errors(model, constant, repeats=1)["all"] == pytest.approx(0.0, abs=1e-10)
    # x = 1, y = -1 everywhere: the token mean is 0, one squared unit off on every coordinate.
    values = np.stack([np.ones((16, 48)), -np.ones((16, 48))], -1).astype(np.float32)
    assert token_mean_errors(model, [(values, np.ones((16, 48), bool))], repeats=1)["all"] == pytest.approx(1.0)

"""`msmae demo` (msmae.training.demo.main) end to end in its quick setting: on the real signing packaged with msmae,
on generated clips, and on the real data in ../shared."""

import csv
import json

import pytest

from msmae.training import demo


def check_outputs(output, capsys, num_signs):
    summary = json.loads((output / "summary.json").read_text())
    printed = capsys.readouterr().out
    assert "MS-MAE demo finished" in printed and str(output / "summary.json") in printed
    pre, cls = summary["pretraining"], summary["sign_classification"]
    assert pre["first_logged_loss"] > 0 and pre["eval_masked_keypoint_mse"] > 0
    assert pre["reconstruction_pictures"] and all(p.endswith(".png") for p in pre["reconstruction_pictures"])
    assert cls["num_signs"] == num_signs
    assert 0 <= cls["test"]["test_top1"] <= 1 and 0 <= cls["validation"]["eval_top1"] <= 1
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "README.md",
                 "predictions_test.csv", "confusion_matrix_test.png"):
        assert (output / "sign-classification" / name).is_file(), name
    assert (output / "pretraining" / "model.safetensors").is_file()
    # Step 3 reloads the saved model: its predictions on the first test clips agree with the script's file.
    with open(output / "sign-classification" / "predictions_test.csv") as f:
        by_source = {row["source"]: row["prediction"] for row in csv.DictReader(f)}
    assert summary["predictions"]
    for prediction in summary["predictions"]:
        assert by_source[prediction["source"]] == prediction["prediction"]
    return summary


def test_parser_needs_no_arguments():
    args = demo.build_parser().parse_args([])
    assert args.output_dir == "msmae-demo-output" and not args.quick and args.data == "auto"


def test_without_shared_data_auto_uses_the_packaged_signing(tmp_path, monkeypatch):
    monkeypatch.delenv("MSMAE_SHARED_DATA", raising=False)
    monkeypatch.setattr(demo, "find_data_dir", lambda data_dir=None: None)
    args = demo.build_parser().parse_args(["--quick", "--output_dir", str(tmp_path)])
    kind, description, pretraining, recognition = demo.prepare_data(args, tmp_path)
    assert kind == "packaged" and description.startswith("real") and "10.5281/zenodo.17783312" in description
    assert [p.split("/")[-1] for p in pretraining] == ["packaged-asl-app-100", "packaged-msl150"]
    assert recognition == pretraining[1]


def test_shared_data_asked_for_but_missing_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "find_data_dir", lambda data_dir=None: None)
    args = demo.build_parser().parse_args(["--data", "shared"])
    with pytest.raises(FileNotFoundError, match="MSMAE_SHARED_DATA.*--data packaged"):
        demo.prepare_data(args, tmp_path)


def test_load_example_gives_the_packaged_recipe():
    from msmae.recipes import pretraining, sign_classification

    assert demo.load_example("run_pretraining") is pretraining
    assert demo.load_example("run_sign_classification") is sign_classification


def test_quick_demo_on_packaged_signing(tmp_path, capsys):
    assert demo.main(["--quick", "--data", "packaged", "--output_dir", str(tmp_path / "out")]) == 0
    summary = check_outputs(tmp_path / "out", capsys, num_signs=5)
    assert summary["data_source"] == "packaged" and summary["data"].startswith("real")
    assert all(p["source"].startswith("msmae.sample_data:msl150/") for p in summary["predictions"])
    assert all(p["label"] in ("ambulancia", "doctor", "dolor", "hoy", "yo") for p in summary["predictions"])


def test_quick_demo_on_generated_clips(tmp_path, capsys):
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(tmp_path / "out")]) == 0
    summary = check_outputs(tmp_path / "out", capsys, num_signs=8)
    assert summary["data_source"] == "synthetic" and summary["data"].startswith("synthetic")
    assert "not sign language" in summary["data"]


@pytest.mark.slow
def test_quick_demo_on_real_data(shared_data, tmp_path, capsys):
    assert demo.main(["--quick", "--data", "shared", "--data_dir", str(shared_data),
                      "--output_dir", str(tmp_path / "out")]) == 0
    summary = check_outputs(tmp_path / "out", capsys, num_signs=5)
    assert summary["data_source"] == "shared" and summary["data"].startswith("real") and all("msl150" in p["source"] for p in summary["predictions"])

"""`msmae demo` (msmae.recipes.demo.main) end to end in its quick setting: on the real signing packaged with msmae,
on generated clips, and on the real data in ../shared."""

import csv
import json

import pytest

from msmae.recipes import demo


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


@pytest.mark.slow
def test_quick_demo_on_packaged_signing(tmp_path, capsys):
    assert demo.main(["--quick", "--data", "packaged", "--output_dir", str(tmp_path / "out")]) == 0
    summary = check_outputs(tmp_path / "out", capsys, num_signs=5)
    assert summary["data_source"] == "packaged" and summary["data"].startswith("real")
    assert all(p["source"].startswith("msmae.sample_data:msl150/") for p in summary["predictions"])
    assert all(p["label"] in ("ambulancia", "doctor", "dolor", "hoy", "yo") for p in summary["predictions"])


@pytest.mark.slow
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
    assert summary["data_source"] == "shared" and summary["data"].startswith("real") and all(p["source"].startswith("sample_npy/") for p in summary["predictions"])  # MSL-150 clips, named as in predictions_test.csv


def user_files(output):
    """Files a user keeps in the demo's folders: a run of their own (with a checkpoint) and notes."""
    files = {
        output / "pretraining" / "checkpoint-100" / "trainer_state.json": '{"global_step": 100}',
        output / "pretraining" / "my-notes.txt": "my own notes",
        output / "sign-classification" / "checkpoint-7" / "model.safetensors": "not the demo's",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_a_non_empty_output_dir_is_refused_and_nothing_is_deleted(tmp_path, capsys):
    files = user_files(tmp_path / "out")
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(tmp_path / "out")]) == 2
    assert "is not empty" in capsys.readouterr().err
    # --overwrite_output_dir removes only what an earlier demo recorded writing; here it wrote nothing.
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(tmp_path / "out"),
                      "--overwrite_output_dir"]) == 2
    assert "no earlier msmae demo output" in capsys.readouterr().err
    assert all(path.read_text() == text for path, text in files.items())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pretraining", "sign-classification"]


def test_output_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("a file")
    assert demo.main(["--quick", "--output_dir", str(tmp_path / "out")]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "out").read_text() == "a file"


@pytest.mark.slow
def test_overwrite_replaces_the_earlier_demo_and_keeps_the_users_files(tmp_path, capsys):
    output = tmp_path / "out"
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output)]) == 0
    capsys.readouterr()
    written = json.loads((output / demo.WRITTEN).read_text())["files"]
    assert "pretraining/model.safetensors" in written and "summary.json" in written
    files = user_files(output)
    stale = output / "sign-classification" / "predictions_test.csv"
    stale.write_text("stale")
    # A plain re-run is refused (the folder is not empty); so is an overwrite while checkpoints of another run
    # lie in the demo's folders (the recipes would resume from them). Nothing changes.
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output)]) == 2
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output), "--overwrite_output_dir"]) == 2
    assert "checkpoint-100" in capsys.readouterr().err
    assert stale.read_text() == "stale" and (output / "summary.json").is_file()
    assert all(path.read_text() == text for path, text in files.items())
    for path in list(files):
        if "checkpoint-" in str(path):
            path.unlink()
            path.parent.rmdir()
            del files[path]
    first_model = (output / "pretraining" / "model.safetensors").stat().st_mtime_ns
    assert demo.main(["--quick", "--data", "synthetic", "--output_dir", str(output), "--overwrite_output_dir"]) == 0
    check_outputs(output, capsys, num_signs=8)
    assert all(path.read_text() == text for path, text in files.items())  # the user's notes are kept
    # The demo's own files were replaced: pretraining trained again (a finished run is not resumed) ...
    assert (output / "pretraining" / "model.safetensors").stat().st_mtime_ns > first_model
    assert stale.read_text() != "stale"

"""Issue 26, point 4: the command line on inputs a new user gives: one line naming the input and what to do, no
traceback; Ctrl-C ends every command with one line saying what was kept (exit 130)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import msmae.cli as cli
from msmae.cli.predict import EXIT_INPUT, EXIT_MODEL
from conftest import predict_cli, sample_clip_file, save_tiny_classifier


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("predict") / "classifier")


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return sample_clip_file(tmp_path_factory.mktemp("clips"))


def test_predict_names_a_fifo_named_as_a_video(classifier_dir, tmp_path, caplog):
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    assert predict_cli([str(fifo), "--model", str(classifier_dir), "--device", "cpu"]) == EXIT_INPUT
    assert f"{fifo} is not a regular file (a FIFO)" in caplog.text


def test_predict_names_a_checkpoint_without_config_json(classifier_dir, clip_file, tmp_path, caplog):
    folder = tmp_path / "no-config"
    shutil.copytree(classifier_dir, folder)
    (folder / "config.json").unlink()
    assert predict_cli([str(clip_file), "--model", str(folder), "--device", "cpu"]) == EXIT_MODEL
    assert f"{folder} has no config.json" in caplog.text and "model_type" not in caplog.text


def test_predict_names_a_config_whose_labels_do_not_match_the_weights(classifier_dir, clip_file, tmp_path, caplog):
    folder = tmp_path / "edited"
    shutil.copytree(classifier_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"sign-{i}" for i in range(7)}
    config["label2id"] = {f"sign-{i}": i for i in range(7)}
    (folder / "config.json").write_text(json.dumps(config))
    assert predict_cli([str(clip_file), "--model", str(folder), "--device", "cpu"]) == EXIT_MODEL
    assert "names 7 labels" in caplog.text and "weights has 5" in caplog.text


def test_predict_answers_the_good_inputs_of_a_batch_with_a_damaged_one(classifier_dir, clip_file, tmp_path, capsys,
                                                                      caplog):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    code = predict_cli([str(clip_file), str(broken), str(clip_file), "--model", str(classifier_dir), "--device", "cpu",
                    "--format", "json"])
    assert code == EXIT_INPUT
    results = json.loads(capsys.readouterr().out)
    assert [("predictions" in r, "error" in r) for r in results] == [(True, False), (False, True), (True, False)]
    assert results[0]["predictions"] == results[2]["predictions"]
    assert str(broken) in results[1]["error"]


@pytest.mark.parametrize("command, argv, kept", [
    ("predict", ["predict", "x.npz", "--model", "m"], "files already written are kept"),
    ("extract", ["extract", "clips", "--output_dir", "out"], "the clips extracted so far are kept in out; run the "
                                                             "same command again"),
    ("demo", ["demo", "--output_dir", "demo-out"], "listed in demo-out/msmae-demo-files.json"),
])
def test_ctrl_c_ends_with_one_line_saying_what_was_kept(monkeypatch, capsys, command, argv, kept):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"msmae {command}: interrupted (Ctrl-C); ") and kept in err


@pytest.mark.slow
def test_ctrl_c_of_a_real_demo_prints_one_line_and_keeps_its_record(tmp_path):
    output = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "msmae.cli", "demo", "--quick", "--data", "synthetic", "--output_dir", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (output / "msmae-demo-files.json").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("msmae demo: interrupted (Ctrl-C); the files written so far")
    assert json.loads((output / "msmae-demo-files.json").read_text())["files"]


@pytest.mark.parametrize("content, problem", [(b"", "is empty (0 bytes)"), (b"PAR1 cut short", "cannot be read")])
def test_compact_names_a_damaged_part(tmp_path, capsys, caplog, content, problem):
    source = tmp_path / "extracted"
    (source / "data").mkdir(parents=True)
    part = source / "data" / "train-0000000000000000.parquet"
    part.write_bytes(content)
    assert cli.main(["compact", str(source), "--output_dir", str(tmp_path / "shards")]) == 2
    err = capsys.readouterr().err + caplog.text
    assert f"{part} {problem}" in err and "msmae extract" in err and "Traceback" not in err
    assert not (tmp_path / "shards").exists()


def test_predict_refuses_a_frame_rate_that_is_not_positive(classifier_dir, clip_file, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict_cli([str(clip_file), "--model", str(classifier_dir), "--fps", "-5"])
    assert exit_.value.code == 2
    assert "--fps must be a positive number of frames per second (e.g. 25), got -5.0" in capsys.readouterr().err

"""`msmae predict` (`msmae.cli.predict`): recognition and translation output, exit codes, bad inputs named."""

import json
import os
import subprocess
import sys

import pytest
from transformers import pipeline

from msmae import MSMAEForPreTraining, MSMAEForSignClassification
from msmae.cli.predict import EXIT_INPUT, EXIT_MODEL, EXIT_OK
from msmae.pipeline_msmae import RECOGNITION_TASK, TRANSLATION_TASK
from conftest import (
    predict_cli,
    sample_clip_file,
    sample_pose_file,
    save_tiny_classifier,
    save_tiny_translator,
    synthetic_clip,
    tiny_config,
)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("predict") / "classifier")


@pytest.fixture(scope="module")
def recognizer(classifier_dir):
    return pipeline(RECOGNITION_TASK, model=MSMAEForSignClassification.from_pretrained(classifier_dir), device="cpu")


@pytest.fixture
def pose_files(tmp_path):
    """Two real clips shipped with msmae (MSL-150, ASL-App), as pose files."""
    return [sample_clip_file(tmp_path / "poses", name) for name in ("msl150/doctor/2", "asl-app-100/hello")]


@pytest.fixture
def dot_pose_files(tmp_path):
    """The same real clips as pose-format `.pose` files, for the tests that need that format: a URL's content is
    recognised by the .pose signature, and the .pose reader's calls are counted."""
    return [sample_pose_file(tmp_path / "poses", name) for name in ("msl150/doctor/2", "asl-app-100/hello")]


def test_json_output_on_real_pose_files(classifier_dir, recognizer, pose_files, capsys):
    pose_files = [p for p in pose_files if p.exists()]
    code = predict_cli([*map(str, pose_files), "--model", str(classifier_dir), "--format", "json", "--top_k", "3",
                    "--device", "cpu"])
    assert code == EXIT_OK
    results = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in results] == [str(p) for p in pose_files]
    for path, result in zip(pose_files, results):
        expected = recognizer(str(path), top_k=3)
        assert [p["label"] for p in result["predictions"]] == [p["label"] for p in expected]
        assert [p["score"] for p in result["predictions"]] == pytest.approx([p["score"] for p in expected], abs=1e-5)


def test_table_output(classifier_dir, recognizer, pose_files, capsys):
    assert predict_cli([str(pose_files[0]), "--model", str(classifier_dir), "--top_k", "2"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["input", "rank", "label", "score"]
    best, second = recognizer(str(pose_files[0]), top_k=2)
    assert lines[1].split() == [str(pose_files[0]), "1", best["label"], f"{best['score']:.4f}"]
    assert lines[2].split() == ["2", second["label"], f"{second['score']:.4f}"]
    assert len(lines) == 3


def test_bad_inputs_exit_2_and_are_named(classifier_dir, pose_files, tmp_path, capsys, caplog):
    missing = tmp_path / "missing.mp4"
    assert predict_cli([str(pose_files[0]), str(missing), "--model", str(classifier_dir)]) == EXIT_INPUT
    assert f"Input not found: {missing}" in caplog.text
    assert capsys.readouterr().out == ""  # checked before the model loads: nothing predicted

    notes = tmp_path / "notes.txt"
    notes.write_text("not a clip")
    assert predict_cli([str(notes), "--model", str(classifier_dir)]) == EXIT_INPUT
    assert f"{notes}: unsupported file type '.txt'" in caplog.text


def test_an_unreadable_file_does_not_stop_the_others(classifier_dir, pose_files, shared_data, capsys, caplog):
    empty = shared_data / "bad-inputs" / "empty.pose"  # a real broken file met in the wild
    openpose = shared_data / "pose-format-samples" / "openpose.pose"  # a layout the readers cannot map
    code = predict_cli([str(empty), str(pose_files[0]), str(openpose), "--model", str(classifier_dir),
                        "--format", "json"])
    assert code == EXIT_INPUT
    results = json.loads(capsys.readouterr().out)
    assert "empty" in results[0]["error"] and "predictions" not in results[0]
    assert len(results[1]["predictions"]) == 5
    assert "OpenPose" in results[2]["error"] or "pose_keypoints_2d" in results[2]["error"]
    assert f"Cannot read {empty}" in caplog.text and f"Cannot read {openpose}" in caplog.text


def test_model_problems_exit_1(pose_files, tmp_path, caplog):
    assert predict_cli([str(pose_files[0]), "--model", str(tmp_path / "no-such-model")]) == EXIT_MODEL
    assert "no such checkpoint folder" in caplog.text
    pretrained = tmp_path / "pretrained"
    MSMAEForPreTraining(tiny_config()).save_pretrained(pretrained)
    assert predict_cli([str(pose_files[0]), "--model", str(pretrained)]) == EXIT_MODEL
    assert "MSMAEForPreTraining" in caplog.text and "without a task head" in caplog.text


def test_bad_arguments_exit_2(classifier_dir, pose_files):
    import torch

    bad = [["--top_k", "0"], ["--batch_size", "0"], ["--device", "tpu-of-dreams"]]
    if not torch.cuda.is_available():
        bad.append(["--device", "cuda"])
    for extra in bad:
        with pytest.raises(SystemExit) as exit_info:
            predict_cli([str(pose_files[0]), "--model", str(classifier_dir), *extra])
        assert exit_info.value.code == 2, extra
    with pytest.raises(SystemExit) as exit_info:
        predict_cli([str(pose_files[0])])  # --model is required
    assert exit_info.value.code == 2


def test_translation_checkpoint_prints_text(tmp_path, capsys):
    import numpy as np

    from msmae.modeling_sign_translation import SignTranslationModel

    translator_dir = save_tiny_translator(tmp_path / "translator")
    clip = synthetic_clip(30, seed=1)
    clip_file = tmp_path / "sentence.npz"
    np.savez(clip_file, **{k: v for k, v in clip.to_example().items() if k != "source"})
    code = predict_cli([str(clip_file), "--model", str(translator_dir), "--format", "json", "--max_new_tokens", "5"])
    assert code == EXIT_OK
    (result,) = json.loads(capsys.readouterr().out)
    translator = pipeline(TRANSLATION_TASK, model=SignTranslationModel.from_pretrained(translator_dir))
    assert result == {"input": str(clip_file), "translation": translator(clip, max_new_tokens=5)[0]["translation_text"]}
    assert predict_cli([str(clip_file), "--model", str(translator_dir), "--max_new_tokens", "5"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["input", "translation"] and lines[1].startswith(str(clip_file))


@pytest.mark.slow
def test_command_line_on_a_real_video(classifier_dir, shared_data, tmp_path):
    pytest.importorskip("mediapipe")
    video = shared_data / "pose-format-samples" / "test_video.mp4"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "msmae.cli", "predict", str(video), "--model", str(classifier_dir), "--format", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (prediction,) = json.loads(result.stdout)
    assert prediction["input"] == str(video) and len(prediction["predictions"]) == 5
    assert sum(p["score"] for p in prediction["predictions"]) == pytest.approx(1.0, abs=1e-4)
    assert "inference_feedback_manager" not in result.stderr  # MediaPipe's start-up noise is filtered


def test_a_url_input_is_downloaded_and_a_failed_one_named(classifier_dir, recognizer, dot_pose_files, tmp_path, capsys, caplog):
    import functools
    import http.server
    import threading

    (tmp_path / "sign.pose").write_bytes(dot_pose_files[0].read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        code = predict_cli([f"{base}/sign.pose", f"{base}/missing.pose", "--model", str(classifier_dir), "--format",
                        "json", "--top_k", "2"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == EXIT_INPUT  # the missing one; the other is still answered
    results = json.loads(capsys.readouterr().out)
    expected = recognizer(str(dot_pose_files[0]), top_k=2)
    assert [p["label"] for p in results[0]["predictions"]] == [p["label"] for p in expected]
    assert f"{base}/missing.pose" in caplog.text


def recording(calls, function, record):
    def wrapper(*args, **kwargs):
        calls.append(record(*args, **kwargs))
        return function(*args, **kwargs)

    return wrapper


def test_the_pipeline_reads_each_input_once(classifier_dir, dot_pose_files, monkeypatch, capsys):
    # The CLI hands each path to the pipeline as it is; loading and preprocessing happen there, once per input.
    import msmae.clips
    from msmae.pipeline_msmae import SignPosePipeline
    from msmae.processing_msmae import MSMAEPoseProcessor

    handed, reads, processed = [], [], []
    monkeypatch.setattr(SignPosePipeline, "preprocess",
                        recording(handed, SignPosePipeline.preprocess, lambda pipe, clip, **kwargs: clip))
    monkeypatch.setattr(msmae.clips, "read_pose_file",
                        recording(reads, msmae.clips.read_pose_file, lambda path, **kwargs: str(path)))
    monkeypatch.setattr(MSMAEPoseProcessor, "__call__",
                        recording(processed, MSMAEPoseProcessor.__call__, lambda *args, **kwargs: None))
    paths = [str(p) for p in dot_pose_files if p.exists()]
    assert predict_cli([*paths, "--model", str(classifier_dir), "--format", "json", "--batch_size", "2"]) == EXIT_OK
    assert len(json.loads(capsys.readouterr().out)) == len(paths)
    assert handed == paths  # the paths themselves, not clips the CLI loaded
    assert sorted(reads) == sorted(paths) and len(processed) == len(paths)

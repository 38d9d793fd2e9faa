"""What a visitor of the web demo / Space gets without a video of their own (issue 25, point 5): examples to click
(packaged clips drawn as skeletons, with licences), the signs the model knows, a skeleton with a head, the model's
real name; and what the server keeps: a bounded folder of animations, one log line per user error."""

import json
import logging
import shutil

import numpy as np
import pytest
from conftest import LABELS, save_tiny_classifier
from transformers import pipeline

from msmae import sample_data
from msmae.keypoint_layout import ALL_STREAMS, stream_slices
from msmae.pipeline_msmae import RECOGNITION_TASK
from msmae.serving.visualization import FACE_BONES, STREAM_COLORS, render_frames, skeleton

gr = pytest.importorskip("gradio")
pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("ckpt") / "msl-signs")


@pytest.fixture(scope="module")
def demo(checkpoint):
    from msmae.serving.app import SignDemo

    demo = SignDemo(checkpoint)
    yield demo
    demo.close()


def test_the_skeleton_has_a_head(shared_data):
    from msmae.pose_io import read_pose_file

    bones, owners = skeleton(ALL_STREAMS)
    face = stream_slices()["face"]
    face_bones = bones[[owner == "face" for owner in owners]]
    assert len(face_bones) == len(FACE_BONES) > 100
    assert set(face_bones.ravel()) == set(range(face.start, face.stop))  # every face point is on a line
    # Drawn: the outline covers far more pixels in the face's colour than its 112 dots alone.
    clip = read_pose_file(shared_data / "pose-format-samples" / "example_full_holistic.pose")
    (image,) = render_frames(clip, streams=("face",), frames=[10], height=400)
    color = np.array([int(STREAM_COLORS["face"][i : i + 2], 16) for i in (1, 3, 5)])
    face_pixels = int((np.abs(image.astype(int) - color).sum(-1) < 60).sum())
    assert face_pixels > 1000, face_pixels  # about 1500 with the outline, under 400 with dots only


def test_the_page_names_the_model_and_lists_its_signs(checkpoint, demo, tmp_path):
    from msmae.serving.app import build_app, checkpoint_name

    assert demo.model_name == "msl-signs" and demo.labels == LABELS
    # A generic folder name (a Space's `model/`) is not a name: the card's model_name, else the parent folder.
    copy = shutil.copytree(checkpoint, tmp_path / "my-signs" / "model")
    assert checkpoint_name(copy) == "my-signs"
    (copy / "README.md").write_text("---\nlicense: apache-2.0\nmodel_name: msmae-msl150-signs\n---\n\n# x\n")
    assert checkpoint_name(copy) == "msmae-msl150-signs"
    assert checkpoint_name("someone/signs-model") == "someone/signs-model"

    page = json.dumps(build_app(demo).get_config_file(), ensure_ascii=False, default=str)
    assert "**msl-signs**" in page and "(`model`)" not in page
    assert "The 5 signs this model knows" in page and ", ".join(LABELS) in page
    assert "MSL-150" in page and "MIT" in page  # the examples' licence


def test_examples_answer_for_packaged_clips(checkpoint, demo):
    names = demo.examples()
    assert names and len(names) == len({sample_data.load_clip(n).metadata["label"] for n in names})
    assert {sample_data.load_clip(n).metadata["label"] for n in names} <= set(LABELS)
    preview = demo.example_preview(names[0])
    assert preview.suffix == ".png" and preview.stat().st_size > 0
    answer, gif = demo.run_example(names[1])
    expected = pipeline(RECOGNITION_TASK, model=str(checkpoint))(sample_data.load_clip(names[1]), top_k=5)
    assert list(answer) == [r["label"] for r in expected]
    assert gif.endswith(".gif")


def test_animations_stay_in_a_bounded_folder(checkpoint):
    from msmae.serving.app import KEEP_ANIMATIONS, SignDemo

    demo = SignDemo(checkpoint)
    name = demo.examples()[0]
    gifs = [demo.run_example(name)[1] for _ in range(KEEP_ANIMATIONS + 4)]
    kept = sorted(demo.output_dir.glob("*.gif"))
    assert len(kept) == KEEP_ANIMATIONS and str(kept[0].parent) == str(demo.output_dir)
    assert all(gif in map(str, kept) for gif in gifs[-KEEP_ANIMATIONS:])  # the newest, still being served
    folder = demo.output_dir
    demo.close()
    assert not folder.exists()


def test_user_errors_are_one_log_line_and_bugs_keep_their_traceback(demo, caplog, monkeypatch, tmp_path):
    from msmae.serving.app import build_app

    app = build_app(demo)
    predict = app.fns[0].fn
    with caplog.at_level(logging.WARNING, logger="msmae.serving.app"):
        with pytest.raises(gr.Error) as refused:
            predict(None)
        empty = tmp_path / "empty.mp4"
        empty.write_bytes(b"")
        with pytest.raises(gr.Error):
            predict(str(empty))
    assert refused.value.print_exception is False  # Gradio prints no traceback either
    records = [r for r in caplog.records if r.name == "msmae.serving.app"]
    assert len(records) == 2 and all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    assert "empty" in records[1].getMessage()

    caplog.clear()
    monkeypatch.setattr(demo, "answer", lambda pose: 1 / 0)  # a bug, not the visitor's fault
    example = [fn for fn in build_app(demo).fns.values() if fn.name == "<lambda>"][0]
    with caplog.at_level(logging.WARNING, logger="msmae.serving.app"):
        with pytest.raises(gr.Error, match="on our side"):
            example.fn(None, demo.examples()[0])
    bug = caplog.records[-1]
    assert bug.levelno == logging.ERROR and bug.exc_info and bug.exc_info[0] is ZeroDivisionError


def test_the_space_keeps_the_models_name(checkpoint, tmp_path):
    from msmae.serving.app import write_space

    space = write_space(checkpoint, tmp_path / "space")
    app_py = (space / "app.py").read_text()
    assert "model_name='msl-signs'" in app_py
    assert "MSL-150" in (space / "README.md").read_text()

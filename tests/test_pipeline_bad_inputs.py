"""Issue 26, point 4: inputs a new user gives the pipelines get one clear message naming the input, and a batch
with bad clips answers the good ones and names the bad ones (`BadClipsError`). Issue 25: msmae's clips
(`SignPose`) are accepted by a checkpoint's carried pipeline (duck-typed on the fields, not on the class)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from transformers import pipeline

from conftest import sample_clip_file, save_tiny_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def recognizer(checkpoint):
    return pipeline("sign-language-recognition", model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return sample_clip_file(tmp_path_factory.mktemp("clips"))


def test_an_empty_batch_gets_no_answers(recognizer):
    assert recognizer([]) == []
    assert recognizer(()) == []


def test_a_batch_with_missing_clips_answers_the_good_ones_and_names_each_bad_one(recognizer, clip_file, tmp_path):
    from msmae.pipeline_msmae import BadClipsError

    missing, other = tmp_path / "missing.npz", tmp_path / "gone.pose"
    alone = recognizer(str(clip_file), top_k=3)
    with pytest.raises(BadClipsError) as caught:
        recognizer([str(clip_file), str(missing), str(clip_file), str(other)], top_k=3)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert "2 of 4 clips" in message and str(missing) in message and str(other) in message
    assert "clip 1" in message and "clip 3" in message
    assert error.answers[0] == alone and error.answers[2] == alone
    assert error.answers[1] is None and error.answers[3] is None
    assert sorted(error.errors) == [1, 3] and isinstance(error.errors[1], FileNotFoundError)
    assert isinstance(error, ValueError)  # what callers that catch a bad clip already catch


def test_a_batch_with_bad_arguments_is_not_blamed_on_the_clips(recognizer, clip_file):
    with pytest.raises(ValueError, match=r"top_k must be at least 1 \(a whole number\), got 'three'"):
        recognizer([str(clip_file), str(clip_file)], top_k="three")


@pytest.mark.parametrize("value", [None, 3, 2.5, True])
def test_a_value_that_is_no_clip_is_named(recognizer, value):
    with pytest.raises(ValueError, match=rf"^Cannot use the clip {value!r}: .*is not a clip.*give a video or pose file"):
        recognizer(value)


def test_a_dict_that_is_no_clip_names_the_keys_it_needs(recognizer):
    with pytest.raises(ValueError, match=r"a dict clip needs `pose_values`.*or `keypoints` and `keypoint_mask`.*"
                                         r"got the keys \['frames'\]"):
        recognizer({"frames": [1, 2]})


def test_a_fifo_named_as_a_video_is_named_as_no_file(recognizer, tmp_path):
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=rf"{fifo} is not a regular file \(a FIFO\).*give a video or pose file"):
        recognizer(str(fifo))


CARRIED_PIPELINE = """
import json, sys
from transformers import pipeline
from msmae import sample_data
clip = sample_data.load_clip("msl150/doctor/2")
pipe = pipeline("video-classification", model=sys.argv[1], trust_remote_code=True, device="cpu")
print("RESULT" + json.dumps({"module": type(pipe).__module__, "clip_class": type(clip).__module__,
                             "answer": pipe(clip, top_k=3)}))
"""


@pytest.mark.slow
def test_the_carried_pipeline_takes_msmae_clips(checkpoint, recognizer, tmp_path):
    from msmae import sample_data

    hf_home = tmp_path / "hf_home"
    environment = {**os.environ, "HF_HOME": str(hf_home), "HF_MODULES_CACHE": str(hf_home / "modules")}
    run = subprocess.run([sys.executable, "-c", CARRIED_PIPELINE, str(checkpoint)], capture_output=True, text=True,
                         env=environment, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT", 1)[1])
    assert result["module"].startswith("transformers_modules")  # the checkpoint's own copy, not msmae's
    assert result["clip_class"] == "msmae.pose_io"
    expected = recognizer(sample_data.load_clip("msl150/doctor/2"), top_k=3)
    assert [a["label"] for a in result["answer"]] == [e["label"] for e in expected]
    assert np.allclose([a["score"] for a in result["answer"]], [e["score"] for e in expected], atol=1e-5)


@pytest.mark.parametrize("fps", [-5, 0, float("nan")])
def test_a_frame_rate_that_is_not_positive_is_named(recognizer, tmp_path, fps):
    from PIL import Image

    for index in range(3):
        Image.new("RGB", (64, 64)).save(tmp_path / f"{index}.png")
    with pytest.raises(ValueError, match=rf"fps must be a positive number of frames per second \(e.g. 25\), got {fps}"):
        recognizer(str(tmp_path), load_kwargs={"fps": fps})

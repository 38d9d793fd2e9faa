"""What users pass to the sign-language pipelines (issue 13, point 2): a video as a path, its bytes, a file object or
a URL (served by a real HTTP server on the loopback address), decoded frames as an array or a list of PIL images, and
the errors for arrays no layout fits. Every way of giving the same video must give the answer its path gives."""

import functools
import http.server
import io
import json
import socket
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, labelled, run_without_msmae, sample_pose_file, tiny_config, write_video
from transformers import pipeline

from msmae import MSMAEForSignClassification
from msmae.pipeline_msmae import RECOGNITION_TASK
from msmae.clips import bytes_suffix, download, load_pose
from msmae.processing_msmae import MSMAEPoseProcessor

VIDEO = SHARED_DATA / "pose-format-samples" / "test_video.mp4"
needs_video = pytest.mark.skipif(not VIDEO.is_file(), reason=f"the sample video is not at {VIDEO} (MSMAE_SHARED_DATA)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny randomly initialised classifier, saved as training saves one (weights, labels, processor, code)."""
    folder = tmp_path_factory.mktemp("classifier")
    torch.manual_seed(0)
    config = tiny_config(**labelled())
    MSMAEForSignClassification(config).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("recognition", streams=config.streams).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pose_file(tmp_path_factory):
    """A real clip shipped with msmae, as a pose-format .pose file."""
    return sample_pose_file(tmp_path_factory.mktemp("pose"), "msl150/doctor/2")


@pytest.fixture(scope="module")
def recognizer(checkpoint):
    return pipeline(RECOGNITION_TASK, model=str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def by_path(recognizer):
    """The answer for the sample video given as a path: what every other way of giving it must match."""
    if not VIDEO.is_file():
        pytest.skip(f"the sample video is not at {VIDEO}")
    pytest.importorskip("mediapipe")
    return recognizer(str(VIDEO), top_k=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory, pose_file):
    """A real HTTP server on 127.0.0.1 serving a folder with the sample video (where ../shared has it), a .pose file
    and a text file."""
    folder = tmp_path_factory.mktemp("served")
    if VIDEO.is_file():
        (folder / "sign.mp4").write_bytes(VIDEO.read_bytes())
    (folder / "sign.pose").write_bytes(pose_file.read_bytes())
    (folder / "notes.txt").write_text("not a video\n")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def assert_same_answer(result, expected):
    assert [r["label"] for r in result] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in result], [r["score"] for r in expected], rtol=0, atol=1e-6)


def decoded_frames(count):
    from msmae.holistic import VideoReader

    with VideoReader(VIDEO) as video:
        return np.stack([frame for _, frame in zip(range(count), video)])


# ---- bytes and file objects ------------------------------------------------------------------------------------------


def test_signatures_tell_videos_and_pose_files_apart(pose_file):
    assert bytes_suffix(VIDEO.read_bytes() if VIDEO.is_file() else b"\0\0\0\x18ftypisom") == ".mp4"
    assert bytes_suffix(b"\0\0\0\x14ftypqt  ") == ".mp4" and bytes_suffix(b"\0\0\0\x08wide") == ".mov"
    assert bytes_suffix(b"\x1a\x45\xdf\xa3" + bytes(20)) == ".webm"
    assert bytes_suffix(b"RIFF\0\0\0\0AVI LIST") == ".avi"
    assert bytes_suffix(pose_file.read_bytes()) == ".pose"
    for data in (b"RIFF\0\0\0\0WAVEfmt ", b"PK\x03\x04zip", b"%PDF-1.7", b""):
        with pytest.raises(ValueError, match="the upload: not a video or .pose file msmae reads"):
            bytes_suffix(data, "the upload")


@needs_video
@pytest.mark.slow
def test_video_bytes_and_file_objects_answer_as_the_path(recognizer, by_path, monkeypatch):
    data = VIDEO.read_bytes()

    def no_temp_files(*args, **kwargs):
        raise AssertionError("bytes must be decoded in memory, not through a temporary file")

    for name in ("mkstemp", "NamedTemporaryFile", "TemporaryFile", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_temp_files)
    with open(VIDEO, "rb") as file:
        results = recognizer([data, io.BytesIO(data), file], top_k=5, batch_size=2)
    assert len(results) == 3
    for result in results:
        assert_same_answer(result, by_path)


@needs_video
@pytest.mark.slow
@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "libvpx-vp9"), (".avi", "mpeg4"), (".mov", "libx264")])
def test_every_container_is_read_from_memory(recognizer, tmp_path, suffix, codec):
    pytest.importorskip("mediapipe")
    path = write_video(tmp_path / f"sign{suffix}", decoded_frames(12), fps=10, codec=codec)
    assert_same_answer(recognizer(Path(path).read_bytes(), top_k=5), recognizer(path, top_k=5))


def test_pose_file_bytes_answer_as_the_path(recognizer, pose_file):
    expected = recognizer(str(pose_file), top_k=5)
    data = pose_file.read_bytes()
    for given in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        assert recognizer(given, top_k=5) == expected
    loaded, from_path = load_pose(data), load_pose(pose_file)
    np.testing.assert_array_equal(loaded.keypoints, from_path.keypoints)


def test_bytes_that_are_no_clip_are_named(recognizer):
    with pytest.raises(ValueError, match=r"given as bytes: the 14 bytes given: not a video or \.pose file.*%PDF"):
        recognizer(b"%PDF-1.7 hello")
    with pytest.raises(ValueError, match=r"BytesIO.*not a video or \.pose file.*MP4/MOV, WebM/MKV or AVI"):
        recognizer(io.BytesIO(b"GIF89a......"))
    with pytest.raises(ValueError, match=r"gave str, not bytes.*open\(path, 'rb'\)"):
        recognizer(io.StringIO("hello"))
    with pytest.raises(ValueError, match="not a readable .pose file"):
        recognizer(b"\xcd\xcc\xcc\x3d" + bytes(6))  # a pose-format header cut short


# ---- URLs ------------------------------------------------------------------------------------------------------------


def test_pose_urls_answer_as_the_path_and_failures_name_the_url(recognizer, server, pose_file):
    assert recognizer(f"{server}/sign.pose", top_k=5) == recognizer(str(pose_file), top_k=5)
    missing = f"{server}/missing.mp4"
    with pytest.raises(OSError, match=rf"Could not download {missing} \(HTTP 404"):
        recognizer(missing)
    with pytest.raises(ValueError, match=rf"{server}/notes.txt: .*not a video or \.pose file"):
        recognizer(f"{server}/notes.txt")
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/sign.mp4"
    with pytest.raises(OSError, match=rf"Could not download {refused} \(.*refused"):
        recognizer(refused)


def test_download_gives_up_after_the_timeout():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/sign.mp4"
        with pytest.raises(OSError, match=rf"Could not download {url} \(.*timed out"):
            download(url, timeout=0.5)


@needs_video
@pytest.mark.slow
def test_video_url_and_bytes_without_msmae(checkpoint, server, by_path, tmp_path):
    script = """
import json, sys
from transformers import pipeline
checkpoint, video, url = sys.argv[1:4]
pipe = pipeline(model=checkpoint, trust_remote_code=True, device="cpu")
answers = [pipe(open(video, "rb").read(), top_k=5), pipe(url, top_k=5)]
imported = [name for name, m in sys.modules.items() if m is not None and name.split(".")[0] == "msmae"]
print("ANSWERS" + json.dumps({"answers": answers, "class": type(pipe).__module__, "msmae_imported": imported}))
"""
    result = run_without_msmae(script, checkpoint, VIDEO, f"{server}/sign.mp4", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    answers = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("ANSWERS"))[7:])
    assert answers["msmae_imported"] == [] and answers["class"].startswith("transformers_modules.")
    from_bytes, from_url = answers["answers"]
    assert_same_answer(from_bytes, by_path)
    assert_same_answer(from_url, by_path)


# ---- decoded frames --------------------------------------------------------------------------------------------------


@needs_video
@pytest.mark.slow
def test_a_list_of_pil_images_is_one_clip(recognizer):
    pytest.importorskip("mediapipe")
    from PIL import Image

    frames = decoded_frames(16)
    expected = recognizer(frames, top_k=5)
    images = [Image.fromarray(frame).convert("RGBA") for frame in frames]  # any mode: converted back to RGB
    assert_same_answer(recognizer(images, top_k=5), expected)  # one answer, not one per image
    batch = recognizer([images, frames], top_k=5)  # a list of clips: a batch
    assert len(batch) == 2
    for result in batch:
        assert_same_answer(result, expected)


def test_pil_frames_of_different_sizes_are_rejected(recognizer):
    from PIL import Image

    images = [Image.new("RGB", (64, 48)), Image.new("RGB", (32, 48))]
    with pytest.raises(ValueError, match="image 1 is 32x48 pixels but image 0 is 64x48"):
        recognizer(images)


# ---- arrays no layout fits -------------------------------------------------------------------------------------------

ACCEPTED = r"Accepted arrays: video frames: \(frames, height, width, 3\) uint8 RGB.*layout='msmae'.*layout='holistic'"


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((48, 64, 3), np.uint8), r"shape \(48, 64, 3\) and dtype uint8 .*one image"),
        (np.zeros((4, 48, 64, 3), np.float32), r"shape \(4, 48, 64, 3\) and dtype float32 .*must be uint8 RGB"),
        (torch.zeros(4, 48, 64, 3), r"shape \(4, 48, 64, 3\) and dtype float32"),
        (np.zeros((4, 48, 64, 4), np.uint8), r"dtype uint8 .*RGBA frames"),
        (np.zeros((10, 7, 2), np.float32), r"shape \(10, 7, 2\) and dtype float32 matches no known layout"),
        (np.zeros((10, 160, 3), np.uint8), r"shape \(10, 160, 3\) and dtype uint8"),  # pixels, not landmarks
    ],
)
def test_arrays_no_layout_fits_name_shape_dtype_and_layouts(recognizer, array, message):
    with pytest.raises(ValueError, match=message + ".*" + ACCEPTED):
        recognizer(array)


def test_a_list_of_single_frames_is_a_batch_of_bad_clips(recognizer):
    with pytest.raises(ValueError, match=r"shape \(48, 64, 3\) and dtype uint8 .*one image"):
        recognizer([np.zeros((48, 64, 3), np.uint8)] * 3)


def test_endpoint_handler_hands_request_bytes_to_the_pipeline(checkpoint, recognizer, pose_file):
    import base64

    from msmae.handler import EndpointHandler

    endpoint = EndpointHandler(str(checkpoint))
    data = pose_file.read_bytes()
    expected = recognizer(str(pose_file), top_k=3)
    assert endpoint({"inputs": base64.b64encode(data).decode(), "parameters": {"top_k": 3}}) == expected
    assert endpoint({"inputs": data, "parameters": {"top_k": 3}}) == expected
    with pytest.raises(ValueError, match=r"not a video or \.pose file.*b'hello world!'"):
        endpoint({"inputs": base64.b64encode(b"hello world!").decode()})

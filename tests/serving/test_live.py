"""`msmae live`: MediaPipe in streaming mode over a sliding window gives the answer the pipeline gives on the window's
frames; a video played in real time skips the frames a camera would have replaced; the command prints a running top-k."""

import time

import numpy as np
import pytest
from transformers import pipeline

from msmae.pipeline_msmae import RECOGNITION_TASK
from msmae.pose_io import SignPose

pytest.importorskip("mediapipe")


@pytest.mark.slow
def test_streamed_windows_give_the_pipeline_answer(demo_output, sample_video):
    from msmae.holistic import extract_video
    from msmae.serving.live import LiveRecognizer, run_live, video_frames

    checkpoint = demo_output / "sign-classification"
    recognizer = LiveRecognizer(checkpoint, window=1.0, every=8, top_k=3)
    updates = run_live(recognizer, video_frames(sample_video), on_update=lambda update: None)
    recognizer.close()
    # 58 frames at 29.92 fps: answers after frames 16, 24, ..., 56 (0-based 15, 23, ...) once half a second is seen
    assert [u.frame for u in updates] == [15, 23, 31, 39, 47, 55]
    assert all(len(u.predictions) == 3 and u.latency > 0 for u in updates)

    whole = extract_video(sample_video)  # the same graph settings, frames in the same order: the same landmarks
    reference = pipeline(RECOGNITION_TASK, model=str(checkpoint))
    for update in updates:
        frames = np.arange(whole.num_frames)
        inside = frames[(frames <= update.frame) & (frames / whole.fps > update.time - 1.0)]
        window = SignPose(whole.keypoints[inside], whole.keypoint_mask[inside], fps=whole.fps, width=whole.width,
                          height=whole.height)
        expected = reference(window, top_k=3)
        assert [p["label"] for p in update.predictions] == [p["label"] for p in expected]
        np.testing.assert_allclose([p["score"] for p in update.predictions], [p["score"] for p in expected], atol=1e-4)


@pytest.mark.slow
def test_realtime_play_skips_late_frames(sample_video):
    from msmae.holistic import VideoReader
    from msmae.serving.live import video_frames

    with VideoReader(sample_video) as video:
        fps, total = video.fps, sum(1 for _ in video)
    stats, seen, start = {}, [], time.perf_counter()
    for frame, timestamp, arrival in video_frames(sample_video, realtime=True, stats=stats):
        seen.append(timestamp)
        time.sleep(2.5 / fps)  # a consumer slower than the camera
    elapsed = time.perf_counter() - start
    assert stats["dropped"] > 0 and len(seen) + stats["dropped"] == total
    assert seen == sorted(seen) and elapsed >= 0.9 * (total - 1) / fps  # paced, not as fast as decoding


def test_bad_frames_and_checkpoints_are_refused(demo_output, capsys):
    from msmae.cli import main
    from msmae.serving.live import StreamingHolistic

    holistic = StreamingHolistic()
    with pytest.raises(ValueError, match="RGB uint8.*cvtColor"):
        holistic.process(np.zeros((48, 64, 3), dtype=np.float32))
    holistic.close()
    with pytest.raises(SystemExit) as exit_info:
        main(["live", "--model", str(demo_output / "pretraining"), "--video", "x.mp4"])
    assert exit_info.value.code == 2 and "pretrained encoder" in capsys.readouterr().err


@pytest.mark.slow
def test_command_prints_a_running_top_k(demo_output, sample_video, capsys):
    from msmae.cli import main

    assert main(["live", "--model", str(demo_output / "sign-classification"), "--video", str(sample_video),
                 "--window", "1", "--every", "8", "--top_k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    answers = [line for line in lines if line.strip().endswith("ms]")]
    assert len(answers) == 6 and all(line.count("|") == 1 for line in answers)  # two labels per answer
    assert lines[-1].startswith("58 frames processed; 6 answers, median latency")

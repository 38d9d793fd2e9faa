"""Issue 26, point 4: a FIFO (or socket, device) named like a video is named as no file by the video reader, which
`msmae extract` logs for it, instead of `is empty (0 bytes); re-download`."""

import os

import pytest

pytest.importorskip("av")


def test_a_fifo_named_as_a_video_is_named_as_no_file(tmp_path):
    from msmae.holistic import ExtractionError, VideoReader

    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    with pytest.raises(ExtractionError, match=rf"{fifo} is not a regular file \(a FIFO\): give a video file saved on "
                                              r"disk"):
        VideoReader(fifo)

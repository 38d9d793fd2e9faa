"""`msmae prepare` (`msmae.data.prepare`) across re-runs: ROOT spelled another way, a class whose rows are all
removed, caches of a killed run. MediaPipe is replaced by a stand-in graph (these tests are about the folder, not
the landmarks)."""

import fcntl

import numpy as np
import pytest

from conftest import use_stand_in_holistic

from msmae.data.prepare import prepare

av = pytest.importorskip("av")
pytest.importorskip("mediapipe")


@pytest.fixture(autouse=True)
def stand_in_mediapipe(monkeypatch):
    use_stand_in_holistic(monkeypatch)


def _write_video(path, frames=3, size=32):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 40 * index, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A manifest corpus of three whole videos in tmp_path/corpus (classes A, A, B); the cwd is tmp_path."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("one", "two", "three"):
        _write_video(folder / f"{name}.mp4")
    manifest = folder / "jsl.csv"
    manifest.write_text("path,label\none.mp4,A\ntwo.mp4,A\nthree.mp4,B\n")
    monkeypatch.chdir(tmp_path)
    return manifest


def test_another_spelling_of_root_extracts_nothing_again(corpus, tmp_path):
    first = prepare("manifest", "corpus/jsl.csv", tmp_path / "out", progress=False)
    assert first.extraction.num_extracted == 3
    for root in (str(corpus), "./corpus/../corpus/jsl.csv"):
        again = prepare("manifest", root, tmp_path / "out", progress=False)
        assert (again.extraction.num_extracted, again.extraction.num_already_extracted) == (0, 3), root
        assert again.rows == {"train": 3, "validation": 0, "test": 0}


def test_removing_the_last_row_of_a_class_and_putting_it_back(corpus, tmp_path):
    out = tmp_path / "out"
    prepare("manifest", corpus, out, progress=False)
    corpus.write_text("path,label\none.mp4,A\ntwo.mp4,A\n")  # class B is gone
    fewer = prepare("manifest", corpus, out, progress=False)
    assert fewer.rows["train"] == 2 and fewer.extraction.num_extracted == 0
    from datasets import load_from_disk

    assert load_from_disk(str(out))["train"].features["label"].names == ["A"]
    corpus.write_text("path,label\none.mp4,A\ntwo.mp4,A\nthree.mp4,B\n")
    back = prepare("manifest", corpus, out, progress=False)
    assert back.rows["train"] == 3 and back.extraction.num_extracted == 0  # its row was kept aside, not lost


def test_caches_of_a_killed_run_are_removed_and_a_running_ones_kept(corpus, tmp_path):
    out = tmp_path / "out"
    prepare("manifest", corpus, out, progress=False)
    stale = out / ".cache-killed"
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "copy.arrow").write_bytes(b"x" * 100)
    busy = out / ".cache-running"
    busy.mkdir()
    with open(busy / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a prepare that is still running holds
        prepare("manifest", corpus, out, progress=False)
        assert not stale.exists() and busy.exists()
    assert sorted(path.name for path in out.glob(".cache-*")) == [".cache-running"]

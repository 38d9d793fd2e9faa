"""`msmae extract` end to end: worker processes, manifest columns, failure log, resume after SIGKILL, shards,
argument errors. Clips are short cuts of the real signing video (8 frames each) to keep MediaPipe's time small."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import write_video

from msmae.data.extract import run_extraction
from msmae.data.parts import load_extracted, part_path

av = pytest.importorskip("av")
pytest.importorskip("mediapipe")

CLIP_FRAMES = 8




@pytest.fixture
def clips(shared_data, tmp_path):
    """Make `clips(n)`: n signing clips in tmp_path/videos, cut from the real video at half resolution."""
    container = av.open(str(shared_data / "pose-format-samples" / "test_video.mp4"))
    frames = np.stack([f.to_ndarray(format="rgb24")[::2, ::2] for f in container.decode(video=0)])
    container.close()
    folder = tmp_path / "videos"
    folder.mkdir()

    def make(count):
        return [write_video(folder / f"clip{i}.mp4", frames[i * 5: i * 5 + CLIP_FRAMES], fps=15) for i in range(count)]

    return make


def _msmae(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "msmae.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


def _sources(output_dir, cache):
    return sorted(load_extracted(output_dir, cache_dir=cache)["source"])


@pytest.mark.slow
def test_extract_with_workers_manifest_and_failure_log(clips, tmp_path):
    videos = clips(2)
    folder = tmp_path / "videos"
    write_video(folder / "black.mp4", np.zeros((4, 64, 64, 3), np.uint8), fps=15)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("not a video\n" * 50)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label,text,signer\nvideos/clip0.mp4,HELLO,hello there,s1\nvideos/clip1.mp4,BYE,,s2\n")
    out = tmp_path / "out"

    run = _msmae("extract", folder, "--output_dir", out, "--manifest", manifest, "--num_workers", 2, "--no_progress")
    assert run.returncode == 0, run.stderr
    assert "inference_feedback_manager" not in run.stderr  # MediaPipe's start-up noise is filtered
    assert "no person detected" in run.stderr and "2 extracted" in run.stderr

    dataset = load_extracted(out, cache_dir=tmp_path / "cache").with_format("numpy")
    assert dataset.num_rows == 2
    rows = {row["source"]: row for row in dataset}
    assert sorted(rows) == sorted(videos)
    assert rows[videos[0]]["label"] == "HELLO" and rows[videos[0]]["signer"] == "s1"
    assert rows[videos[1]]["text"] is None and rows[videos[1]]["label"] == "BYE"
    for row in rows.values():
        assert row["keypoints"].shape == (CLIP_FRAMES, 160, 4) and row["num_frames"] == CLIP_FRAMES
        assert (row["width"], row["height"]) == (270, 360) and row["fps"] == 15
        assert row["keypoint_mask"][:, :6].all()  # the signer's body in every frame

    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    kinds = {os.path.basename(f["path"]): f["kind"] for f in failures}
    assert kinds == {"black.mp4": "no_person", "empty.mp4": "unreadable", "notes.mp4": "unreadable"}
    assert all(f["path"] in f["error"] for f in failures if f["kind"] == "unreadable")

    # A second run finds everything done: nothing re-extracted, rewritten or logged twice.
    parts = {p: p.stat().st_mtime_ns for p in (out / "data").glob("*.parquet")}
    again = run_extraction([folder], out, manifest=manifest, progress=False)
    assert (again.num_extracted, again.num_already_extracted, again.num_already_failed) == (0, 2, 3)
    assert {p: p.stat().st_mtime_ns for p in (out / "data").glob("*.parquet")} == parts
    assert len((out / "failures.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_resume_after_sigkill_gives_each_video_once(clips, tmp_path):
    videos = clips(5)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "msmae.cli", "extract", str(tmp_path / "videos"), "--output_dir", str(out),
               "--no_progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not list((out / "data").glob("*.parquet")) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # mid-run, as hard as it gets
    process.wait()
    done_before = len(list((out / "data").glob("*.parquet")))
    assert 1 <= done_before < len(videos), "the run should have been killed part-way"

    resumed = run_extraction([tmp_path / "videos"], out, progress=False)
    assert resumed.num_already_extracted == done_before and resumed.num_extracted == len(videos) - done_before
    assert _sources(out, tmp_path / "cache") == sorted(videos)  # each exactly once


@pytest.mark.slow
def test_shards_split_the_work_and_overwrite_redoes_it(clips, tmp_path):
    videos = clips(3)
    out = tmp_path / "out"
    summaries = [run_extraction([tmp_path / "videos"], out, shard_index=i, num_shards=2, progress=False)
                 for i in range(2)]
    assert [s.num_videos for s in summaries] == [2, 1] and sum(s.num_extracted for s in summaries) == 3
    assert _sources(out, tmp_path / "cache") == sorted(videos)

    first = part_path(out, "videos/clip0.mp4")  # ids spell the path from the input folder
    written = first.stat().st_mtime_ns
    again = run_extraction([tmp_path / "videos"], out, shard_index=0, num_shards=2, progress=False)
    assert again.num_already_extracted == 2 and again.num_extracted == 0 and first.stat().st_mtime_ns == written
    redo = run_extraction([tmp_path / "videos"], out, shard_index=0, num_shards=2, overwrite=True, progress=False)
    assert redo.num_extracted == 2 and first.stat().st_mtime_ns != written
    assert _sources(out, tmp_path / "cache2") == sorted(videos)


def test_argument_errors_and_nothing_processable(tmp_path, monkeypatch, capsys):
    import msmae.holistic
    from msmae.cli import main

    monkeypatch.setattr(msmae.holistic, "filter_native_stderr", lambda: None)  # keep pytest's stderr as it is
    for args, message in [
        ([], "--manifest"),
        ([tmp_path / "absent.mp4"], "absent.mp4"),
        ([tmp_path, "--shard_index", 2, "--num_shards", 2], "--shard_index"),
        ([tmp_path, "--num_workers", 0], "--num_workers"),
        ([tmp_path, "--min_detection_confidence", 1.5], "min_detection_confidence must be between 0 and 1"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(["extract", *map(str, args), "--output_dir", str(tmp_path / "out")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err

    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["extract", str(tmp_path / "empty.mp4"), "--output_dir", str(tmp_path / "out"), "--no_progress"]) == 1
    record = json.loads((tmp_path / "out" / "failures.jsonl").read_text())
    assert record["kind"] == "unreadable" and "empty" in record["error"]
    (tmp_path / "no_videos").mkdir()
    assert main(["extract", str(tmp_path / "no_videos"), "--output_dir", str(tmp_path / "out2")]) == 1


@pytest.mark.slow
def test_manifest_cuts_clips_from_a_video(clips, tmp_path, monkeypatch):
    import msmae.holistic
    from msmae.cli import main

    monkeypatch.setattr(msmae.holistic, "filter_native_stderr", lambda: None)
    (video,) = clips(1)  # 8 frames at 15 fps
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,clip_id,start,end,start_frame,end_frame,label\n"
                        "videos/clip0.mp4,hello,0,0.2,,,HELLO\nvideos/clip0.mp4,bye,,,4,8,BYE\n")
    out = tmp_path / "out"
    assert main(["extract", "--manifest", str(manifest), "--output_dir", str(out), "--no_progress"]) == 0
    rows = {row["clip_id"]: row for row in load_extracted(out, cache_dir=tmp_path / "cache")}
    assert {k: (r["start_frame"], r["end_frame"], r["num_frames"], r["label"]) for k, r in rows.items()} == {
        "hello": (0, 3, 3, "HELLO"), "bye": (4, 8, 4, "BYE")}  # 0.2 s at 15 fps: frames 0, 1, 2
    assert all(row["source"] == video for row in rows.values())
    bad = tmp_path / "bad.csv"
    bad.write_text("path,start,start_frame\nvideos/clip0.mp4,1,3\n")
    with pytest.raises(SystemExit):
        main(["extract", "--manifest", str(bad), "--output_dir", str(out)])

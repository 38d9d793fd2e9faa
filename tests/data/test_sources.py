"""Which clips a run extracts and under which id (`msmae.data.sources`, `msmae.data.extract`): one row per file
whatever the spelling of its path, folders written before keep their rows, a bad row fails alone, ranges in seconds
follow the frames' timestamps. MediaPipe is replaced by a stand-in graph (these tests are about planning and frame
selection, not landmarks): its one "landmark" is the frame's brightness, which says which frame it saw."""

import json
from fractions import Fraction

import numpy as np
import pytest

from conftest import use_stand_in_holistic

from msmae.data.extract import run_extraction
from msmae.data.parts import load_extracted, part_path, read_failures
from msmae.data.sources import ClipSource, clips_from_inputs

av = pytest.importorskip("av")
pytest.importorskip("mediapipe")


@pytest.fixture(autouse=True)
def stand_in_mediapipe(monkeypatch):
    use_stand_in_holistic(monkeypatch)


def _write_video(path, times_ms, size=32):
    """A video whose frame i is shown at times_ms[i] (irregular times: variable frame rate) and has brightness
    20 + 10 i."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for index, time in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 + 10 * index, np.uint8), format="rgb24")
            frame.pts, frame.time_base = time, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def _frames_seen(row):
    """The indices of the frames a row was extracted from (from their brightness)."""
    return [round((x * 255 - 20) / 10) for x in np.asarray(row["keypoints"])[:, 0, 0]]


def _rows(out, tmp_path):
    return list(load_extracted(out, cache_dir=tmp_path / "cache").with_format("numpy"))


@pytest.fixture
def clip_folder(tmp_path, monkeypatch):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a", "b"):
        _write_video(folder / f"{name}.mp4", [0, 100, 200])
    monkeypatch.chdir(tmp_path)
    return folder


# ---- point 1: one row per file, whatever the spelling -----------------------------------------------------------------


def test_every_spelling_of_a_folder_gives_one_row_per_video(clip_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run_extraction(["clips"], out, progress=False).num_extracted == 2
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "videos").symlink_to(clip_folder, target_is_directory=True)  # the folder under another name
    spellings = ["./clips/", str(clip_folder), f"{clip_folder}/", f"{tmp_path}/link/clips", "clips/a.mp4",
                 str(clip_folder / "b.mp4"), "videos", "videos/a.mp4"]
    for spelling in spellings:
        summary = run_extraction([spelling], out, progress=False)
        assert summary.num_extracted == 0 and summary.num_already_extracted >= 1, spelling
    assert sorted(row["clip_id"] for row in _rows(out, tmp_path)) == ["clips/a.mp4", "clips/b.mp4"]
    monkeypatch.chdir(tmp_path / "link")  # a cwd reached through a link
    assert run_extraction(["clips"], out, progress=False).num_extracted == 0
    monkeypatch.chdir(clip_folder)
    assert run_extraction(["."], out, progress=False).num_extracted == 0
    assert sorted(row["clip_id"] for row in _rows(out, tmp_path)) == ["clips/a.mp4", "clips/b.mp4"]


def test_manifest_ids_do_not_depend_on_how_the_manifest_is_named(clip_folder, tmp_path):
    (tmp_path / "m.csv").write_text("path,label,start,end\nclips/a.mp4,A,,\nclips/b.mp4,B,0.05,0.3\n")
    out = tmp_path / "out"
    assert run_extraction(manifest="m.csv", output_dir=out, progress=False).num_extracted == 2
    for spelling in ("./m.csv", str(tmp_path / "m.csv"), str(tmp_path / "clips" / ".." / "m.csv")):
        summary = run_extraction(manifest=spelling, output_dir=out, progress=False)
        assert (summary.num_extracted, summary.num_already_extracted) == (0, 2), spelling
    ids = {clip.clip_id for clip in clips_from_inputs([str(clip_folder)], str(tmp_path / "m.csv"))}
    assert ids == {"clips/a.mp4", "clips/b.mp4#t=0.05,0.3"}


def test_adding_a_manifest_to_labelled_inputs_keeps_their_ids(clip_folder, tmp_path):
    out = tmp_path / "out"
    assert run_extraction(["clips"], out, progress=False).num_extracted == 2
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "m.csv").write_text("path,label\n../clips/a.mp4,A\n../clips/b.mp4,B\n")
    summary = run_extraction(["clips"], out, manifest="labels/m.csv", progress=False)
    assert (summary.num_extracted, summary.num_updated) == (0, 2)
    assert sorted((row["clip_id"], row["label"]) for row in _rows(out, tmp_path)) == [
        ("clips/a.mp4", "A"), ("clips/b.mp4", "B")]


def test_a_folder_written_with_absolute_ids_is_migrated_not_duplicated(clip_folder, tmp_path):
    """Folders written before ids were relative hold rows keyed by the path as typed (here: absolute)."""
    out = tmp_path / "out"
    old = [ClipSource(str(clip_folder / "a.mp4"), clip_id=str(clip_folder / "a.mp4")),
           ClipSource(str(clip_folder / "b.mp4"), clip_id=f"{clip_folder / 'b.mp4'}#t=0.1,end", start=0.1)]
    assert run_extraction(clips=old, output_dir=out, progress=False).num_extracted == 2
    (tmp_path / "m.csv").write_text("path,start\nclips/a.mp4,\nclips/b.mp4,0.1\n")
    summary = run_extraction(manifest="m.csv", output_dir=out, progress=False)
    assert (summary.num_extracted, summary.num_already_extracted) == (0, 2)
    rows = _rows(out, tmp_path)
    assert sorted(row["clip_id"] for row in rows) == ["clips/a.mp4", "clips/b.mp4#t=0.1,end"]
    assert len(list((out / "data").glob("*.parquet"))) == 2
    assert part_path(out, "clips/a.mp4").exists()


def test_a_folder_written_from_another_working_folder_is_migrated(clip_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.chdir(clip_folder)  # before: `msmae extract a.mp4 b.mp4` in clips/ keyed them a.mp4, b.mp4
    old = [ClipSource("a.mp4", clip_id="a.mp4"), ClipSource("b.mp4", clip_id="b.mp4#frames=1,end", start_frame=1)]
    assert run_extraction(clips=old, output_dir=out, progress=False).num_extracted == 2
    monkeypatch.chdir(tmp_path)
    clips = clips_from_inputs(["clips"]) + [ClipSource("clips/b.mp4", start_frame=1, id_path="clips/b.mp4")]
    summary = run_extraction(clips=clips, output_dir=out, progress=False)
    assert (summary.num_extracted, summary.num_already_extracted) == (1, 2)  # only b.mp4 as a whole is new
    assert sorted(row["clip_id"] for row in _rows(out, tmp_path)) == [
        "clips/a.mp4", "clips/b.mp4", "clips/b.mp4#frames=1,end"]


# ---- point 2: rows fail alone ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cells, problem", [("nan,0.2", "start"), ("0.1,inf", "end"), ("0.3,0.1", "end"),
                                            ("-1,0.2", "start")])
def test_a_bad_range_is_refused_naming_its_manifest_line(tmp_path, cells, problem):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,start,end\na.mp4,0,0.1\na.mp4,{cells}\n")
    with pytest.raises(ValueError, match=rf"m.csv, line 3: .*{problem}"):
        clips_from_inputs(manifest=manifest)


def test_a_clip_with_no_frame_in_its_range_fails_alone(tmp_path):
    video = _write_video(tmp_path / "vfr.mp4", [0, 100, 150, 400, 450])
    clips = [ClipSource(video, clip_id="good", start=0.0, end=0.15),
             ClipSource(video, clip_id="gap", start=0.2, end=0.3),  # between the frames shown at 0.15 and 0.4 s
             ClipSource(video, clip_id="late", start=5.0)]
    out = tmp_path / "out"
    summary = run_extraction(clips=clips, output_dir=out, progress=False)
    assert (summary.num_extracted, summary.num_failed) == (1, 2)
    failures = read_failures(out)
    assert sorted(failures) == ["gap", "late"] and {f["kind"] for f in failures.values()} == {"out_of_range"}
    assert "0.2" in failures["gap"]["error"] and "vfr.mp4" in failures["gap"]["error"]
    assert [_frames_seen(row) for row in _rows(out, tmp_path)] == [[0, 1]]


def test_a_fixed_row_is_extracted_again_without_retry_failed(clip_folder, tmp_path):
    out = tmp_path / "out"
    video = str(clip_folder / "a.mp4")
    first = run_extraction(clips=[ClipSource(video, clip_id="x", start=5.0)], output_dir=out, progress=False)
    assert first.num_failed == 1
    same = run_extraction(clips=[ClipSource(video, clip_id="x", start=5.0)], output_dir=out, progress=False)
    assert (same.num_already_failed, same.num_extracted) == (1, 0)  # the same row is not tried again
    fixed = run_extraction(clips=[ClipSource(video, clip_id="x", start=0.1)], output_dir=out, progress=False)
    assert (fixed.num_already_failed, fixed.num_extracted) == (0, 1)
    assert [_frames_seen(row) for row in _rows(out, tmp_path)] == [[1, 2]]


def test_failure_logs_written_before_still_skip_their_clips(clip_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "failures.jsonl").write_text(json.dumps({"path": "clips/a.mp4", "clip_id": "clips/a.mp4",
                                                    "kind": "no_person", "error": "no person"}) + "\n")
    summary = run_extraction(["clips"], out, progress=False)
    assert (summary.num_already_failed, summary.num_extracted) == (1, 1)


def test_a_clip_failed_by_its_neighbours_nan_range_before_is_extracted_once_the_row_is_fixed(clip_folder, tmp_path):
    """Before, a NaN start failed every clip of its video with an "error" record and no key."""
    out = tmp_path / "out"
    out.mkdir()
    error = "ValueError: cannot convert float NaN to integer"
    (out / "failures.jsonl").write_text("".join(json.dumps(
        {"path": "clips/a.mp4", "clip_id": clip_id, "kind": "error", "error": error}) + "\n"
        for clip_id in ("clips/a.mp4#t=0,0.15", "clips/a.mp4#t=nan,0.2")))
    (tmp_path / "m.csv").write_text("path,start,end\nclips/a.mp4,0,0.15\nclips/a.mp4,0.1,0.2\n")  # fixed
    summary = run_extraction(manifest="m.csv", output_dir=out, progress=False)
    assert (summary.num_already_failed, summary.num_extracted) == (0, 2)


def test_ranges_in_seconds_follow_frame_timestamps(tmp_path):
    video = _write_video(tmp_path / "vfr.mp4", [0, 100, 150, 400, 450, 500, 900, 1000, 1500, 1520])
    clips = [ClipSource(video, clip_id="middle", start=0.4, end=1.0),
             ClipSource(video, clip_id="tail", start=0.95),
             ClipSource(video, clip_id="head", end=0.15),
             ClipSource(video, clip_id="frames", start_frame=2, end_frame=4)]
    out = tmp_path / "out"
    summary = run_extraction(clips=clips, output_dir=out, progress=False)
    assert summary.num_extracted == 4, summary.failures
    rows = {row["clip_id"]: row for row in _rows(out, tmp_path)}
    assert {key: _frames_seen(row) for key, row in rows.items()} == {
        "middle": [3, 4, 5, 6], "tail": [7, 8, 9], "head": [0, 1], "frames": [2, 3]}
    assert (rows["middle"]["start_frame"], rows["middle"]["end_frame"]) == (3, 7)


# ---- manifests ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, text", [
    ("m.csv", "path,label,label\na.mp4,A,B\n"),
    ("m.json", '[{"path": "a.mp4", "label": "A", "label": "B"}]'),
    ("m.jsonl", '{"path": "a.mp4", "label": "A", "label": "B"}\n'),
])
def test_a_manifest_with_two_columns_of_one_name_is_refused(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=rf"{name} has more than one column named 'label'"):
        clips_from_inputs(manifest=tmp_path / name)

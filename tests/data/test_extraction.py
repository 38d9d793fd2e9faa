"""MediaPipe Holistic extraction (`msmae.holistic`, `msmae.data.extract`): real signing videos, bad inputs, inputs/shards/manifests and
the dataset parts. MediaPipe runs at about 20 frames/s on one core, so the real-video tests use short clips."""

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_video

from msmae.data.discovery import find_clips
from msmae.data.extract import shard_paths
from msmae.data.parts import load_extracted, part_path, read_failures, write_part
from msmae.data.sources import clips_from_inputs
from msmae.data.manifest import read_manifest
from msmae.holistic import ExtractionError, HolisticExtractor, VideoReader, extract_video
from msmae.keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
from msmae.pose_io import SignPose
from msmae.data.schema import row_features

pytest.importorskip("mediapipe")
av = pytest.importorskip("av")

SLICES = stream_slices()
BODY, LEFT, RIGHT, FACE = SLICES["body"], SLICES["left_hand"], SLICES["right_hand"], SLICES["face"]
LEFT_WRIST, RIGHT_WRIST = BODY.start + 4, BODY.start + 5  # body stream = pose 11-16


@functools.lru_cache(maxsize=None)
def _extractor():
    return HolisticExtractor()  # one graph for the whole module: start-up is paid once


@functools.lru_cache(maxsize=None)
def _extract(path):
    return _extractor().extract_video(path)




def read_frames(path, count):
    with VideoReader(path) as video:
        return np.stack([frame for _, frame in zip(range(count), video)]), video.fps


def _wrist_sides(pose, hand):
    """Per frame where both are detected: True where the hand's wrist is nearer the pose's LEFT_WRIST."""
    both = pose.keypoint_mask[:, hand.start] & pose.keypoint_mask[:, LEFT_WRIST] & pose.keypoint_mask[:, RIGHT_WRIST]
    wrist = pose.keypoints[both, hand.start, :2]
    to_left = np.linalg.norm(wrist - pose.keypoints[both, LEFT_WRIST, :2], axis=-1)
    to_right = np.linalg.norm(wrist - pose.keypoints[both, RIGHT_WRIST, :2], axis=-1)
    return to_left < to_right


@pytest.mark.slow
def test_real_signing_video(shared_data):
    path = shared_data / "pose-format-samples" / "test_video.mp4"
    pose = _extract(str(path))
    assert pose.keypoints.shape == (58, NUM_STORED_KEYPOINTS, 4) and pose.keypoints.dtype == np.float32
    assert pose.num_frames == pose.metadata["header_frame_count"] == 58
    assert pose.fps == pytest.approx(29.92, abs=0.01)
    assert (pose.width, pose.height) == (540, 720)
    assert pose.source == str(path) and pose.metadata["person_detected"]
    assert np.isfinite(pose.keypoints).all()
    assert not pose.keypoints[~pose.keypoint_mask].any(), "undetected keypoints must hold 0"
    # One person facing a phone: body and face in (nearly) every frame, the right hand while it signs.
    assert pose.keypoint_mask[:, BODY].all(1).mean() > 0.95
    assert pose.keypoint_mask[:, FACE].all(1).mean() > 0.95
    assert pose.keypoint_mask[:, RIGHT].all(1).mean() > 0.2
    for part in (LEFT, RIGHT, FACE):  # hands and face lie inside the frame
        xy = pose.keypoints[:, part, :2][pose.keypoint_mask[:, part]]
        assert ((xy > -0.05) & (xy < 1.05)).all()
    # Pose visibility is kept; hands and face have none (0).
    assert pose.keypoints[pose.keypoint_mask[:, BODY.start], BODY.start, 3].mean() > 0.5
    assert not pose.keypoints[:, FACE, 3].any()
    # Face z is MediaPipe's relative depth: not all zero.
    assert pose.keypoints[:, FACE, 2][pose.keypoint_mask[:, FACE]].std() > 0


@pytest.mark.slow
def test_handedness_follows_the_signers_own_hands(shared_data):
    """MediaPipe's left hand is the signer's left: its wrist is at the pose's LEFT_WRIST (unmirrored videos)."""
    # MSL-150: both hands in view (first 40 frames of a 1280x720 video, through extract_frames).
    frames, fps = read_frames(shared_data / "msl150" / "data" / "original_source" / "ambulancia_001.mp4", 40)
    pose = _extractor().extract_frames(frames, fps, source="ambulancia")
    assert (pose.width, pose.height, pose.num_frames) == (1280, 720, 40)
    assert pose.keypoint_mask[:, LEFT].all(1).mean() > 0.8 and pose.keypoint_mask[:, RIGHT].all(1).mean() > 0.8
    left, right = _wrist_sides(pose, LEFT), _wrist_sides(pose, RIGHT)
    assert len(left) > 20 and left.mean() > 0.95
    assert len(right) > 20 and (~right).mean() > 0.95
    # The phone video: only the right hand signs.
    right = _wrist_sides(_extract(str(shared_data / "pose-format-samples" / "test_video.mp4")), RIGHT)
    assert len(right) > 10 and (~right).mean() > 0.95


@pytest.mark.slow
def test_frames_and_video_agree_and_tracking_resets(shared_data):
    path = shared_data / "pose-format-samples" / "test_video.mp4"
    frames, fps = read_frames(path, 12)
    first = _extractor().extract_frames(frames, fps)
    again = _extractor().extract_frames(list(frames), fps)  # same graph: the previous clip must not leak in
    np.testing.assert_allclose(again.keypoints, first.keypoints, atol=1e-5)
    np.testing.assert_array_equal(again.keypoint_mask, first.keypoint_mask)
    video = _extract(str(path))
    np.testing.assert_array_equal(video.keypoint_mask[:12], first.keypoint_mask)
    np.testing.assert_allclose(video.keypoints[:12], first.keypoints, atol=1e-4)


def test_video_without_a_person_is_flagged(tmp_path):
    path = write_video(tmp_path / "black.mp4", np.zeros((6, 96, 128, 3), np.uint8))
    pose = _extractor().extract_video(path)
    assert pose.num_frames == 6 and (pose.width, pose.height) == (128, 96) and pose.fps == 10
    assert pose.metadata["person_detected"] is False
    assert not pose.keypoint_mask.any() and not pose.keypoints.any()


def test_module_level_extract_video_names_missing_file(tmp_path):
    with pytest.raises(ExtractionError, match="not found.*nothing.mp4"):
        extract_video(tmp_path / "nothing.mp4")


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("empty.mp4", lambda p: p.write_bytes(b""), "empty"),
        ("notes.mp4", lambda p: p.write_text("this is a text file renamed to .mp4\n" * 20), "not a readable video"),
        ("folder.mp4", lambda p: p.mkdir(), "folder"),
    ],
)
def test_bad_files_raise_extraction_errors_naming_them(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(ExtractionError, match=message) as error:
        _extractor().extract_video(path)
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_audio_only_zero_frame_and_truncated_files(tmp_path, shared_data):
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(ExtractionError, match="no video stream"):
        _extractor().extract_video(audio)

    empty = tmp_path / "zero.avi"  # AVI keeps a video stream without frames
    container = av.open(str(empty), "w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()
    with pytest.raises(ExtractionError, match="no decodable video frames"):
        _extractor().extract_video(empty)

    # Cut after the index: FFmpeg decodes what is there without complaint; the header's frame count gives it away.
    data = (shared_data / "pose-format-samples" / "test_video.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 4])
    with pytest.raises(ExtractionError, match=r"truncated.mp4: decoded only \d+ of the 58 frames"):
        _extractor().extract_video(truncated)


def test_extract_frames_rejects_wrong_arrays():
    with pytest.raises(ValueError, match="RGB uint8"):
        _extractor().extract_frames(np.zeros((2, 32, 32, 3), np.float32), 25)
    with pytest.raises(ValueError, match="RGB uint8"):
        _extractor().extract_frames(np.zeros((2, 32, 32), np.uint8), 25)
    with pytest.raises(ValueError, match="no frames"):
        _extractor().extract_frames([], 25)


def test_display_rotation_is_applied(tmp_path):
    image = np.zeros((64, 96, 3), np.uint8)
    image[:32, :48] = 255  # white top-left quarter
    for rotation, corner in ((90, (48, 0)), (-90, (0, 32)), (180, (32, 48))):
        path = write_video(tmp_path / f"rotated{rotation}.mp4", np.stack([image] * 2), rotation=rotation)
        with VideoReader(path) as video:
            frame = next(iter(video))
        expected = np.rot90(image, rotation // 90)  # PyAV: degrees counterclockwise
        assert frame.shape == expected.shape
        assert np.abs(frame.astype(int) - expected).mean() < 8
        assert frame[corner[0] + 8, corner[1] + 8].mean() > 200


def test_model_complexity_is_checked():
    with pytest.raises(ValueError, match="model_complexity"):
        HolisticExtractor(model_complexity=3)


# ---- inputs, shards, manifests ----------------------------------------------------------------------------------------


def test_find_clips_from_folders_lists_and_files(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / "frames").mkdir()
    for name in ("a/one.mp4", "a/deep/two.MOV", "a/notes.txt.bak", "a/deep/pose.pose", "three.webm", "a/._one.mp4",
                 "a/frames/0.npy", "a/frames/1.npy"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# videos\nthree.webm\na/one.mp4  # again, through the list\nmissing.mp4\n")
    found = find_clips([tmp_path / "a", listing, tmp_path / "three.webm"], kind="videos")
    assert found == sorted(found)
    names = [os.path.relpath(p, tmp_path) for p in found]
    assert names == ["a/deep/two.MOV", "a/one.mp4", "missing.mp4", "three.webm"]  # each file once, no hidden ones
    clips = [os.path.relpath(p, tmp_path) for p in find_clips(tmp_path / "a")]
    assert clips == ["a/deep/pose.pose", "a/deep/two.MOV", "a/frames", "a/one.mp4"]  # pose files, frame folders
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        find_clips([tmp_path / "nope.mp4"], kind="videos")
    with pytest.raises(ValueError, match="kind"):
        find_clips(tmp_path, kind="poses")


def test_shards_are_disjoint_and_cover_all():
    paths = [f"v{i:03d}.mp4" for i in range(23)]
    shards = [shard_paths(list(reversed(paths)), i, 4) for i in range(4)]
    assert sorted(sum(shards, [])) == paths
    assert sum(len(s) for s in shards) == len(set(sum(shards, []))) == 23
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shard_paths(paths, 2, 4) == shards[2]  # the same on every machine, whatever the input order
    for bad in ((4, 4), (-1, 4), (0, 0)):
        with pytest.raises(ValueError, match="shard_index"):
            shard_paths(paths, *bad)


def test_manifest_csv_and_json(tmp_path):
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text("path,label,text,signer,take\nclips/a.mp4,3,hello world,7,1\nclips/b.mp4,5,,s2,2\n")
    a = os.path.normpath(tmp_path / "clips" / "a.mp4")
    first, second = read_manifest(csv_path)
    # Labels and signers are names even when they look like numbers; other columns are typed.
    assert first == {"path": a, "label": "3", "text": "hello world", "signer": "7", "take": 1}
    assert second["text"] is None and second["path"] == os.path.normpath(tmp_path / "clips" / "b.mp4")
    json_path = tmp_path / "meta.json"
    json_path.write_text(json.dumps([{"path": "clips/a.mp4", "label": 3, "tags": ["x"]}]))
    assert read_manifest(json_path) == [{"path": a, "label": "3", "tags": '["x"]'}]
    for name, text, message in [
        ("bad.csv", "file,label\na.mp4,1\n", "bad.csv needs a header with a `path` column"),
        ("empty_path.jsonl", '{"path": "a.mp4"}\n{"label": "x"}\n', "empty_path.jsonl, row 2: no 'path'"),
        ("clash.csv", "path,fps,keypoints\na.mp4,30,1\n", r"\['keypoints'\] clash"),
        ("split.csv", "path,split\na.mp4,dev\n", "row 1: split must be one of"),
        ("meta.xml", "<x/>", "unsupported format"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_manifest(tmp_path / name)


def test_manifest_rows_become_clips(tmp_path):
    (tmp_path / "videos").mkdir()
    for name in ("long.mp4", "other.mp4"):
        (tmp_path / "videos" / name).write_bytes(b"x")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,start,end,label,signer\nvideos/long.mp4,1.5,2.25,HELLO,s1\n"
                        "videos/long.mp4,3,4,BYE,s1\nvideos/other.mp4,,,HELLO,s2\n")
    clips = clips_from_inputs(manifest=manifest)
    long = os.path.normpath(tmp_path / "videos" / "long.mp4")
    assert [(c.path, c.start, c.end, c.columns["label"]) for c in clips[:2]] == [(long, 1.5, 2.25, "HELLO"),
                                                                                 (long, 3, 4, "BYE")]
    assert clips[2].start is None and clips[2].clip_id == "videos/other.mp4"  # a whole video: relative to the manifest
    assert len({c.clip_id for c in clips}) == 3
    # Inputs choose the videos; the manifest's rows for them give their clips and columns.
    chosen = clips_from_inputs([tmp_path / "videos" / "long.mp4"], manifest)
    assert [c.columns["label"] for c in chosen] == ["HELLO", "BYE"]


# ---- dataset parts ----------------------------------------------------------------------------------------------------


def _random_pose(frames, seed, source):
    rng = np.random.default_rng(seed)
    mask = rng.random((frames, NUM_STORED_KEYPOINTS)) > 0.3
    keypoints = rng.random((frames, NUM_STORED_KEYPOINTS, 4)).astype(np.float32) * mask[..., None]
    return SignPose(keypoints, mask, fps=29.97, width=1280, height=720, source=source)


def test_parts_load_as_one_dataset(tmp_path):
    from datasets import Value, load_dataset

    from msmae.data.parts import _write_info

    features = row_features({"label": Value("string")})
    poses = [_random_pose(n, n, f"clip{n}.mp4") for n in (1, 7, 30)]
    (tmp_path / "data").mkdir()
    _write_info(tmp_path, features, {})
    for pose in poses:
        write_part(part_path(tmp_path, pose.source), {**pose.to_example(), "label": pose.source[:5]}, features)
    assert not list((tmp_path / "data").glob("*.partial"))
    dataset = load_extracted(tmp_path, cache_dir=tmp_path / "cache")
    assert dataset.num_rows == 3 and dataset.features == features
    rows = {row["source"]: row for row in dataset.with_format("numpy")}
    for pose in poses:
        back = SignPose.from_example(rows[pose.source])
        np.testing.assert_array_equal(back.keypoints, pose.keypoints)
        np.testing.assert_array_equal(back.keypoint_mask, pose.keypoint_mask)
        assert (back.num_frames, back.width, back.height) == (pose.num_frames, 1280, 720)
        assert back.fps == pytest.approx(29.97, rel=1e-6) and back.metadata["label"] == pose.source[:5]
    # The folder itself is a dataset for datasets' own loader (its card points at the parts, whatever else is there).
    assert load_dataset(str(tmp_path), split="train", cache_dir=str(tmp_path / "cache2")).num_rows == 3
    with pytest.raises(ExtractionError, match="No extracted videos"):
        load_extracted(tmp_path / "elsewhere")


def test_failure_log_survives_a_cut_last_line(tmp_path):
    (tmp_path / "failures.jsonl").write_text(
        json.dumps({"path": "a.mp4", "kind": "no_person", "error": "no person"}) + "\n" + '{"path": "b.m'
    )
    (tmp_path / "failures-00001-of-00002.jsonl").write_text(json.dumps({"path": "c.mp4", "error": "x"}) + "\n")
    assert sorted(read_failures(tmp_path)) == ["a.mp4", "c.mp4"]


def test_decode_ahead_passes_items_errors_and_stops_early():
    import threading

    from msmae.holistic import _decode_ahead

    assert list(_decode_ahead(iter(range(10)), depth=2)) == list(range(10))

    def failing():
        yield 1
        yield 2
        raise ExtractionError("clip.mp4: decoding failed after 2 frames")

    got = []
    with pytest.raises(ExtractionError, match="after 2 frames"):
        for item in _decode_ahead(failing()):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    frames = _decode_ahead(endless(), depth=3)
    assert next(frames) == 0
    frames.close()  # the consumer stops early (e.g. MediaPipe failed): the thread must end, not block
    assert not any(t.name == "msmae-decode" for t in threading.enumerate())
    assert len(produced) <= 6


# ---- clips: ranges inside videos, frame folders ----------------------------------------------------------------------


def test_clip_sources_are_checked_and_keyed():
    from msmae.data.sources import ClipSource

    clip = ClipSource("videos/../a.mp4", start=1.0, end=1.5)
    assert clip.path == "a.mp4" and clip.clip_id == "a.mp4#t=1,1.5"
    assert clip.frame_range(25) == (25, 38)  # frames shown at 1.00 .. 1.48 s
    assert ClipSource("a.mp4", start_frame=3).frame_range(None) == (3, None)
    assert ClipSource("a.mp4").clip_id == "a.mp4"  # a whole video is keyed by its id_path (default: its path)
    assert ClipSource("/d/a.mp4", id_path="d/a.mp4", start=1.0).clip_id == "d/a.mp4#t=1,end"
    with pytest.raises(ValueError, match="not both"):
        ClipSource("a.mp4", start=1.0, end_frame=4)
    with pytest.raises(ValueError, match="empty"):
        ClipSource("a.mp4", start_frame=5, end_frame=5)
    with pytest.raises(ValueError, match="clash"):
        ClipSource("a.mp4", columns={"fps": 3})
    with pytest.raises(ExtractionError, match="frame rate is unknown"):
        ClipSource("a.mp4", start=1.0).frame_range(0.0)


def _counting_open_frames(monkeypatch):
    """Record every reader `run_extraction` opens (one per decode of a source)."""
    import msmae.data.extract as extract

    readers = []

    def counting(path, fps=None):
        readers.append(extract_open(path, fps))
        return readers[-1]

    extract_open = extract.open_frames
    monkeypatch.setattr(extract, "open_frames", counting)
    return readers


@pytest.mark.slow
def test_clips_of_one_video_decode_it_once(shared_data, tmp_path, monkeypatch):
    from msmae.data.extract import run_extraction
    from msmae.data.sources import ClipSource

    video = str(shared_data / "pose-format-samples" / "test_video.mp4")
    clips = [
        ClipSource(video, clip_id="first", start_frame=0, end_frame=10, columns={"label": "A"}),
        ClipSource(video, clip_id="overlap", start_frame=5, end_frame=15, columns={"label": "B"}),
        ClipSource(video, start=1.0, end=1.5, columns={"label": "C"}),  # 29.92 fps: frames 30 .. 44
        ClipSource(video, clip_id="late", start_frame=100, end_frame=110),  # the video has 58 frames
        ClipSource(str(tmp_path / "absent.mp4"), clip_id="absent"),
    ]
    readers = _counting_open_frames(monkeypatch)
    out = tmp_path / "out"
    summary = run_extraction(clips=clips, output_dir=out, progress=False)
    assert (summary.num_videos, summary.num_clips, summary.num_extracted, summary.num_failed) == (2, 5, 3, 2)
    assert [r.path for r in readers if hasattr(r, "path")] == [Path(video)]  # once for its 4 clips

    failures = read_failures(out)
    assert sorted(failures) == ["absent", "late"]
    assert failures["absent"]["kind"] == "unreadable" and "absent.mp4" in failures["absent"]["error"]
    assert failures["late"]["kind"] == "out_of_range" and "58 frames" in failures["late"]["error"]

    rows = {row["clip_id"]: row for row in load_extracted(out, cache_dir=tmp_path / "cache").with_format("numpy")}
    timed = clips[2].clip_id
    assert sorted(rows) == sorted(["first", "overlap", timed])
    frames, fps = read_frames(video, 45)
    for clip_id, (start, stop, label) in {"first": (0, 10, "A"), "overlap": (5, 15, "B"), timed: (30, 45, "C")}.items():
        row = rows[clip_id]
        assert (row["start_frame"], row["end_frame"], row["num_frames"]) == (start, stop, stop - start)
        assert row["source"] == video and row["label"] == label and row["keypoints"].shape == (stop - start, 160, 4)
        # Each clip is tracked from scratch: exactly what extracting its frames alone gives.
        alone = _extractor().extract_frames(frames[start:stop], fps)
        np.testing.assert_array_equal(row["keypoint_mask"], alone.keypoint_mask)
        np.testing.assert_allclose(row["keypoints"], alone.keypoints, atol=1e-5)
    assert part_path(out, "overlap").exists()

    readers.clear()
    again = run_extraction(clips=clips, output_dir=out, progress=False)
    assert (again.num_already_extracted, again.num_already_failed, again.num_extracted) == (3, 2, 0)
    assert readers == []  # nothing left to do: no source is opened


@pytest.mark.slow
def test_frame_folders_are_read_as_videos(shared_data, tmp_path):
    from PIL import Image

    from msmae.data.extract import run_extraction
    from msmae.data.sources import ClipSource

    frames, _ = read_frames(shared_data / "pose-format-samples" / "test_video.mp4", 12)
    frames = np.ascontiguousarray(frames[:, ::2, ::2])
    folder = tmp_path / "sentence"
    folder.mkdir()
    for index, frame in enumerate(frames, 1):  # 1.png .. 12.png: name order would put 10.png before 2.png
        Image.fromarray(frame).save(folder / f"{index}.png")
    (folder / "notes.txt").write_text("not a frame")
    (tmp_path / "no_fps").mkdir()
    Image.fromarray(frames[0]).save(tmp_path / "no_fps" / "0001.png")
    clips = [ClipSource(str(folder), fps=25, columns={"text": "a sentence"}),
             ClipSource(str(folder), clip_id="part", start_frame=2, end_frame=6, fps=25),
             ClipSource(str(tmp_path / "no_fps"))]
    summary = run_extraction(clips=clips, output_dir=tmp_path / "out", progress=False)
    assert (summary.num_extracted, summary.num_failed) == (2, 1)
    assert "frame rate" in read_failures(tmp_path / "out")[str(tmp_path / "no_fps")]["error"]
    rows = {r["clip_id"]: r for r in load_extracted(tmp_path / "out", cache_dir=tmp_path / "c").with_format("numpy")}
    whole = rows[str(folder)]
    assert (whole["num_frames"], whole["fps"], whole["width"], whole["height"]) == (12, 25, 270, 360)
    assert whole["text"] == "a sentence" and rows["part"]["text"] is None
    alone = _extractor().extract_frames(frames, 25)  # PNG is lossless: the same pixels in numeric name order
    np.testing.assert_array_equal(whole["keypoint_mask"], alone.keypoint_mask)
    np.testing.assert_allclose(whole["keypoints"], alone.keypoints, atol=1e-5)
    assert (rows["part"]["start_frame"], rows["part"]["end_frame"]) == (2, 6)
    np.testing.assert_allclose(rows["part"]["keypoints"], _extractor().extract_frames(frames[2:6], 25).keypoints,
                               atol=1e-5)


def test_clip_ids_must_be_unique_and_class_labels_are_encoded(tmp_path):
    from datasets import ClassLabel, Features, Value

    from msmae.data.extract import run_extraction
    from msmae.data.sources import ClipSource

    with pytest.raises(ValueError, match="share the clip_id 'x'"):
        run_extraction(clips=[ClipSource("a.mp4", clip_id="x"), ClipSource("b.mp4", clip_id="x")],
                       output_dir=tmp_path)
    features = row_features({"label": ClassLabel(names=["HELLO", "BYE"]), "signer": Value("string")})
    pose = _random_pose(3, 0, "clip.mp4")
    write_part(tmp_path / "row.parquet", {**pose.to_example(), "label": "BYE", "signer": "s1"}, features)
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "row.parquet").column("label").to_pylist() == [1]
    assert Features.from_arrow_schema(pq.read_schema(tmp_path / "row.parquet"))["label"] == features["label"]


def test_ranges_convert_only_their_frames_and_stop_early():
    class Frames:  # a 50-frame "video" that records what was asked of it
        fps, frame_count = 10.0, 50

        def __init__(self):
            self.pulled, self.converted = 0, []

        def frames(self, wanted):
            for index in range(self.frame_count):
                self.pulled += 1
                if wanted(index):
                    self.converted.append(index)
                    yield np.zeros((32, 32, 3), np.uint8)
                else:
                    yield None

    reader = Frames()
    results = dict(_extractor().extract_ranges(reader, [(3, 6), (2, 4), (8, 9)], source="fake"))
    assert {i: pose.num_frames for i, pose in results.items()} == {0: 3, 1: 2, 2: 1}
    assert [(p.metadata["start_frame"], p.metadata["end_frame"]) for p in map(results.get, range(3))] == [
        (3, 6), (2, 4), (8, 9)]
    assert reader.converted == [2, 3, 4, 5, 8]
    assert reader.pulled <= 9 + 5  # the last needed frame, plus what the decoding thread had read ahead
    with pytest.raises(ValueError, match="empty"):
        list(_extractor().extract_ranges(Frames(), [(4, 4)], source="fake"))

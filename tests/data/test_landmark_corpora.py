"""Landmark corpora (no video) on fixtures written in the publishers' layouts: Kaggle asl-signs (long-format
Parquet per sequence), and `msmae prepare` writing their rows without MediaPipe.

Layouts as the competition's data description gives them (quoted in public repositories, see
`msmae.data.corpora.asl_signs`): `train.csv` = path, participant_id, sequence_id, sign; each landmark file has
frame, row_id, type, landmark_index, x, y, z with 543 rows per frame (face 468, left_hand 21, pose 33,
right_hand 21) and NaN where MediaPipe found nothing.
"""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import asl_signs_root, fingerspelling_root

from msmae.data.corpora import CorpusError, read_corpus
from msmae.keypoint_layout import BODY_POSE_INDICES, FACE_MESH_INDICES, stream_slices

SLICES = stream_slices()
def expected_stored(published, frame):
    """(160, 3) x, y, z the stored row must hold for one published frame (NaN where nothing was detected)."""
    out = np.full((160, 3), np.nan)
    out[SLICES["body"]] = published[(frame, "pose")][list(BODY_POSE_INDICES)]
    out[SLICES["left_hand"]] = published[(frame, "left_hand")]
    out[SLICES["right_hand"]] = published[(frame, "right_hand")]
    out[SLICES["face"]] = published[(frame, "face")][list(FACE_MESH_INDICES)]
    return out


def test_asl_signs_index(tmp_path):
    root, _ = asl_signs_root(tmp_path)
    index = read_corpus("asl_signs", root)
    assert index.label_names == ["TV", "airplane", "zoo"]
    assert list(index.splits) == ["train"] and len(index.splits["train"]) == 6
    clip = index.splits["train"][0]
    assert clip.clip_id == "1000"
    assert clip.columns == {"label": "TV", "signer": "16069", "sequence_id": "1000",
                            "keypoint_source": "mediapipe_holistic"}  # no split column: the competition has none
    assert index.missing == [str(root / "train_landmark_files/16069/999.parquet")]


def test_asl_signs_missing_map_uses_sorted_signs_and_says_so(tmp_path):
    root, _ = asl_signs_root(tmp_path, with_map=False)
    index = read_corpus("asl_signs", root)
    assert index.label_names == ["TV", "airplane"]
    assert any("sign_to_prediction_index_map.json absent" in note for note in index.notes)


def test_asl_signs_sign_not_in_map_names_the_line(tmp_path):
    root, _ = asl_signs_root(tmp_path)
    (root / "sign_to_prediction_index_map.json").write_text(json.dumps({"TV": 0}))
    with pytest.raises(CorpusError, match=r"train.csv, line 3: sign 'airplane'"):
        read_corpus("asl_signs", root)


def test_asl_signs_keypoints_equal_the_published_values(tmp_path):
    root, published = asl_signs_root(tmp_path)
    index = read_corpus("asl_signs", root)
    clip = index.splits["train"][0]
    pose = index.load_pose(clip)
    frames, values = published["1000"]
    # Frames 20, 21, 23: the skipped 22 is a frame with nothing detected.
    assert pose.num_frames == 4 and pose.metadata["start_frame"] == 20 and pose.metadata["end_frame"] == 24
    assert not pose.keypoint_mask[2].any() and not pose.keypoints[2].any()
    for row, frame in zip((0, 1, 3), frames):
        want = expected_stored(values, frame)
        present = np.isfinite(want[:, 0])
        np.testing.assert_array_equal(pose.keypoint_mask[row], present)
        np.testing.assert_array_equal(pose.keypoints[row, present, :3], want[present].astype(np.float32))
        assert not pose.keypoints[row, ~present].any()
    assert not pose.keypoint_mask[1, SLICES["left_hand"]].any()  # frame 21: left hand NaN
    assert pose.keypoint_mask[1, SLICES["right_hand"]].all()
    assert (pose.width, pose.height, pose.fps) == (0, 0, 30.0)
    other = index.load_pose(index.splits["train"][1])  # frame 0: NaN face
    assert not other.keypoint_mask[0, SLICES["face"]].any() and other.keypoint_mask[1, SLICES["face"]].all()


def test_asl_signs_damaged_file_is_named(tmp_path):
    root, _ = asl_signs_root(tmp_path)
    bad = root / "train_landmark_files/16069/1000.parquet"
    pq.write_table(pa.table({"frame": [0], "x": [0.5]}), bad)
    index = read_corpus("asl_signs", root)
    with pytest.raises(CorpusError, match=r"1000.parquet: columns \['type', 'landmark_index', 'y', 'z'\] missing"):
        index.load_pose(index.splits["train"][0])
    pq.write_table(pa.table({"frame": [0, 0], "type": ["pose", "pose"], "landmark_index": [11, 11],
                             "x": [0.1, 0.2], "y": [0.1, 0.2], "z": [0.0, 0.0]}), bad)
    with pytest.raises(CorpusError, match="appears twice"):
        index.load_pose(index.splits["train"][0])


def test_prepare_asl_signs_writes_rows_without_mediapipe(tmp_path, monkeypatch):
    from datasets import load_from_disk

    import msmae.data.extract as extract
    from msmae.data.prepare import prepare

    monkeypatch.setattr(extract, "run_extraction", lambda *a, **k: pytest.fail("MediaPipe must not run"))
    root, published = asl_signs_root(tmp_path)
    out = tmp_path / "out"
    summary = prepare("asl_signs", root, out, progress=False)
    assert summary.rows == {"train": 6}
    data = load_from_disk(str(out))
    train = data["train"]
    assert train.features["label"].names == ["TV", "airplane", "zoo"]
    assert train["clip_id"] == ["1000", "1001", "1002", "1003", "1004", "1005"]
    assert train["label"] == [0, 1, 0, 1, 0, 1] and train["signer"][0] == "16069"
    assert set(train["keypoint_source"]) == {"mediapipe_holistic"}
    row = train.with_format("numpy")[0]
    frames, values = published["1000"]
    want = expected_stored(values, 23)
    present = np.isfinite(want[:, 0])
    np.testing.assert_array_equal(row["keypoints"][3, present, :3], want[present].astype(np.float32))
    assert (row["start_frame"], row["end_frame"], row["num_frames"]) == (20, 24, 4)
    card = (out / "README.md").read_text()
    assert "keypoint source: `mediapipe_holistic`" in card and "in the splits as published" in card
    assert (out / "missing.txt").read_text().strip().endswith("999.parquet")
    from msmae.data.schema import ROW_COLUMNS

    assert list(train.features)[: len(ROW_COLUMNS)] == list(ROW_COLUMNS)


# ---- asl-fingerspelling ----------------------------------------------------------------------------------------------
# Wide format: one row per frame, index sequence_id, frame, then x_/y_/z_ columns per part and landmark.

def test_asl_fingerspelling_index_and_keypoints(tmp_path):
    root, published = fingerspelling_root(tmp_path)
    index = read_corpus("asl_fingerspelling", root)
    assert list(index.splits) == ["train"]
    assert [c.clip_id for c in index.splits["train"]] == ["1816796431", "1816825349", "1817123330", "1535467051"]
    assert [c.columns["subset"] for c in index.splits["train"]] == ["train"] * 3 + ["supplemental"]
    assert index.missing == [f"{root / 'train_landmarks/105143404.parquet'}#sequence_id=42"]
    clip = index.splits["train"][1]  # the second of two sequences in one file, frames 5, 6, 8
    assert clip.columns["text"] == "scales/kuhaylah" and clip.columns["signer"] == "107"
    pose = index.load_pose(clip)
    assert pose.num_frames == 4 and (pose.metadata["start_frame"], pose.metadata["end_frame"]) == (5, 9)
    assert not pose.keypoint_mask[2].any()  # frame 7 was skipped
    for row, frame in ((0, 5), (1, 6), (3, 8)):
        want = expected_stored(published["1816825349"], frame)
        present = np.isfinite(want[:, 0])
        np.testing.assert_array_equal(pose.keypoint_mask[row], present)
        np.testing.assert_array_equal(pose.keypoints[row, present, :3], want[present].astype(np.float32))
    assert not pose.keypoint_mask[0, SLICES["right_hand"]].any()  # frame 5 is odd: no right hand
    assert pose.keypoint_mask[1, SLICES["right_hand"]].all()
    assert any(note.startswith("1 phrases use characters outside") for note in index.notes)  # "Creekhouse"


def test_prepare_asl_fingerspelling_text_rows(tmp_path):
    from datasets import load_from_disk

    from msmae.data.prepare import prepare

    root, published = fingerspelling_root(tmp_path)
    summary = prepare("asl_fingerspelling", root, tmp_path / "out", progress=False)
    assert summary.rows == {"train": 4}
    data = load_from_disk(str(tmp_path / "out"))
    assert data["train"]["text"] == ["3 Creekhouse", "scales/kuhaylah", "https://jsi.is/hukuoka",
                                     "coming up with killer sound bites"]
    assert "label" not in data["train"].features
    row = data["train"].with_format("numpy")[3]
    want = expected_stored(published["1535467051"], 4)
    present = np.isfinite(want[:, 0])
    np.testing.assert_array_equal(row["keypoints"][1, present, :3], want[present].astype(np.float32))


def test_asl_fingerspelling_wrong_file_is_named(tmp_path):
    root, _ = fingerspelling_root(tmp_path)
    pq.write_table(pa.table({"sequence_id": [1816796431], "frame": [0], "x_face_0": [0.5]}),
                   root / "train_landmarks/5414471.parquet")
    index = read_corpus("asl_fingerspelling", root)
    with pytest.raises(CorpusError, match=r"5414471.parquet: \d+ columns missing"):
        index.load_pose(index.splits["train"][0])



# ---- OpenPose JSON folders (How2Sign layout) ------------------------------------------------------------------------
# One <clip>_<frame:012d>_keypoints.json per frame: {"version": 1.3, "people": [{"pose_keypoints_2d": 25 x 3,
# "face_keypoints_2d": 70 x 3, "hand_left_keypoints_2d": 21 x 3, "hand_right_keypoints_2d": 21 x 3, ...}]}.

H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE\n"


def openpose_person(rng, scale=1.0):
    person = {"person_id": [-1]}
    for key, count in (("pose_keypoints_2d", 25), ("face_keypoints_2d", 70), ("hand_left_keypoints_2d", 21),
                       ("hand_right_keypoints_2d", 21)):
        values = np.column_stack([rng.uniform(0, 1280, count), rng.uniform(0, 720, count),
                                  rng.uniform(0.1, 1, count) * scale])
        values[3] = 0.0  # a point not found: (0, 0, 0)
        person[key] = [round(float(v), 3) for v in values.ravel()]
        for k in ("pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d"):
            person[k] = []
    return person


def write_openpose_clip(folder, frames, seed, empty=(), two_people=()):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for frame in frames:
        people = [] if frame in empty else [openpose_person(rng)]
        if frame in two_people:
            people.insert(0, openpose_person(rng, scale=0.1))  # a bystander, found with low confidence
        written[frame] = people
        (folder / f"{folder.name}_{frame:012d}_keypoints.json").write_text(json.dumps({"version": 1.3,
                                                                                       "people": people}))
    return written


def how2sign_openpose_root(tmp_path, with_csv=True):
    base = tmp_path / "How2Sign" / "sentence_level"
    published = {}
    for split, clips in (("train", {"-fZc293MpJk_0-1-rgb_front": [0, 1, 3], "-fZc293MpJk_1-1-rgb_front": [0]}),
                         ("val", {"-d5dN54tH2E_0-1-rgb_front": [0, 1]})):
        json_dir = base / split / "rgb_front" / "features" / "openpose_output" / "json"
        for n, (clip, frames) in enumerate(clips.items()):
            published[clip] = write_openpose_clip(json_dir / clip, frames, seed=n + len(split), empty={1},
                                                  two_people={3})
        if with_csv:
            text = base / split / "text" / "en" / "raw_text" / "re_aligned"
            text.mkdir(parents=True)
            rows = "".join(f"{c[:11]}\t{c[:13]}-rgb_front\t{c[12:15]}\t{c}\t1.0\t2.0\tsentence {c[:4]}\n"
                           for c in clips)
            if split == "val":
                rows += "x\tx\tx\tgone_0-1-rgb_front\t1.0\t2.0\tno keypoints\n"
            (text / f"how2sign_realigned_{split}.csv").write_text(H2S_HEADER + rows)
    return tmp_path / "How2Sign", published


def test_openpose_how2sign_folders(tmp_path):
    root, published = how2sign_openpose_root(tmp_path)
    with pytest.raises(CorpusError, match=r"frame size or rate of 3 OpenPose folders is unknown .*--frame_size WxH"):
        read_corpus("openpose", root)
    index = read_corpus("openpose", root, frame_size="1280x720", fps=24.0)
    assert {name: [c.clip_id for c in clips] for name, clips in index.splits.items()} == {
        "train": ["-fZc293MpJk_0-1-rgb_front", "-fZc293MpJk_1-1-rgb_front"], "validation": [
            "-d5dN54tH2E_0-1-rgb_front"], "test": []}
    clip = index.splits["train"][0]
    assert clip.columns == {"split": "train", "keypoint_source": "openpose_body25", "text": "sentence -fZc",
                            "video_name": "-fZc293MpJk_0-rgb_front"}
    assert index.missing == ["gone_0-1-rgb_front (How2Sign sentence without an OpenPose folder)"]
    pose = index.load_pose(clip)
    assert (pose.num_frames, pose.width, pose.height, pose.fps) == (4, 1280, 720, 24.0)
    assert not pose.keypoint_mask[1].any() and not pose.keypoint_mask[2].any()  # no person; frame 2 has no file
    assert not pose.keypoint_mask[:, SLICES["face"]].any()  # OpenPose's face is not MediaPipe's mesh
    for row in (0, 3):
        person = published[clip.clip_id][row][-1]  # frame 3: the signer, not the low-confidence bystander
        body = np.asarray(person["pose_keypoints_2d"]).reshape(25, 3)[[5, 2, 6, 3, 7, 4]]
        left = np.asarray(person["hand_left_keypoints_2d"]).reshape(21, 3)
        right = np.asarray(person["hand_right_keypoints_2d"]).reshape(21, 3)
        for stream, values in (("body", body), ("left_hand", left), ("right_hand", right)):
            found = values[:, 2] > 0
            np.testing.assert_array_equal(pose.keypoint_mask[row, SLICES[stream]], found)
            want = (values[:, :2] / np.array([1280.0, 720.0])).astype(np.float32)
            np.testing.assert_array_equal(pose.keypoints[row, SLICES[stream]][found, :2], want[found])
    assert not pose.keypoint_mask[0, SLICES["left_hand"]][3]  # confidence 0: not detected


def test_openpose_plain_folder_and_bad_json(tmp_path):
    write_openpose_clip(tmp_path / "op" / "clipA", [5, 6], seed=0)
    index = read_corpus("openpose", tmp_path / "op", frame_size="640x480", fps=25)
    assert list(index.splits) == ["train"] and index.splits["train"][0].clip_id == "clipA"
    assert "split" not in index.splits["train"][0].columns  # no official split: the recipes split by themselves
    assert index.load_pose(index.splits["train"][0]).metadata["start_frame"] == 5
    with pytest.raises(CorpusError, match="WIDTHxHEIGHT"):
        read_corpus("openpose", tmp_path / "op", frame_size="1280", fps=25)
    bad = tmp_path / "op" / "clipA" / "clipA_000000000006_keypoints.json"
    bad.write_text(json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": [0.0] * 54}]}))
    with pytest.raises(CorpusError, match="clipA_000000000006_keypoints.json: pose_keypoints_2d has 54 values.*COCO"):
        index.load_pose(index.splits["train"][0])


def test_prepare_openpose_card_and_column(tmp_path):
    from datasets import load_from_disk

    from msmae.cli import main

    root, _ = how2sign_openpose_root(tmp_path)
    out = tmp_path / "out"
    assert main(["prepare", "openpose", str(root), "--frame_size", "1280x720", "--fps", "24", "--output_dir",
                 str(out), "--no_progress"]) == 0
    data = load_from_disk(str(out))
    assert data["train"]["text"] == ["sentence -fZc", "sentence -fZc"]
    assert set(data["validation"]["keypoint_source"]) == {"openpose_body25"}
    card = (out / "README.md").read_text()
    assert "keypoint source: `openpose_body25`" in card and "different distribution" in card
    assert "face stream marked absent" in card


def test_openpose_frame_size_and_rate_from_the_video_beside(tmp_path, sample_video):
    from msmae.holistic import VideoReader

    write_openpose_clip(tmp_path / "op" / "json" / "clipA", [0, 1], seed=0)
    (tmp_path / "op" / "videos").mkdir()
    (tmp_path / "op" / "videos" / "clipA.mp4").symlink_to(sample_video)
    with VideoReader(sample_video) as video:
        frame = next(iter(video))
        want = (frame.shape[1], frame.shape[0], video.fps)
    index = read_corpus("openpose", tmp_path / "op")
    pose = index.load_pose(index.splits["train"][0])
    assert (pose.width, pose.height, pose.fps) == want
    given = read_corpus("openpose", tmp_path / "op", fps=12.5)  # --fps wins; the size still comes from the video
    pose = given.load_pose(given.splits["train"][0])
    assert (pose.width, pose.height, pose.fps) == (want[0], want[1], 12.5)


def test_prepare_landmarks_in_several_processes_keeps_the_order(tmp_path):
    from datasets import load_from_disk

    from msmae.data.prepare import prepare

    root, _ = asl_signs_root(tmp_path)
    prepare("asl_signs", root, tmp_path / "one", progress=False)
    prepare("asl_signs", root, tmp_path / "two", progress=False, num_workers=2)
    one, two = (load_from_disk(str(tmp_path / name))["train"].with_format("numpy") for name in ("one", "two"))
    assert list(one["clip_id"]) == list(two["clip_id"]) == ["1000", "1001", "1002", "1003", "1004", "1005"]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a["keypoints"], b["keypoints"])

"""Readers of pose files and landmark arrays (`msmae.pose_io`), on real files and synthetic arrays."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import sample_pose_file

from msmae.keypoint_layout import BODY_POSE_INDICES, FACE_MESH_INDICES, NUM_STORED_KEYPOINTS, stream_slices
from msmae.pose_io import (
    ASL_APP_FACE_INDICES,
    STORED_POINT_NAMES,
    SignPose,
    read_asl_app_json,
    read_frame_folder,
    read_landmark_array,
    read_pose_file,
)
from msmae.clips import is_video, load_pose
from msmae.data.corpora.msl150 import read_msl150_sample

SLICES = stream_slices()
BODY, LEFT, RIGHT, FACE = SLICES["body"], SLICES["left_hand"], SLICES["right_hand"], SLICES["face"]
LEFT_WRIST, RIGHT_WRIST = BODY.start + 4, BODY.start + 5  # body stream = pose 11-16


def _pose_format(path):
    from pose_format import Pose

    return Pose.read(Path(path).read_bytes())


def _pose_format_columns(pose):
    """Column of each stored keypoint in a pose-format body (-1 where absent), by (component, point) name."""
    index, offset = {}, 0
    for component in pose.header.components:
        for position, name in enumerate(component.points):
            index[(component.name, name)] = offset + position
        offset += len(component.points)
    return np.array([index.get(key, -1) for key in STORED_POINT_NAMES])


def _hand_near_its_wrist(poses, hand="left"):
    """Fraction of frames (both pose wrists and the hand detected) whose hand wrist is nearer the pose wrist of the
    same side than the other one."""
    stream, same, other = (LEFT, LEFT_WRIST, RIGHT_WRIST) if hand == "left" else (RIGHT, RIGHT_WRIST, LEFT_WRIST)
    near, total = 0, 0
    for pose in poses:
        k, m = pose.keypoints[..., :2], pose.keypoint_mask
        ok = m[:, stream.start] & m[:, LEFT_WRIST] & m[:, RIGHT_WRIST]
        wrist = k[ok, stream.start]
        near += int((np.linalg.norm(wrist - k[ok, same], axis=-1) < np.linalg.norm(wrist - k[ok, other], axis=-1)).sum())
        total += int(ok.sum())
    assert total > 20, f"too few frames with a detected {hand} hand to judge handedness"
    return near / total


# ---- pose-format files ------------------------------------------------------------------------------------------------


def test_signsuisse_reduced_matches_pose_format_by_name(shared_data):
    path = sorted((shared_data / "signsuisse" / "reduced").glob("*.pose"))[0]
    pose, reference = read_pose_file(path), _pose_format(path)
    columns = _pose_format_columns(reference)
    assert (columns >= 0).all()  # the reduced layout holds exactly the paper's 112 face points
    data = np.ma.getdata(reference.body.data)[:, 0][:, columns]
    detected = ~np.ma.getmaskarray(reference.body.data)[:, 0, columns, 0]

    assert pose.keypoints.shape == (reference.body.data.shape[0], NUM_STORED_KEYPOINTS, 4)
    assert pose.width == 640 and pose.height == 480 and pose.fps == pytest.approx(float(reference.body.fps))
    np.testing.assert_array_equal(pose.keypoint_mask, detected)  # confidence 0 = undetected, as pose-format masks
    # Signsuisse stores pixels of a 640x480 frame: x / width, y / height.
    np.testing.assert_allclose(pose.keypoints[..., 0][detected], data[..., 0][detected] / 640, rtol=1e-5)
    np.testing.assert_allclose(pose.keypoints[..., 1][detected], data[..., 1][detected] / 480, rtol=1e-5)
    np.testing.assert_allclose(pose.keypoints[..., 2][detected], data[..., 2][detected], rtol=1e-5)
    assert not pose.keypoints[~pose.keypoint_mask].any()
    assert np.isfinite(pose.keypoints).all()


def test_signsuisse_full_and_reduced_layouts_give_identical_streams(shared_data, tmp_path):
    # No recording is in both signsuisse/full and signsuisse/reduced (no shared stem, no equal data), so the reduced
    # file is made from a full one with pose-format: components reordered and face points shuffled, so only the
    # names, not the positions, can map it.
    full_path = sorted((shared_data / "signsuisse" / "full").glob("*.pose"))[0]
    full = _pose_format(full_path)
    face = [str(i) for i in np.random.default_rng(0).permutation(FACE_MESH_INDICES)]
    reduced = full.get_components(
        ["RIGHT_HAND_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "POSE_LANDMARKS"], {"FACE_LANDMARKS": face}
    )
    reduced_path = tmp_path / "reduced.pose"
    with open(reduced_path, "wb") as f:
        reduced.write(f)

    a, b = read_pose_file(full_path), read_pose_file(reduced_path)
    assert sum(len(c.points) for c in reduced.header.components) == 33 + 112 + 21 + 21
    np.testing.assert_array_equal(a.keypoint_mask, b.keypoint_mask)
    np.testing.assert_allclose(a.keypoints, b.keypoints, rtol=1e-6)


def test_real_files_read_in_frame_range(shared_data):
    samples = shared_data / "pose-format-samples"
    paths = [
        *sorted((shared_data / "signsuisse" / "full").glob("*.pose"))[:2],
        *sorted((shared_data / "signsuisse" / "reduced").glob("*.pose"))[:3],
        samples / "example_full_holistic.pose",  # 576 points with pose world landmarks, 320x240
        samples / "hand_estimation" / "6fb01565da31c5500d1ef2cd2906b06b.pose",  # 586 points (478 face)
    ]
    for path in paths:
        pose = read_pose_file(path)
        for stream in (BODY, LEFT, RIGHT):
            xy = pose.keypoints[:, stream, :2][pose.keypoint_mask[:, stream]]
            if xy.size:  # points may run a little outside the frame, but the bulk is inside it
                assert -0.5 < xy.min() and xy.max() < 1.6, path
                assert 0.0 < np.median(xy) < 1.0, path
        assert np.isfinite(pose.keypoints).all()


def test_reduced_sample_masks_missing_face_points(shared_data):
    # mediapipe.pose: pose 8 points, face 128 points without the 10 nose points of the paper's face set.
    path = shared_data / "pose-format-samples" / "mediapipe.pose"
    pose, reference = read_pose_file(path), _pose_format(path)
    columns = _pose_format_columns(reference)
    absent = columns < 0
    assert absent[:FACE.start].sum() == 0 and absent[FACE].sum() == 10
    assert not pose.keypoint_mask[:, absent].any()
    detected = ~np.ma.getmaskarray(reference.body.data)[:, 0, :, 0]
    np.testing.assert_array_equal(pose.keypoint_mask[:, ~absent], detected[:, columns[~absent]])
    assert (pose.width, pose.height) == (1250, 1250)
    xy = pose.keypoints[..., :2][pose.keypoint_mask]
    assert 0.0 < np.median(xy) < 1.0


def test_openpose_layout_is_rejected_with_its_components(shared_data):
    with pytest.raises(ValueError) as error:
        read_pose_file(shared_data / "pose-format-samples" / "openpose.pose")
    message = str(error.value)
    assert "openpose.pose" in message and "pose_keypoints_2d" in message and "hand_left_keypoints_2d" in message
    assert "POSE_LANDMARKS" in message and "LEFT_HAND_LANDMARKS" in message


def test_single_hand_layout_is_rejected(shared_data):
    with pytest.raises(ValueError, match="RIGHT_HAND_LANDMARKS \\(21 points\\).*missing points: POSE_LANDMARKS"):
        read_pose_file(shared_data / "pose-format-samples" / "mediapipe_hand_normalized.pose")


def test_empty_truncated_and_missing_files(tmp_path):
    empty = tmp_path / "empty.pose"  # as met in the wild: an empty file
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pose is empty"):
        read_pose_file(empty)
    with pytest.raises(ValueError, match="empty.pose"):
        load_pose(empty)

    data = sample_pose_file(tmp_path, "msl150/doctor/2").read_bytes()  # a real clip shipped with msmae, as .pose
    truncated = tmp_path / "cut.pose"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.pose is cut short: its header says 30 frames.*bytes are missing"):
        read_pose_file(truncated)

    with pytest.raises(FileNotFoundError, match="nowhere.pose"):
        read_pose_file(tmp_path / "nowhere.pose")
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        load_pose(tmp_path / "nowhere.mp4")


def test_left_hand_is_the_signers_left(shared_data):
    # Over all signsuisse files 97.7% of left-hand and 98.2% of right-hand frames sit at their own pose wrist; single
    # files dip lower where MediaPipe confuses crossed hands, so judge a batch of files.
    poses = [read_pose_file(p) for p in sorted((shared_data / "signsuisse" / "reduced").glob("*.pose"))[:30]]
    assert _hand_near_its_wrist(poses, "left") > 0.9
    assert _hand_near_its_wrist(poses, "right") > 0.9


# ---- ASL-App JSON, MSL-150 folders ------------------------------------------------------------------------------------


def test_asl_app_json(shared_data):
    path = shared_data / "asl-app-100" / "signs" / "hello.json"
    document = json.loads(path.read_text())
    pose = read_asl_app_json(path)
    assert pose.num_frames == len(document["frames"]) and pose.fps == pytest.approx(29.97)
    assert pose.metadata["sign"] == "hello" and pose.width == 0

    frame = next(f for f in document["frames"] if f["face"][0] is not None)
    t = document["frames"].index(frame)
    np.testing.assert_allclose(pose.keypoints[t, BODY, :3], np.array(frame["pose"])[list(BODY_POSE_INDICES)], atol=1e-6)
    for stream, key in ((LEFT, "left_hand"), (RIGHT, "right_hand")):
        detected = np.array([f[key][0] is not None for f in document["frames"]])
        np.testing.assert_array_equal(pose.keypoint_mask[:, stream].all(1), detected)
        np.testing.assert_array_equal(pose.keypoint_mask[:, stream].any(1), detected)  # nulls: whole hand masked
    # Only the face points both sets share can be filled; the rest of the face stream is masked.
    shared = [i for i, index in enumerate(FACE_MESH_INDICES) if index in ASL_APP_FACE_INDICES]
    assert 10 <= len(shared) < 33
    face_seen = np.array([f["face"][0] is not None for f in document["frames"]])
    assert face_seen.any()
    np.testing.assert_array_equal(pose.keypoint_mask[:, FACE.start + np.array(shared)].all(1), face_seen)
    assert pose.keypoint_mask[:, FACE].sum(1).max() == len(shared)
    first_face = FACE_MESH_INDICES[shared[0]]
    np.testing.assert_allclose(
        pose.keypoints[t, FACE.start + shared[0], :3], frame["face"][ASL_APP_FACE_INDICES.index(first_face)], atol=1e-6
    )


def test_asl_app_handedness(shared_data):
    paths = sorted((shared_data / "asl-app-100" / "signs").glob("*.json"))[:25]
    poses = [read_asl_app_json(p) for p in paths]
    assert _hand_near_its_wrist(poses, "left") > 0.85
    assert _hand_near_its_wrist(poses, "right") > 0.9


def test_asl_app_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"people": []}))
    with pytest.raises(ValueError, match="other.json: expected an ASL-App landmark file"):
        load_pose(path)


def test_msl150_sample(shared_data):
    folder = shared_data / "msl150" / "data" / "sample_npy" / "hoy" / sorted(
        p.name for p in (shared_data / "msl150" / "data" / "sample_npy" / "hoy").iterdir()
    )[0]
    vectors = np.stack([np.load(folder / f"{t}.npy") for t in range(30)])
    pose = read_msl150_sample(folder)
    assert pose.num_frames == 30 and (pose.width, pose.height) == (1280, 720)
    assert pose.metadata["gloss"] == "hoy"
    # Body = pose 11-16 of the 25 x (x, y, z, visibility) block, including visibility.
    body = vectors[:, :100].reshape(30, 25, 4)[:, list(BODY_POSE_INDICES)]
    np.testing.assert_allclose(pose.keypoints[:, BODY], body, atol=1e-6)
    left = vectors[:, 100:163].reshape(30, 21, 3)
    np.testing.assert_array_equal(pose.keypoint_mask[:, LEFT], (left[..., :2] != 0).any(-1))
    np.testing.assert_allclose(pose.keypoints[:, LEFT, :3], left, atol=1e-6)
    assert not pose.keypoint_mask[:, FACE].any()
    assert load_pose(folder).keypoints.tobytes() == pose.keypoints.tobytes()


def test_msl150_handedness(shared_data):
    root = shared_data / "msl150" / "data" / "sample_npy"
    poses = [read_msl150_sample(folder) for gloss in sorted(root.iterdir()) for folder in sorted(gloss.iterdir())[:4]]
    assert _hand_near_its_wrist(poses, "left") > 0.95
    assert _hand_near_its_wrist(poses, "right") > 0.95


# ---- landmark arrays --------------------------------------------------------------------------------------------------


def _holistic_array(frames=5, face=468, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, size=(frames, 33 + face + 42, channels))


@pytest.mark.parametrize("face,channels", [(468, 3), (478, 4), (468, 2)])
def test_holistic_array_maps_each_stream(face, channels):
    array = _holistic_array(face=face, channels=channels)
    pose = read_landmark_array(array, width=640, height=480)
    np.testing.assert_allclose(pose.keypoints[:, BODY, :channels], array[:, list(BODY_POSE_INDICES)], rtol=1e-6)
    np.testing.assert_allclose(pose.keypoints[:, FACE, :channels], array[:, 33 + np.array(FACE_MESH_INDICES)], rtol=1e-6)
    np.testing.assert_allclose(pose.keypoints[:, LEFT, :channels], array[:, 33 + face : 33 + face + 21], rtol=1e-6)
    np.testing.assert_allclose(pose.keypoints[:, RIGHT, :channels], array[:, 33 + face + 21 :], rtol=1e-6)
    assert pose.keypoint_mask.all()


def test_array_nan_and_zero_are_masked():
    array = _holistic_array()
    array[0, 33 + 468] = np.nan  # left wrist, frame 0
    array[1, 33 + 468 + 21 :] = 0.0  # right hand not detected in frame 1
    array[2, 11, 0] = np.inf
    pose = read_landmark_array(array)
    assert not pose.keypoint_mask[0, LEFT.start] and pose.keypoint_mask[0, LEFT.start + 1]
    assert not pose.keypoint_mask[1, RIGHT].any() and pose.keypoint_mask[2, RIGHT].all()
    assert not pose.keypoint_mask[2, BODY.start]
    assert np.isfinite(pose.keypoints).all() and not pose.keypoints[~pose.keypoint_mask].any()

    with pytest.raises(ValueError, match="no finite coordinate"):
        read_landmark_array(np.full((4, 543, 3), np.nan))


def test_array_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(10, 50, 3\) matches no known layout.*msmae.*holistic.*msl150"):
        read_landmark_array(np.zeros((10, 50, 3)))
    with pytest.raises(ValueError, match="does not fit layout 'msl150'"):
        read_landmark_array(np.zeros((10, 543, 3)), layout="msl150")
    with pytest.raises(ValueError, match="look like pixels.*pass width= and height="):
        read_landmark_array(_holistic_array() * 500)
    pixels = read_landmark_array(_holistic_array() * [640, 480, 1], width=640, height=480)
    np.testing.assert_allclose(pixels.keypoints[..., :2], read_landmark_array(_holistic_array()).keypoints[..., :2], rtol=1e-5)

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy cannot be read as a numeric array without unpickling"):
        read_landmark_array(objects)
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        (tmp_path / "clip.txt").write_text("x")
        load_pose(tmp_path / "clip.txt")


def test_npy_npz_and_frame_folder_round_trip(tmp_path):
    pose = read_landmark_array(_holistic_array(frames=6, channels=4), fps=25, width=640, height=480)
    np.save(tmp_path / "clip.npy", pose.keypoints)
    np.savez(tmp_path / "row.npz", **pose.to_example())
    (tmp_path / "frames").mkdir()
    for t in range(6):  # numeric, not lexicographic, order: 10.npy after 9.npy
        np.save(tmp_path / "frames" / f"{t * 5}.npy", pose.keypoints[t])

    from_npy = load_pose(tmp_path / "clip.npy", width=640, height=480)
    from_npz = load_pose(tmp_path / "row.npz")
    from_folder = read_frame_folder(tmp_path / "frames")
    for other in (from_npy, from_npz, from_folder):
        np.testing.assert_array_equal(other.keypoints, pose.keypoints)
        np.testing.assert_array_equal(other.keypoint_mask, pose.keypoint_mask)
    assert (from_npz.fps, from_npz.width, from_npz.height) == (25.0, 640, 480)


def test_load_pose_dispatch(tmp_path, monkeypatch):
    pose = read_landmark_array(_holistic_array())
    assert load_pose(pose) is pose
    np.testing.assert_array_equal(load_pose(pose.to_example()).keypoints, pose.keypoints)
    np.testing.assert_array_equal(load_pose(_holistic_array()).keypoints, pose.keypoints)

    # Videos, frame-image folders and RGB frames go to a msmae.holistic extractor, imported only then.
    seen = []

    class FakeExtractor:
        def __init__(self, **kwargs):
            seen.append(("new", kwargs))

        def extract_video(self, path, fps=None):
            seen.append((Path(path).name, fps))
            return pose

        def extract_frames(self, frames, fps):
            seen.append((frames.shape, fps))
            return empty if frames.shape[0] == 1 else pose

        def close(self):
            seen.append("closed")

    empty = SignPose(np.zeros((1, 160, 4)), np.zeros((1, 160), bool), fps=30)
    fake = types.ModuleType("msmae.holistic")
    fake.HolisticExtractor = FakeExtractor
    monkeypatch.setitem(sys.modules, "msmae.holistic", fake)
    video = tmp_path / "clip.MP4"
    video.write_bytes(b"\0")
    assert load_pose(video, model_complexity=0) is pose
    assert seen == [("new", {"model_complexity": 0}), ("clip.MP4", None), "closed"]
    frames_dir = tmp_path / "sentence"
    frames_dir.mkdir()
    (frames_dir / "0001.png").write_bytes(b"\0")
    shared = FakeExtractor()
    seen.clear()
    assert load_pose(frames_dir, extractor=shared, fps=25) is pose  # a given extractor is reused, not closed
    assert load_pose(np.zeros((4, 8, 8, 3), np.uint8), extractor=shared) is pose
    assert seen == [("sentence", 25), ((4, 8, 8, 3), 30.0)]
    with pytest.raises(ValueError, match="no person in the frames"):
        load_pose(np.zeros((1, 8, 8, 3), np.uint8), extractor=shared)
    assert is_video(video) and is_video(frames_dir) and not is_video(tmp_path / "none.mp4")
    assert not is_video(_holistic_array()) and not is_video(np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="index=1 picks a row of an `msmae extract` folder"):
        load_pose(video, index=1)


def test_sign_pose_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(frames, 160, 4\)"):
        SignPose(keypoints=np.zeros((3, 150, 4)), keypoint_mask=np.zeros((3, 150)), fps=25)

"""pose-format round trips (`msmae export-pose`, `msmae.data.pose_export`) and the 543-landmark layout
(`msmae extract --keep_landmarks all`): what msmae writes, pose-format reads with its own names, and both readers
give back the arrays that were written."""

import numpy as np
import pytest

from msmae import sample_data
from msmae.cli import main
from msmae.keypoint_layout import HOLISTIC_TO_STORED, NUM_HOLISTIC_KEYPOINTS, NUM_STORED_KEYPOINTS
from msmae.pose_io import SignPose, in_stored_layout, read_pose_file

pose_format = pytest.importorskip("pose_format")


def holistic_clip(frames=9, seed=0, width=640, height=480) -> SignPose:
    """A clip of all 543 landmarks, with undetected hands and faces in some frames and a visibility on the pose."""
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0.05, 0.95, (frames, NUM_HOLISTIC_KEYPOINTS, 4)).astype(np.float32)
    keypoints[:, 33:, 3] = 0  # only pose landmarks have a visibility
    mask = np.ones((frames, NUM_HOLISTIC_KEYPOINTS), bool)
    mask[2, 501:522] = False  # left hand lost
    mask[4, 33:501] = False  # face lost
    mask[frames - 1, :] = False  # nobody
    keypoints[~mask] = 0
    return SignPose(keypoints=keypoints, keypoint_mask=mask, fps=25.0, width=width, height=height, source="synthetic")


def assert_same_clip(back: SignPose, original: SignPose):
    assert back.keypoints.shape == original.keypoints.shape
    np.testing.assert_array_equal(back.keypoint_mask, original.keypoint_mask)
    # x, y go through pixels (pose-format's unit) and back: at most one float32 step apart; z and visibility exact.
    np.testing.assert_array_max_ulp(back.keypoints[..., :2], original.keypoints[..., :2], maxulp=1)
    np.testing.assert_array_equal(back.keypoints[..., 2:], original.keypoints[..., 2:])
    assert (back.fps, back.width, back.height) == (original.fps, original.width, original.height)


def pose_format_components(path):
    from pose_format import Pose

    pose = Pose.read(path.read_bytes())
    return pose, {component.name: component.points for component in pose.header.components}


def test_stored_clip_round_trip_through_pose_format(tmp_path):
    from pose_format.utils.holistic import BODY_POINTS, HAND_POINTS

    from msmae.data.pose_export import write_pose_file

    clip = sample_data.load_clip("msl150/doctor/2")
    clip.keypoints[3, 10:20] = 0  # some undetected points
    clip.keypoint_mask[3, 10:20] = False
    path = write_pose_file(clip, tmp_path / "doctor.pose")

    pose, components = pose_format_components(path)
    assert list(components) == ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"]
    assert components["POSE_LANDMARKS"] == [BODY_POINTS[i] for i in range(11, 17)]
    assert components["LEFT_HAND_LANDMARKS"] == components["RIGHT_HAND_LANDMARKS"] == HAND_POINTS
    assert len(components["FACE_LANDMARKS"]) == 112
    assert pose.body.fps == pytest.approx(clip.fps)
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (clip.width, clip.height)
    assert pose.body.data.shape == (clip.num_frames, 1, NUM_STORED_KEYPOINTS, 3)
    # pose-format's mask is confidence 0: exactly msmae's undetected points.
    assert int((np.asarray(pose.body.confidence) == 0).sum()) == int((~clip.keypoint_mask).sum())
    # Pixels, as pose-format's own MediaPipe export writes them (the left wrist: pose landmark 15).
    wrist = components["POSE_LANDMARKS"].index("LEFT_WRIST")
    np.testing.assert_allclose(np.ma.getdata(pose.body.data)[0, 0, wrist, :2],
                               clip.keypoints[0, 4, :2] * [clip.width, clip.height], rtol=1e-6)

    assert_same_clip(read_pose_file(path), clip)


def test_holistic_clip_round_trip(tmp_path):
    from pose_format.utils.holistic import holistic_components

    from msmae.data.pose_export import write_pose_file

    clip = holistic_clip()
    path = write_pose_file(clip, tmp_path / "all.pose")
    pose, components = pose_format_components(path)
    expected = {c.name: c.points for c in holistic_components() if c.name != "POSE_WORLD_LANDMARKS"}
    assert components == expected  # pose-format's own names, points and order
    limbs = {c.name: c.limbs for c in pose.header.components}
    assert limbs == {c.name: c.limbs for c in holistic_components() if c.name in expected}

    back = read_pose_file(path, layout="holistic")
    assert back.layout == "holistic"
    assert_same_clip(back, clip)
    # The default reader picks the streams' 160 from the same file.
    assert_same_clip(read_pose_file(path), in_stored_layout(clip))


def test_real_pose_format_file_round_trip(tmp_path, shared_data):
    """A .pose file made by pose-format itself, read, written by msmae and read again: the same clip."""
    from msmae.data.pose_export import write_pose_file

    original = read_pose_file(shared_data / "pose-format-samples" / "example_full_holistic.pose",
                              layout="holistic")
    assert original.keypoint_mask.any()
    back = read_pose_file(write_pose_file(original, tmp_path / "again.pose"), layout="holistic")
    assert_same_clip(back, original)


def test_export_pose_command_writes_every_row(tmp_path):
    from msmae.data.pose_export import file_name

    rows = sample_data.sample_dataset("msl150").select(range(3))
    rows.to_parquet(str(tmp_path / "rows.parquet"))
    assert main(["export-pose", str(tmp_path / "rows.parquet"), str(tmp_path / "out")]) == 0
    files = sorted((tmp_path / "out").glob("*.pose"))
    assert len(files) == 3
    by_name = {file_name(row["clip_id"], set()): SignPose.from_example(row) for row in rows}
    assert sorted(by_name) == [path.name for path in files]  # named after the clip ids
    for path in files:
        assert_same_clip(read_pose_file(path), by_name[path.name])


def test_export_pose_names_a_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["export-pose", str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert "nowhere" in capsys.readouterr().err


def test_processor_takes_its_streams_from_either_layout():
    from msmae.processing_msmae import MSMAEPoseProcessor

    clip = holistic_clip(frames=12)
    processor = MSMAEPoseProcessor(streams=["body", "left_hand", "right_hand", "face"], num_frames=8)
    from_all = processor([clip], return_tensors="np")
    from_stored = processor([in_stored_layout(clip)], return_tensors="np")
    np.testing.assert_array_equal(from_all["pose_values"], from_stored["pose_values"])
    np.testing.assert_array_equal(from_all["keypoint_mask"], from_stored["keypoint_mask"])


def test_stored_layout_picks_the_named_landmarks():
    clip = holistic_clip(frames=6)
    stored = in_stored_layout(clip)
    np.testing.assert_array_equal(stored.keypoints[:, 0], clip.keypoints[:, 11])  # LEFT_SHOULDER
    np.testing.assert_array_equal(stored.keypoints[:, 6], clip.keypoints[:, 501])  # left hand WRIST
    np.testing.assert_array_equal(stored.keypoints[:, 48], clip.keypoints[:, 33 + 234])  # first face point
    assert len(set(HOLISTIC_TO_STORED)) == NUM_STORED_KEYPOINTS


def test_rows_of_all_landmarks_read_lazily(tmp_path):
    """Rows stored with every landmark (row_features(num_keypoints=543)) are read by the windowed loader."""
    from datasets import Dataset

    from msmae.data.schema import row_features
    from msmae.data.windows import PoseRow

    clip = holistic_clip(frames=5)
    dataset = Dataset.from_list([clip.to_example()], features=row_features(num_keypoints=NUM_HOLISTIC_KEYPOINTS))
    row = PoseRow.from_table(dataset.with_format("arrow")[:1])
    part = row.read_frames(1, 4)
    assert part.layout == "holistic"
    np.testing.assert_array_equal(part.keypoints, clip.keypoints[1:4])
    np.testing.assert_array_equal(part.keypoint_mask, clip.keypoint_mask[1:4])


@pytest.mark.slow
def test_extract_keeps_all_landmarks(sample_video, tmp_path):
    """`--keep_landmarks all` stores 543 landmarks per frame, of which the streams' 160 are the default extraction's;
    the rows export to .pose files with every landmark."""
    from msmae.data.parts import load_extracted
    from msmae.pose_io import HOLISTIC_POINT_NAMES

    outputs = {}
    for keep in ("model", "all"):
        assert main(["extract", str(sample_video), "--output_dir", str(tmp_path / keep), "--keep_landmarks", keep,
                     "--no_progress"]) == 0
        outputs[keep] = SignPose.from_example(load_extracted(tmp_path / keep)[0])
    assert outputs["all"].layout == "holistic" and outputs["model"].layout == "msmae"
    assert outputs["all"].keypoint_mask[:, :33].any()  # lower-body and face landmarks the model layout drops
    stored = in_stored_layout(outputs["all"])
    np.testing.assert_array_equal(stored.keypoint_mask, outputs["model"].keypoint_mask)
    np.testing.assert_allclose(stored.keypoints, outputs["model"].keypoints, atol=1e-6)

    assert main(["export-pose", str(tmp_path / "all"), str(tmp_path / "poses")]) == 0
    (path,) = (tmp_path / "poses").glob("*.pose")
    _, components = pose_format_components(path)
    assert sum(len(points) for points in components.values()) == len(HOLISTIC_POINT_NAMES) == 543
    assert_same_clip(read_pose_file(path, layout="holistic"), outputs["all"])

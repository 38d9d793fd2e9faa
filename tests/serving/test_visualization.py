"""Skeleton drawing (`msmae.serving.visualization`) and `msmae visualize`: files open, have the right size and frames, and
show what they should (stream colours where streams are detected, grey where tokens are masked)."""

import numpy as np
import pytest
from conftest import sample_clip_file

from msmae.keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
from msmae.pose_io import SignPose
from msmae.clips import load_pose
from msmae.serving.visualization import (
    FACE_BONES,
    HAND_BONES,
    MASKED_COLOR,
    STREAM_COLORS,
    expand_token_mask,
    render,
    render_frames,
    render_reconstruction,
    skeleton,
)

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

SLICES = stream_slices()
MODEL_STREAMS = ("body", "left_hand", "right_hand")


def _signer(frames=6, hands=True, face=True, seed=0):
    """A plausible upright signer in frame coordinates (shoulders, elbows, wrists, hands near the wrists, a face)."""
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), np.float32)
    body = np.array([[0.65, 0.45], [0.35, 0.45], [0.7, 0.65], [0.3, 0.65], [0.6, 0.5], [0.4, 0.5]])
    keypoints[:, SLICES["body"], :2] = body
    mask = np.zeros(keypoints.shape[:2], bool)
    mask[:, SLICES["body"]] = True
    if hands:
        for name, wrist in (("left_hand", body[4]), ("right_hand", body[5])):
            keypoints[:, SLICES[name], :2] = wrist + rng.normal(0, 0.03, (21, 2))
            mask[:, SLICES[name]] = True
    if face:
        keypoints[:, SLICES["face"], :2] = np.array([0.5, 0.25]) + rng.normal(0, 0.04, (112, 2))
        mask[:, SLICES["face"]] = True
    keypoints[:, :, :2] += np.linspace(0, 0.02, frames)[:, None, None]  # some movement
    keypoints[~mask] = 0
    return SignPose(keypoints, mask, fps=12.5, width=640, height=480, source="synthetic")


def _count(image, color, tolerance=12):
    rgb = np.array([int(color[i: i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(np.asarray(image)[..., :3].astype(int) - rgb).max(-1) <= tolerance).sum())


def test_skeleton_topology():
    bones, owners = skeleton(MODEL_STREAMS)
    assert len(bones) == 5 + 2 * (len(HAND_BONES) + 1)  # body, hands, and each body wrist to its hand's wrist
    left = SLICES["left_hand"]
    left_bones = bones[[o == "left_hand" for o in owners]]
    assert ((left_bones >= left.start) & (left_bones < left.stop)).sum() == 2 * len(HAND_BONES) + 1
    assert [SLICES["body"].start + 4, left.start] in left_bones.tolist()  # LEFT_WRIST - hand WRIST
    assert len(skeleton(("face",))[0]) == len(FACE_BONES)  # the face is drawn as its outline: the skeleton has a head


def test_png_shows_the_detected_streams(tmp_path):
    path = render(_signer(), tmp_path / "frame.png", height=256)
    image = Image.open(path)
    assert image.format == "PNG" and image.height == 256 and image.width % 2 == 0
    for stream in ("body", "left_hand", "right_hand", "face"):
        assert _count(image, STREAM_COLORS[stream]) > 10, stream
    no_hands = Image.open(render(_signer(hands=False), tmp_path / "no_hands.png", height=256))
    assert _count(no_hands, STREAM_COLORS["left_hand"]) == 0 and _count(no_hands, STREAM_COLORS["body"]) > 10
    only_face = Image.open(render(_signer(), tmp_path / "face.png", streams=["face"], height=256))
    assert _count(only_face, STREAM_COLORS["body"]) == 0 and _count(only_face, STREAM_COLORS["face"]) > 10


def test_gif_and_mp4_hold_every_frame(tmp_path):
    import av

    pose = _signer(frames=5)
    gif = Image.open(render(pose, tmp_path / "clip.gif", height=200))
    assert gif.format == "GIF" and gif.n_frames == 5 and gif.height == 200
    assert gif.info["duration"] == 80  # 12.5 fps
    with av.open(str(render(pose, tmp_path / "clip.mp4", height=200, fps=25))) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape[0] == 200
    # Frames differ: the signer moves.
    images = render_frames(pose, height=200)
    assert len(images) == 5 and not np.array_equal(images[0], images[-1])
    with pytest.raises(ValueError, match=".png, .gif or .mp4"):
        render(pose, tmp_path / "clip.avi")


def test_model_arrays_need_consistent_streams(tmp_path):
    pose = _signer()
    values = pose.keypoints[None, :, :48, :2]  # (1, T, 48, 2) like a processor batch
    image = Image.open(render(values, tmp_path / "arrays.png", pose.keypoint_mask[None, :, :48], height=200))
    assert _count(image, STREAM_COLORS["right_hand"]) > 10
    with pytest.raises(ValueError, match="have 160 keypoints but the array has 48"):
        render(values, tmp_path / "bad.png", streams=("body", "left_hand", "right_hand", "face"))


def test_expand_token_mask():
    token_mask = np.zeros((3, 3), int)
    token_mask[1, 1] = 1  # left hand, frames 2-3
    token_mask[0, 2] = 1  # body, frame 4 (frame 5 is padding)
    keypoints = expand_token_mask(token_mask, 2, 5, MODEL_STREAMS)
    assert keypoints.shape == (5, 48)
    expected = np.zeros((5, 48), bool)
    expected[2:4, SLICES["left_hand"]] = True
    expected[4, SLICES["body"]] = True
    np.testing.assert_array_equal(keypoints, expected)
    with pytest.raises(ValueError, match="num_streams=3"):
        expand_token_mask(np.zeros((2, 3)), 2, 5, MODEL_STREAMS)


def test_reconstruction_side_by_side(tmp_path):
    pose = _signer(frames=6)
    values, mask = pose.keypoints[:, :48, :2], pose.keypoint_mask[:, :48]
    reconstruction = np.concatenate([values, values[:1]]) + 0.05  # 7 frames: padded to whole cubelets
    nothing_masked = render_reconstruction(values, mask, np.zeros((3, 3)), 2, reconstruction, streams=MODEL_STREAMS,
                                           height=200)
    assert nothing_masked.height == 200 and nothing_masked.width > 2.5 * 200 * 0.6  # three panels
    third = nothing_masked.width // 3
    masked_panel = np.asarray(nothing_masked)[:, third: 2 * third]
    grey_without_masking = _count(masked_panel, MASKED_COLOR, tolerance=3)  # anti-aliased edges and text only
    assert _count(masked_panel, STREAM_COLORS["body"]) > 10

    all_masked = render_reconstruction(values, mask, np.ones((3, 3)), 2, reconstruction, streams=MODEL_STREAMS,
                                       frame=1, height=200)
    masked_panel = np.asarray(all_masked)[:, third: 2 * third]
    assert _count(masked_panel, MASKED_COLOR, tolerance=3) > grey_without_masking + 30
    assert _count(masked_panel, STREAM_COLORS["body"]) == 0
    assert _count(np.asarray(all_masked)[:, 2 * third:], STREAM_COLORS["body"]) > 10  # predicted body drawn

    gif = Image.open(render_reconstruction(values, mask, np.ones((3, 3)), 2, reconstruction, streams=MODEL_STREAMS,
                                           output=tmp_path / "recon.gif", height=160))
    assert gif.n_frames == 6
    with pytest.raises(ValueError, match="reconstruction must have shape"):
        render_reconstruction(values, mask, np.ones((3, 3)), 2, reconstruction[:4], streams=MODEL_STREAMS)


def test_load_pose_reads_an_extract_output_folder(tmp_path):
    from msmae.data.parts import part_path, write_part
    from msmae.data.schema import row_features

    (tmp_path / "data").mkdir()
    poses = [_signer(frames=n, seed=n) for n in (3, 4)]
    for number, pose in enumerate(poses):
        pose.source = f"clip{number}.mp4"
        write_part(part_path(tmp_path, pose.source), pose.to_example(), row_features())
    order = sorted(poses, key=lambda p: part_path(tmp_path, p.source).name)  # `load_extracted` order
    for index, pose in enumerate(order):
        clip = load_pose(tmp_path, index=index)
        assert clip.source == pose.source
        np.testing.assert_array_equal(clip.keypoints, pose.keypoints)
    with pytest.raises(ValueError, match="holds 2 extracted clips"):
        load_pose(tmp_path, index=2)


def test_visualize_command(tmp_path, capsys):
    from msmae.cli import main

    pose_file = sample_clip_file(tmp_path, "msl150/hoy/1")  # a real clip shipped with msmae, as a pose file
    output = tmp_path / "pose.gif"
    assert main(["visualize", str(pose_file), "--output", str(output), "--size", "160"]) == 0
    gif = Image.open(output)
    from msmae.clips import load_pose

    assert gif.n_frames == load_pose(pose_file).num_frames and gif.height == 160
    with pytest.raises(SystemExit) as exit_:
        main(["visualize", str(pose_file), "--output", str(tmp_path / "pose.jpg")])
    assert exit_.value.code == 2 and ".png, .gif or .mp4" in capsys.readouterr().err
    assert main(["visualize", str(tmp_path / "missing.pose"), "--output", str(output)]) == 1

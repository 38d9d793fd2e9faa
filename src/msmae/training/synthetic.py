"""Synthetic signing-like skeleton clips, generated procedurally, for running the pipeline without real data.

These are NOT sign language. They are MediaPipe-shaped clips (`SignPose`, all 160 stored keypoints, x and y
normalised to a 640x480 frame) of a stick figure whose hands move the way isolated signs do: each class is a
distinct movement of the right (dominant) hand, defined by a seeded random draw of
- where it happens (a centre between chest and face height, in shoulder widths),
- the path (a Lissajous curve: amplitude, 1-3 cycles per axis, phase),
- the handshape at start and end (per-finger curl), and
- whether the left hand mirrors the right (two-handed) or rests.
Clips of one class differ by signer (shoulder width, position in the frame), speed (clip length), size of the
movement, sensor noise, and hands MediaPipe "missed" in short spans (masked keypoints, as in real extractions).
A classifier can only tell the classes apart by learning the motion, which is what the demo needs to show that
training works; accuracy on them says nothing about real signing.

`synthetic_sign_dataset` gives labelled clips with signer ids (so splits are signer-independent);
`synthetic_pretraining_dataset` gives longer unlabelled clips, several movements in a row with pauses between.
"""

import numpy as np

from ..keypoint_layout import ALL_STREAMS, NUM_STORED_KEYPOINTS, stream_slices
from ..pose_io import SignPose
from datasets import Dataset

from ..data.loading import pose_features

FRAME_WIDTH, FRAME_HEIGHT, FPS = 640, 480, 25.0
_SLICES = stream_slices(ALL_STREAMS)
# Finger joints: 4 per finger after the wrist, fingers thumb..pinky (MediaPipe hand landmark order).
_FINGER_BASE_ANGLES = np.deg2rad([-50.0, -20.0, 0.0, 20.0, 40.0])
_FINGER_LENGTHS = np.array([0.9, 1.0, 1.1, 1.0, 0.8])


def _class_motion(label: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, 1000, label])
    return {
        "centre": np.array([rng.uniform(-0.9, 0.6), rng.uniform(-1.6, 0.4)]),  # shoulder widths from the midpoint
        "amplitude": rng.uniform(0.15, 0.55, size=2),
        "cycles": rng.integers(1, 4, size=2),
        "phase": rng.uniform(0, 2 * np.pi, size=2),
        "curl_start": rng.uniform(0, 1, size=5),
        "curl_end": rng.uniform(0, 1, size=5),
        "two_handed": bool(rng.random() < 0.4),
        "rotation": rng.uniform(-0.8, 0.8),
    }


def _hand(wrist, direction, curl, scale):
    """21 hand keypoints `(T, 21, 2)`: fingers fanned around `direction` (radians), bent by `curl` (T, 5)."""
    frames = wrist.shape[0]
    points = np.zeros((frames, 21, 2))
    points[:, 0] = wrist
    for finger in range(5):
        angle = direction + _FINGER_BASE_ANGLES[finger]
        position = wrist.copy()
        for joint in range(4):
            # Each joint bends further by the finger's curl; a curled finger folds back toward the palm.
            angle = angle + curl[:, finger] * 0.9 * (joint > 0)
            step = scale * _FINGER_LENGTHS[finger] * (0.45 if joint == 0 else 0.3)
            position = position + step * np.stack([np.cos(angle), np.sin(angle)], -1)
            points[:, 1 + 4 * finger + joint] = position
    return points


def _face(centre, scale, frames, rng):
    """112 face points `(T, 112, 2)`: an oval contour, eyes, nose and mouth around the head centre."""
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    parts = [np.stack([0.42 * np.cos(angles), 0.55 * np.sin(angles)], -1)]
    for cx in (-0.17, 0.17):  # eyes
        a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        parts.append(np.stack([cx + 0.08 * np.cos(a), -0.12 + 0.03 * np.sin(a)], -1))
    parts.append(np.stack([np.zeros(10), np.linspace(-0.1, 0.12, 10)], -1))  # nose
    a = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    parts.append(np.stack([0.16 * np.cos(a), 0.28 + 0.05 * np.sin(a)], -1))  # mouth
    template = np.concatenate(parts) * scale
    sway = 0.02 * scale * np.sin(np.linspace(0, rng.uniform(1, 3) * np.pi, frames))[:, None]
    return centre[None, None] + template[None] + np.stack([sway, 0.3 * sway], -1)


def _render(label_motions, segment_frames, signer, rng) -> SignPose:
    """One clip: the motions in `label_motions` one after another (with short rests between), by `signer`."""
    width_px, shoulder_centre = signer
    unit = width_px / FRAME_WIDTH  # shoulder width in normalised x; y is scaled by the aspect ratio below
    aspect = FRAME_WIDTH / FRAME_HEIGHT

    def to_frame(offsets):  # offsets in shoulder widths (x right, y down) -> normalised frame coordinates
        return shoulder_centre + offsets * np.array([unit, unit * aspect])

    rights, lefts, curls_r, curls_l = [], [], [], []
    rest_r, rest_l = np.array([-0.45, 1.3]), np.array([0.45, 1.3])
    for motion, frames in zip(label_motions, segment_frames):
        t = np.linspace(0, 1, frames)[:, None]
        amp = motion["amplitude"] * rng.uniform(0.85, 1.15)
        path = motion["centre"] + amp * np.sin(2 * np.pi * motion["cycles"] * t + motion["phase"])
        ease = np.clip(np.minimum(t, 1 - t) * 6, 0, 1)  # move from and back to rest at the ends
        right = rest_r + ease * (path - rest_r)
        left = (
            rest_l + ease * (path * np.array([-1, 1]) - rest_l) if motion["two_handed"] else np.repeat(rest_l[None], frames, 0)
        )
        curl = motion["curl_start"] + t * (motion["curl_end"] - motion["curl_start"])
        rights.append(right), lefts.append(left), curls_r.append(curl)
        curls_l.append(curl if motion["two_handed"] else np.full((frames, 5), 0.2))
        pause = int(rng.integers(0, 8))
        if pause:
            rights.append(np.repeat(rest_r[None], pause, 0)), lefts.append(np.repeat(rest_l[None], pause, 0))
            curls_r.append(np.full((pause, 5), 0.2)), curls_l.append(np.full((pause, 5), 0.2))
    right, left = np.concatenate(rights), np.concatenate(lefts)
    curl_r, curl_l = np.concatenate(curls_r), np.concatenate(curls_l)
    frames = len(right)

    # Stored body order: LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST. The camera
    # faces the signer, so their left side is on the image's right (larger x).
    body = np.zeros((frames, 6, 2))
    for i, (wrist, shoulder_x) in enumerate(((left, 0.5), (right, -0.5))):
        shoulder = np.array([shoulder_x, 0.0])
        elbow = (shoulder + wrist) / 2 + np.array([0.25 * np.sign(shoulder_x), 0.35])
        body[:, i], body[:, 2 + i], body[:, 4 + i] = shoulder, elbow, wrist
    direction_r = np.arctan2(right[:, 1] - body[:, 3, 1], right[:, 0] - body[:, 3, 0]) + label_motions[0]["rotation"]
    direction_l = np.arctan2(left[:, 1] - body[:, 2, 1], left[:, 0] - body[:, 2, 0])
    hand_scale = 0.22
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    xy = np.zeros((frames, NUM_STORED_KEYPOINTS, 2))
    xy[:, _SLICES["body"]] = body
    xy[:, _SLICES["left_hand"]] = _hand(left, direction_l, curl_l, hand_scale)
    xy[:, _SLICES["right_hand"]] = _hand(right, direction_r, curl_r, hand_scale)
    xy[:, _SLICES["face"]] = _face(np.array([0.0, -1.05]), 0.55, frames, rng)
    xy = to_frame(xy) + rng.normal(0, 0.002, size=xy.shape)
    keypoints[..., :2] = xy
    keypoints[..., 3] = 1.0
    mask = np.ones((frames, NUM_STORED_KEYPOINTS), dtype=bool)
    for hand in ("left_hand", "right_hand"):  # MediaPipe loses hands now and then, for a few frames at a time
        for _ in range(int(rng.poisson(frames / 60))):
            start = int(rng.integers(frames))
            mask[start : start + int(rng.integers(2, 8)), _SLICES[hand]] = False
    keypoints[~mask] = 0.0
    return SignPose(keypoints, mask, fps=FPS, width=FRAME_WIDTH, height=FRAME_HEIGHT)


def _signers(num_signers, seed):
    rng = np.random.default_rng([seed, 2000])
    return [
        (rng.uniform(110, 170), np.array([rng.uniform(0.42, 0.58), rng.uniform(0.45, 0.6)])) for _ in range(num_signers)
    ]


def synthetic_sign_clips(num_classes=8, clips_per_class=12, num_signers=4, frames=(40, 90), seed=0):
    """Labelled synthetic clips: a list of `(SignPose, label, signer)`, classes `0..num_classes-1`."""
    signers = _signers(num_signers, seed)
    clips = []
    for label in range(num_classes):
        motion = _class_motion(label, seed)
        for k in range(clips_per_class):
            rng = np.random.default_rng([seed, label, k])
            signer = k % num_signers
            length = int(rng.integers(frames[0], frames[1] + 1))
            pose = _render([motion], [length], signers[signer], rng)
            pose.source = f"synthetic://sign/{label}/{k}"
            clips.append((pose, label, signer))
    return clips


def _sign_rows(num_classes, clips_per_class, num_signers, seed):
    names = [f"motion-{label:02d}" for label in range(num_classes)]
    for pose, label, signer in synthetic_sign_clips(num_classes, clips_per_class, num_signers, seed=seed):
        yield {**pose.to_example(), "label": names[label], "signer": f"synthetic-signer-{signer}"}


def synthetic_sign_dataset(num_classes=8, clips_per_class=12, num_signers=4, seed=0, cache_dir=None):
    """`synthetic_sign_clips` as a dataset in msmae's schema with `label` (names `motion-00`, ...) and `signer`."""
    features = pose_features([f"motion-{label:02d}" for label in range(num_classes)], signer=True)
    return Dataset.from_generator(
        _sign_rows,
        features=features,
        cache_dir=cache_dir,
        gen_kwargs={"num_classes": num_classes, "clips_per_class": clips_per_class, "num_signers": num_signers, "seed": seed},
    )


def _pretraining_rows(num_clips, num_classes, num_signers, signs_per_clip, seed):
    signers = _signers(num_signers, seed + 1)
    motions = [_class_motion(label, seed + 1) for label in range(num_classes)]
    for k in range(num_clips):
        rng = np.random.default_rng([seed, 3000, k])
        count = int(rng.integers(signs_per_clip[0], signs_per_clip[1] + 1))
        chosen = [motions[i] for i in rng.integers(num_classes, size=count)]
        pose = _render(chosen, list(rng.integers(30, 80, size=count)), signers[k % num_signers], rng)
        pose.source = f"synthetic://pretraining/{k}"
        yield pose.to_example()


def synthetic_pretraining_dataset(num_clips=200, num_classes=24, num_signers=8, signs_per_clip=(3, 8), seed=0, cache_dir=None):
    """Unlabelled synthetic clips of several movements in a row (about 100-600 frames), for pretraining. Its
    movements are drawn independently of `synthetic_sign_dataset`'s classes (another seed)."""
    return Dataset.from_generator(
        _pretraining_rows,
        features=pose_features(),
        cache_dir=cache_dir,
        gen_kwargs={
            "num_clips": num_clips,
            "num_classes": num_classes,
            "num_signers": num_signers,
            "signs_per_clip": tuple(signs_per_clip),
            "seed": seed,
        },
    )

"""Reader for RWTH-PHOENIX-Weather 2014 T skeleton files (`.skels`, the Progressive Transformers layout).

A `{split}.skels` file holds one sentence per line: whitespace-separated floats, 151 per frame, namely 50 joints x
(x, y, z) (OpenPose 2D keypoints lifted to 3D, divided by 3) followed by a frame counter `i / num_frames`. Lines
of `{split}.text`, `{split}.gloss` and `{split}.files` give each sentence's German text, glosses and name.

Joints: 0 head, 1 neck (the origin, always 0), 2-4 and 5-7 the two shoulder/elbow/wrist chains, 8-28 the hand
whose wrist coincides with joint 7, 29-49 the hand whose wrist coincides with joint 4 (checked on the sample: the
first point of each block lies on average within 0.07 of that wrist and 0.30 or more from the other). Hands use
OpenPose's 21-point hand order, which is MediaPipe's hand landmark order.

Which side is the signer's left. The x axis points to the right of the image and y down (the head is above the
neck), z towards the camera (the hands have z > 0). Chain 2-4 sits at x > 0 (image right) and chain 5-7 at x < 0.
Hand 8-28, on chain 5-7, is the dominant hand: in the 15 sample sentences it travels farther in 12 and is held
higher (on average) in 14, as expected of right-handed signers. So chain 5-7 and hand 8-28 are the signer's right,
seen on the image left, and chain 2-4 with hand 29-49 the signer's left: exactly the geometry MediaPipe reports on an
unmirrored video, where the LEFT_* landmarks are on the image right. (The file thus follows OpenPose's joint names
as if the video had been mirrored; using those names literally would present every signer as left-handed.) No
coordinate is flipped.

Output: a `SignPose` with the body stream (LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST,
RIGHT_WRIST = joints 2, 5, 3, 6, 4, 7), both hands, and the face stream masked (the file has no face). x and y
keep the file's isotropic unit (the neck-to-shoulder distance is about 0.17), shifted by 0.5 so that the neck sits at
(0.5, 0.5); `width = height = 0` because there is no frame to correct the aspect ratio for. z is kept; visibility is
1 for keypoints present. A joint that is exactly (0, 0, 0) is treated as undetected.
"""

import csv
from pathlib import Path

import numpy as np

from ...keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
from ...pose_io import SignPose
from .phoenix14t import FPS as PHOENIX_FPS
NUM_JOINTS = 50
VALUES_PER_FRAME = NUM_JOINTS * 3 + 1

# Body stream order (LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST) as joints of the
# file: the signer's left chain is 2-4, the right chain 5-7 (see the module docstring).
BODY_JOINTS = (2, 5, 3, 6, 4, 7)
LEFT_HAND_JOINTS = tuple(range(29, 50))
RIGHT_HAND_JOINTS = tuple(range(8, 29))
SPLITS = ("train", "dev", "test")

_SLICES = stream_slices()


def parse_skels_line(line: str, source: str = "") -> np.ndarray:
    """One `.skels` line as joints `(num_frames, 50, 3)` float32 (the frame counter is checked and dropped)."""
    values = np.array(line.split(), dtype=np.float64)
    if values.size == 0 or values.size % VALUES_PER_FRAME:
        raise ValueError(
            f"{source or 'line'}: {values.size} values is not a multiple of {VALUES_PER_FRAME} "
            "(50 joints x 3 coordinates + a frame counter per frame); is this a PHOENIX14T .skels file?"
        )
    frames = values.reshape(-1, VALUES_PER_FRAME)
    counter = frames[:, -1]
    if counter[0] != 0.0 or np.any(np.diff(counter) <= 0):
        raise ValueError(
            f"{source or 'line'}: the last value of each frame must be an increasing frame counter starting at 0; "
            "the file does not have the .skels layout."
        )
    return frames[:, :-1].reshape(-1, NUM_JOINTS, 3).astype(np.float32)


def read_skels(path) -> list[np.ndarray]:
    """All sequences of a `.skels` file, each `(num_frames, 50, 3)`."""
    path = Path(path)
    with path.open() as handle:
        return [
            parse_skels_line(line, f"{path}:{number}")
            for number, line in enumerate(handle, start=1)
            if line.strip()
        ]


def skeleton_to_sign_pose(joints, fps: float = PHOENIX_FPS, source: str = "", metadata=None) -> SignPose:
    """Map one sequence of 50 joints `(num_frames, 50, 3)` to a `SignPose` (see the module docstring)."""
    joints = np.asarray(joints, dtype=np.float32)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"PHOENIX joints must have shape (frames, {NUM_JOINTS}, 3), got {joints.shape} ({source}).")
    frames = joints.shape[0]
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    mask = np.zeros((frames, NUM_STORED_KEYPOINTS), dtype=bool)
    for stream, index in (("body", BODY_JOINTS), ("left_hand", LEFT_HAND_JOINTS), ("right_hand", RIGHT_HAND_JOINTS)):
        part = joints[:, list(index)]
        present = np.any(part != 0.0, axis=-1)
        target = _SLICES[stream]
        keypoints[:, target, 0] = part[..., 0] + 0.5
        keypoints[:, target, 1] = part[..., 1] + 0.5
        keypoints[:, target, 2] = part[..., 2]
        keypoints[:, target, 3] = 1.0
        keypoints[:, target] *= present[..., None]
        mask[:, target] = present
    return SignPose(keypoints, mask, fps=fps, width=0, height=0, source=source, metadata=dict(metadata or {}))


def _read_lines(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def load_phoenix_split(directory, split: str) -> list[SignPose]:
    """The sentences of `{directory}/{split}.skels` as `SignPose`s, with `text`, `gloss` and `name` in `metadata`."""
    directory = Path(directory)
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
    skels = directory / f"{split}.skels"
    if not skels.is_file():
        raise FileNotFoundError(f"{skels} not found: `directory` must hold PHOENIX14T {{train,dev,test}}.skels files.")
    sequences = read_skels(skels)
    columns = {}
    for column in ("text", "gloss", "files"):
        path = directory / f"{split}.{column}"
        if path.is_file():
            lines = _read_lines(path)
            if len(lines) != len(sequences):
                raise ValueError(f"{path} has {len(lines)} lines but {skels} has {len(sequences)} sequences.")
            columns[column] = lines
    poses = []
    for i, joints in enumerate(sequences):
        name = columns["files"][i] if "files" in columns else f"{split}/{i}"
        metadata = {"name": name, "text": columns.get("text", [None] * len(sequences))[i],
                    "gloss": columns.get("gloss", [None] * len(sequences))[i]}
        poses.append(skeleton_to_sign_pose(joints, source=f"{skels}:{name}", metadata=metadata))
    return poses


def phoenix_dataset(directory, split: str):
    """A `datasets.Dataset` of one split in msmae's pose dataset schema (`msmae.data.loading.pose_features`, the
    rows of `SignPose.to_example`) plus `text`, `gloss` and `name`."""
    from datasets import Dataset, Value

    from ..loading import pose_features

    features = pose_features(text=True)
    features["gloss"] = Value("string")
    features["name"] = Value("string")
    rows = [{**pose.to_example(), **pose.metadata} for pose in load_phoenix_split(directory, split)]
    return Dataset.from_list(rows, features=features)


def phoenix_sentences(directory, splits=SPLITS) -> list[str]:
    """German sentences of all PHOENIX-2014-T splits from `{directory}/metadata_all/phoenix14t_{split}.tsv`
    (8,257 in all), e.g. to fit a target vocabulary."""
    sentences = []
    for split in splits:
        path = Path(directory) / "metadata_all" / f"phoenix14t_{split}.tsv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: expected the PHOENIX14T metadata_all/ folder.")
        with path.open(encoding="utf-8", newline="") as handle:
            sentences += [row["text"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return sentences


__all__ = [
    "BODY_JOINTS",
    "LEFT_HAND_JOINTS",
    "RIGHT_HAND_JOINTS",
    "load_phoenix_split",
    "parse_skels_line",
    "phoenix_dataset",
    "phoenix_sentences",
    "read_skels",
    "skeleton_to_sign_pose",
]

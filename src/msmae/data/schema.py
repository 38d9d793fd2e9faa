"""The stored row of a pose dataset: what `msmae extract` and `msmae prepare` write and every loader reads.

    keypoints (frames, 160, 4) float32, keypoint_mask (frames, 160) bool (543 instead of 160: every Holistic landmark,
    `msmae extract --keep_landmarks all`), fps, width, height, num_frames,
    source: the video, frame folder or pose file the clip comes from,
    clip_id: the clip's key within its dataset (the source for a whole video),
    start_frame, end_frame: the clip's frames in the source, end exclusive (0 and num_frames for a whole video).

Datasets add their own columns (label, text, signer, split, ...) after these. The first seven are a `SignPose`
(`pose_io.POSE_COLUMNS`, `SignPose.to_example` / `from_example`).
"""

from ..keypoint_layout import KEYPOINT_LAYOUTS, NUM_STORED_KEYPOINTS
from ..pose_io import POSE_COLUMNS

CLIP_COLUMNS = ("clip_id", "start_frame", "end_frame")
ROW_COLUMNS = POSE_COLUMNS + CLIP_COLUMNS


def row_features(extra_columns=None, num_keypoints=NUM_STORED_KEYPOINTS):
    """`datasets.Features` of the stored row (`ROW_COLUMNS`) followed by `extra_columns` ({name: feature}).

    `num_keypoints` is the stored layout: 160 (the streams; the default) or 543 (every Holistic landmark, `msmae
    extract --keep_landmarks all`); the row's keypoint shape is what records it."""
    from datasets import Array2D, Array3D, Features, Value

    if num_keypoints not in KEYPOINT_LAYOUTS.values():
        raise ValueError(f"num_keypoints must be one of {sorted(KEYPOINT_LAYOUTS.values())}, got {num_keypoints}.")

    clash = sorted(set(extra_columns or {}) & set(ROW_COLUMNS))
    if clash:
        raise ValueError(f"Columns {clash} are part of the stored pose row ({', '.join(ROW_COLUMNS)}); rename them.")
    return Features({
        "keypoints": Array3D(shape=(None, num_keypoints, 4), dtype="float32"),
        "keypoint_mask": Array2D(shape=(None, num_keypoints), dtype="bool"),
        "fps": Value("float32"),
        "width": Value("int32"),
        "height": Value("int32"),
        "num_frames": Value("int32"),
        "source": Value("string"),
        "clip_id": Value("string"),
        "start_frame": Value("int32"),
        "end_frame": Value("int32"),
        **(extra_columns or {}),
    })


__all__ = ["CLIP_COLUMNS", "ROW_COLUMNS", "row_features"]

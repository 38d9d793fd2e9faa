"""Kaggle "asl-signs" (Google - Isolated Sign Language Recognition): 250 ASL signs by 21 signers, published as
MediaPipe Holistic landmarks, not video. `msmae prepare asl_signs ROOT` writes rows straight from them.

Layout (checked against the competition's data description as quoted in public repositories, e.g.
quynh2196/ASL-Sign-Language-Recognition `data/README.md`, and against competitors' readers such as
Kartik14/Kaggle-Isolated-Sign-Language-Recognition `constants.py`: 543 rows per frame, face 0-467, left_hand,
pose 0-32, right_hand):
- `train.csv`: `path, participant_id, sequence_id, sign`; `path` is `train_landmark_files/<participant_id>/
  <sequence_id>.parquet`, relative to ROOT.
- `sign_to_prediction_index_map.json`: `{sign: class index}`; the class order. When absent the signs are sorted by
  name, and the card says so.
- each Parquet file, long format: `frame, row_id, type, landmark_index, x, y, z`, `type` one of `face`,
  `left_hand`, `pose`, `right_hand`; NaN where MediaPipe found nothing. Read with pyarrow (no pickle).

Mapping: `left_hand` to the left-hand stream and `right_hand` to the right-hand one (MediaPipe's own naming, as
published; the repository's convention, see `keypoint_layout`), pose 11-16 to the body, the 112 face-mesh indices of
`keypoint_layout.FACE_MESH_INDICES` to the face. A NaN x or y is "not detected" (mask False, value 0); a NaN z alone
is stored as 0. Visibility is not published: 0. x and y stay normalised as published; the frame size is not
published, so `width = height = 0`, which the processor's shoulder normalisation reads as "unknown aspect" and
leaves x and y unscaled (x in units of the frame width, y of its height). The frame rate is not published either:
30 fps is recorded unless `fps` says otherwise (it only matters to time-based windows).

Frames: `frame` can start at any number and skip numbers. Rows keep the published frames in order from the first
to the last published frame; a skipped number becomes a frame with nothing detected (all masked), so that frame
positions stay proportional to time. `start_frame`/`end_frame` are the first published frame and the last + 1.
A (frame, type, landmark_index) given twice, an unknown `type` or an index outside its part raise `CorpusError`
naming the file.

Columns: `label` (the sign, `ClassLabel` in the map's order), `signer` (participant_id), `sequence_id`,
`keypoint_source` ("mediapipe_holistic", as published), and `split` with `split_by`. The competition's test is
hidden: everything is in `train`, with no `split` column, so that the recipes' own `split_dataset` draws whole
signers; `split_by="signer"` makes train/validation/test sharing no signer (`msmae.data.corpora.splits`).
"""

import json
from pathlib import Path

import numpy as np

from ...keypoint_layout import (BODY_POSE_INDICES, FACE_MESH_INDICES, NUM_FACE_LANDMARKS, NUM_HAND_LANDMARKS,
                                NUM_POSE_LANDMARKS, NUM_STORED_KEYPOINTS, stream_slices)
from ...pose_io import SignPose
from .common import CorpusError, CorpusIndex, clip_source, read_table, require_values
from .splits import apply_split

DEFAULT_FPS = 30.0
MEDIAPIPE_SOURCE = "mediapipe_holistic"
COLUMNS = ("path", "participant_id", "sequence_id", "sign")
LONG_COLUMNS = ("frame", "type", "landmark_index", "x", "y", "z")
# Landmarks per published part: MediaPipe's 468 face points (478 when iris points are refined).
PART_SIZES = {"face": NUM_FACE_LANDMARKS + 10, "left_hand": NUM_HAND_LANDMARKS, "pose": NUM_POSE_LANDMARKS,
              "right_hand": NUM_HAND_LANDMARKS}


def _stored_positions() -> dict:
    """{part: array mapping a published landmark index to its stored keypoint (-1: not kept)}."""
    slices = stream_slices()
    kept = {"pose": (slices["body"], BODY_POSE_INDICES),
            "left_hand": (slices["left_hand"], range(NUM_HAND_LANDMARKS)),
            "right_hand": (slices["right_hand"], range(NUM_HAND_LANDMARKS)),
            "face": (slices["face"], FACE_MESH_INDICES)}
    table = {}
    for part, (where, indices) in kept.items():
        lut = np.full(PART_SIZES[part], -1, dtype=np.int64)
        lut[list(indices)] = np.arange(where.start, where.stop)
        table[part] = lut
    return table


STORED_POSITION = _stored_positions()


def frames_to_pose(frame_numbers, coords, *, where, fps, source, metadata=None) -> SignPose:
    """A `SignPose` from published frames: `frame_numbers (R,)` unique ints and `coords (R, 160, 3)` (x, y, z in
    stored order, NaN where nothing was detected). Frames run from the first to the last number; skipped numbers
    are frames with nothing detected."""
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    if frame_numbers.size == 0:
        raise CorpusError(f"{where}: no frames.")
    order = np.argsort(frame_numbers, kind="stable")
    frame_numbers, coords = frame_numbers[order], np.asarray(coords)[order]
    if np.any(np.diff(frame_numbers) == 0):
        raise CorpusError(f"{where}: frame {int(frame_numbers[np.diff(frame_numbers) == 0][0])} appears twice; "
                          "the file is damaged or not in the published layout.")
    first = int(frame_numbers[0])
    count = int(frame_numbers[-1]) - first + 1
    keypoints = np.zeros((count, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    mask = np.zeros((count, NUM_STORED_KEYPOINTS), dtype=bool)
    values = coords.astype(np.float32)  # the published values to float32, unchanged otherwise
    present = np.isfinite(values[..., 0]) & np.isfinite(values[..., 1])
    values = np.where(np.isfinite(values) & present[..., None], values, np.float32(0.0))
    rows = frame_numbers - first
    keypoints[rows, :, :3] = values
    mask[rows] = present
    metadata = {**(metadata or {}), "start_frame": first, "end_frame": first + count}
    return SignPose(keypoints, mask, fps=fps, width=0, height=0, source=source, metadata=metadata)


def read_long_landmarks(path, *, fps=DEFAULT_FPS, metadata=None) -> SignPose:
    """One asl-signs landmark file (long format) as a `SignPose` (see the module docstring)."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several kinds for a damaged file
        raise CorpusError(f"{path}: not a readable Parquet file ({error}); download it again.") from None
    absent = [name for name in LONG_COLUMNS if name not in table.column_names]
    if absent:
        raise CorpusError(f"{path}: columns {absent} missing (has {table.column_names}); expected the asl-signs "
                          f"long format {list(LONG_COLUMNS)}.")
    import pyarrow.compute as pc

    frame = table.column("frame").to_numpy(zero_copy_only=False).astype(np.int64)
    part = table.column("type")
    index = table.column("landmark_index").to_numpy(zero_copy_only=False).astype(np.int64)
    xyz = np.stack([table.column(axis).to_numpy(zero_copy_only=False) for axis in "xyz"], axis=-1)
    unknown = sorted(set(pc.unique(part).to_pylist()) - set(PART_SIZES), key=str)
    if unknown:
        raise CorpusError(f"{path}: unknown landmark type {unknown[0]!r} (expected {sorted(PART_SIZES)}).")
    frames, inverse = np.unique(frame, return_inverse=True)
    coords = np.full((len(frames), NUM_STORED_KEYPOINTS, 3), np.nan, dtype=xyz.dtype)
    seen = np.zeros((len(frames), NUM_STORED_KEYPOINTS), dtype=bool)
    for name, lut in STORED_POSITION.items():
        rows = np.flatnonzero(pc.equal(part, name).to_numpy(zero_copy_only=False))
        if rows.size == 0:
            continue
        bad = (index[rows] < 0) | (index[rows] >= lut.size)
        if bad.any():
            row = int(rows[bad][0])
            raise CorpusError(f"{path}, row {row}: {name} landmark_index {int(index[row])} outside 0-{lut.size - 1}.")
        stored = lut[index[rows]]
        keep = stored >= 0
        rows, stored = rows[keep], stored[keep]
        target = (inverse[rows], stored)
        keys = target[0] * NUM_STORED_KEYPOINTS + stored
        if seen[target].any() or np.unique(keys).size != keys.size:
            raise CorpusError(f"{path}: a {name} landmark appears twice in one frame; the file is damaged or not in "
                              "the published layout.")
        seen[target] = True
        coords[target] = xyz[rows]
    return frames_to_pose(frames, coords, where=str(path), fps=fps, source=str(path), metadata=metadata)


def read_class_map(path, key_name="sign") -> list[str]:
    """Names in class order from a `{name: index}` JSON map whose indices run 0, 1, 2, ..."""
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise CorpusError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, int) for v in mapping.values()):
        raise CorpusError(f"{path}: expected a JSON object of {{{key_name}: index}}.")
    names = sorted(mapping, key=mapping.get)
    if sorted(mapping.values()) != list(range(len(mapping))):
        raise CorpusError(f"{path}: the indices must run 0-{len(mapping) - 1} once each.")
    return names


def _load(clip):
    return read_long_landmarks(clip.path, fps=clip.fps or DEFAULT_FPS, metadata={"clip_id": clip.clip_id})


def read_asl_signs(root, *, fps=None, split_by=None, seed=0) -> CorpusIndex:
    """Index Kaggle asl-signs under `root` (the folder holding `train.csv`).

    Args:
        fps: frame rate to record (not published; default 30).
        split_by: None (everything in `train`, as published) or "signer" (train/validation/test sharing no signer,
            `msmae.data.corpora.splits`).
        seed: the seed of the signer-disjoint split.
    """
    root = Path(root)
    csv_path = root / "train.csv"
    index = CorpusIndex("asl_signs", {"train": []})
    index.load_pose = _load
    index.keypoint_source = MEDIAPIPE_SOURCE
    rows = read_table(csv_path, delimiter=",", required=COLUMNS, where="asl-signs train.csv")
    map_path = root / "sign_to_prediction_index_map.json"
    signs = [row["sign"] for _, row in rows]
    if map_path.is_file():
        index.label_names = read_class_map(map_path)
        index.notes.append(f"class order from {map_path.name}")
        unknown = sorted(set(signs) - set(index.label_names))
        if unknown:
            line = next(line for line, row in rows if row["sign"] == unknown[0])
            raise CorpusError(f"{csv_path}, line {line}: sign {unknown[0]!r} is not in {map_path} ({len(unknown)} "
                              "such signs); is the map from the same release?")
    else:
        index.label_names = sorted(set(signs))
        index.notes.append("sign_to_prediction_index_map.json absent: classes in sorted sign-name order, which may "
                           "differ from the competition's class indices")
    index.notes.append(f"frame rate not published: {fps or DEFAULT_FPS} recorded; frame size not published "
                       "(width = height = 0)")
    for line, row in rows:
        where = f"{csv_path}, line {line}"
        require_values(row, COLUMNS, where)
        path = root / row["path"]
        if not path.is_file():
            index.missing.append(str(path))
            continue
        columns = {"label": row["sign"], "signer": row["participant_id"], "sequence_id": row["sequence_id"],
                   "keypoint_source": MEDIAPIPE_SOURCE}
        index.splits["train"].append(clip_source(where, path, clip_id=row["sequence_id"], fps=fps or DEFAULT_FPS,
                                                 columns=columns))
    return apply_split(index, split_by, seed)

"""Kaggle "asl-fingerspelling" (Google - American Sign Language Fingerspelling Recognition): phrases
fingerspelled by about 100 signers, published as MediaPipe Holistic landmarks. `msmae prepare asl_fingerspelling
ROOT` writes one row per sequence with its phrase in `text`, so the translation recipe trains on it unchanged.

Layout (checked against the competition's data description and competitors' readers quoted in public
repositories, which read `train.csv`/`supplemental_metadata.csv` for `sequence_id, phrase`,
`character_to_prediction_index.json`, and columns named `x_left_hand_{i}`, `y_...`, `z_...` from the landmark
files):
- `train.csv` and `supplemental_metadata.csv`: `path, file_id, sequence_id, participant_id, phrase`; `path` is
  `train_landmarks/<file_id>.parquet` (`supplemental_landmarks/...`), relative to ROOT.
- each landmark file is wide: many sequences, one row per frame, the index `sequence_id`, a `frame` column and
  `{x,y,z}_{face,left_hand,pose,right_hand}_{i}` columns; NaN where MediaPipe found nothing.
- `character_to_prediction_index.json`: `{character: index}`, the competition's character set; the card says how
  many phrases use characters outside it (they are kept: `text` is the phrase as published).

Keypoints map as in `asl_signs` (same MediaPipe Holistic parts; NaN = not detected; frames from the first to the
last published `frame`, skipped numbers empty; width = height = 0; 30 fps recorded unless `fps` is given). Only the
columns of the kept keypoints are read, one file at a time, each file once when its sequences are in file order
(as the publishers' CSVs are).

Splits: the competition's test is hidden, so every sequence, from train.csv and from supplemental_metadata.csv
(when present), is in `train`, with `subset` saying which file listed it ("train" or "supplemental") and no `split`
column: the translation recipe then holds out whole signers itself (`split_dataset`, `--validation_size`).
`split_by="signer"` makes train/validation/test sharing no signer instead (and a `split` column). Columns: `text`
(phrase), `signer` (participant_id), `sequence_id`, `file_id`, `subset`, `keypoint_source`.
"""

import json
from pathlib import Path

import numpy as np

from ...keypoint_layout import NUM_STORED_KEYPOINTS
from .asl_signs import DEFAULT_FPS, MEDIAPIPE_SOURCE, STORED_POSITION, frames_to_pose
from .common import CorpusError, CorpusIndex, clip_source, read_table, require_values
from .splits import apply_split

COLUMNS = ("path", "file_id", "sequence_id", "participant_id", "phrase")
METADATA = {"train": "train.csv", "supplemental": "supplemental_metadata.csv"}
CHARACTER_MAP = "character_to_prediction_index.json"


def wide_columns() -> tuple[list[str], np.ndarray]:
    """The wide-format columns holding the kept keypoints, and the stored keypoint of each (x, y, z per point)."""
    names, stored = [], []
    for part, lut in STORED_POSITION.items():
        for landmark in np.flatnonzero(lut >= 0):
            names.append(f"{part}_{landmark}")
            stored.append(lut[landmark])
    return names, np.asarray(stored)


POINTS, POINT_STORED = wide_columns()


def read_wide_landmarks(path) -> dict:
    """{sequence_id (text): (frame numbers, coords (R, 160, 3) with NaN where nothing was detected)} of one
    wide-format landmark file."""
    import pyarrow.parquet as pq

    path = Path(path)
    wanted = ["sequence_id", "frame"] + [f"{axis}_{point}" for axis in "xyz" for point in POINTS]
    try:
        schema = pq.read_schema(path)
    except Exception as error:
        raise CorpusError(f"{path}: not a readable Parquet file ({error}); download it again.") from None
    absent = [name for name in wanted if name not in schema.names]
    if absent:
        raise CorpusError(f"{path}: {len(absent)} columns missing, e.g. {absent[:3]}; expected the asl-fingerspelling "
                          "wide format (sequence_id, frame, x_face_0 ... z_right_hand_20).")
    table = pq.read_table(path, columns=wanted)
    sequences = table.column("sequence_id").to_numpy(zero_copy_only=False)
    frames = table.column("frame").to_numpy(zero_copy_only=False).astype(np.int64)
    # float32 at once: a file holds ~10^5 frames, and the stored rows are float32 anyway (rounded once either way).
    values = np.full((table.num_rows, NUM_STORED_KEYPOINTS, 3), np.nan, dtype=np.float32)
    for a, axis in enumerate("xyz"):
        for point, stored in zip(POINTS, POINT_STORED):
            values[:, stored, a] = table.column(f"{axis}_{point}").to_numpy(zero_copy_only=False)
    order = np.argsort(sequences, kind="stable")  # each sequence's rows together, in file order
    keys, starts = np.unique(sequences[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    return {str(key): (frames[order[start:stop]], values[order[start:stop]])
            for key, start, stop in zip(keys, starts, bounds)}


def sequence_ids(path) -> set:
    """The sequence ids a wide-format file holds (only that column is read)."""
    import pyarrow.parquet as pq

    try:
        return {str(v) for v in pq.read_table(path, columns=["sequence_id"]).column("sequence_id").to_pylist()}
    except Exception as error:
        raise CorpusError(f"{path}: no readable sequence_id column ({error}); expected the asl-fingerspelling "
                          "wide format.") from None


class _Loader:
    """`load_pose` of the index: keeps the last file read, so a file's sequences in a row cost one read."""

    def __init__(self):
        self.path, self.sequences = None, None

    def __call__(self, clip):
        path = clip.path
        if path != self.path:
            self.path, self.sequences = path, read_wide_landmarks(path)
        sequence = clip.columns["sequence_id"]
        frames, coords = self.sequences[sequence]
        return frames_to_pose(frames, coords, where=f"{path}, sequence_id {sequence}", fps=clip.fps or DEFAULT_FPS,
                              source=path, metadata={"clip_id": clip.clip_id})


def read_asl_fingerspelling(root, *, fps=None, split_by=None, seed=0) -> CorpusIndex:
    """Index Kaggle asl-fingerspelling under `root` (the folder holding `train.csv`).

    Args:
        fps: frame rate to record (not published; default 30).
        split_by: None (everything in `train`) or "signer" (train/validation/test sharing no signer).
        seed: the seed of the signer-disjoint split.
    """
    root = Path(root)
    present = {split: root / name for split, name in METADATA.items() if (root / name).is_file()}
    if "train" not in present:
        raise CorpusError(f"asl-fingerspelling train.csv not found in {root}; ROOT is the folder the competition's "
                          "download unpacks to.")
    index = CorpusIndex("asl_fingerspelling", {"train": []})
    index.load_pose = _Loader()
    index.keypoint_source = MEDIAPIPE_SOURCE
    characters = None
    if (root / CHARACTER_MAP).is_file():
        try:
            characters = set(json.loads((root / CHARACTER_MAP).read_text(encoding="utf-8")))
        except ValueError as error:
            raise CorpusError(f"{root / CHARACTER_MAP}: not valid JSON ({error}).") from None
    else:
        index.notes.append(f"{CHARACTER_MAP} absent: phrases not checked against the competition's characters")
    outside, seen, files = 0, {}, {}
    for subset, csv_path in present.items():
        index.notes.append(f"read {csv_path.name}")
        for line, row in read_table(csv_path, delimiter=",", required=COLUMNS, where=f"asl-fingerspelling "
                                    f"{csv_path.name}"):
            where = f"{csv_path}, line {line}"
            require_values(row, ("path", "sequence_id", "participant_id"), where)
            sequence = row["sequence_id"]
            if sequence in seen:
                raise CorpusError(f"{where}: sequence_id {sequence} already on {seen[sequence]}.")
            seen[sequence] = where
            path = root / row["path"]
            if path not in files:
                files[path] = sequence_ids(path) if path.is_file() else set()
            if sequence not in files[path]:
                index.missing.append(f"{path}#sequence_id={sequence}" if path.is_file() else str(path))
                continue
            if characters is not None and set(row["phrase"]) - characters:
                outside += 1
            columns = {"text": row["phrase"], "signer": row["participant_id"], "sequence_id": sequence,
                       "file_id": row["file_id"], "subset": subset,
                       "keypoint_source": MEDIAPIPE_SOURCE}
            index.splits["train"].append(clip_source(where, path, clip_id=sequence, fps=fps or DEFAULT_FPS,
                                                   columns=columns))
    if characters is not None:
        index.notes.append(f"{outside} phrases use characters outside {CHARACTER_MAP} (kept as published)")
    index.notes.append(f"frame rate not published: {fps or DEFAULT_FPS} recorded; frame size not published "
                       "(width = height = 0)")
    return apply_split(index, split_by, seed)

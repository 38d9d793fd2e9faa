"""What every corpus reader shares: the index it returns, its errors, and small file helpers.

Decisions that hold for every reader:
- Split names follow `datasets` (and `msmae.data.loading`): an official `val` or `dev` split is called
  `validation`; `train` and `test` keep their names. Every split the corpus defines is present, even when empty.
- A source video (or frame folder) that the annotations name but that is not on disk is listed in
  `CorpusIndex.missing` and left out of its split; it is never an error (most WLASL users lack dead-link videos).
- A malformed annotation row (wrong number of fields, a value that is not a number where one is needed, an unknown
  split) raises `CorpusError` naming the file and the line: the publishers' files are well-formed, so such a row
  means a wrong or damaged file, which no count at the end would explain.
"""

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...pose_io import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..sources import ClipSource

SPLIT_ALIASES = {"train": "train", "val": "validation", "dev": "validation", "validation": "validation",
                 "test": "test"}


class CorpusError(ValueError):
    """An annotation file is missing or malformed; the message names the file (and line) and what to do."""


@dataclass
class CorpusIndex:
    """What a corpus reader found: the clips of each official split, the class names and the missing sources.

    Attributes:
        name: the corpus (`wlasl`, `phoenix14t`, ...).
        splits: split name -> clips (`ClipSource`s whose `columns` hold `split`, `label`, `text`, `signer`, ...),
            in the corpus's split order; a split with no clips is an empty list.
        label_names: class names in the official class order (index i is class i), or None for corpora without
            classes (translation, pretraining).
        missing: for each clip left out, its source file (video or frame folder) that is absent, in annotation
            order (a raw video several clips come from is listed once per clip; see `missing_files`).
        notes: what the reader chose that a user should know (e.g. which annotation file it read).
        load_pose: for corpora published as keypoints (no video), a function `ClipSource -> SignPose` that reads
            one clip; `prepare` then writes its rows directly instead of running MediaPipe.
        keypoint_source: what made the keypoints ("mediapipe_holistic", "openpose_body25"), for the card.
        split_note: how the splits were made when they are not the publisher's (signer-disjoint, seed).
    """

    name: str
    splits: dict
    label_names: list | None = None
    missing: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    load_pose: object = None
    keypoint_source: str = "mediapipe_holistic"
    split_note: str | None = None

    @property
    def num_clips(self) -> int:
        return sum(len(clips) for clips in self.splits.values())

    @property
    def missing_files(self) -> list[str]:
        return list(dict.fromkeys(self.missing))

    def clips(self) -> list[ClipSource]:
        return [clip for clips in self.splits.values() for clip in clips]


def split_name(value, where) -> str:
    """The `datasets` name of an official split (`val`/`dev` -> `validation`)."""
    name = SPLIT_ALIASES.get(str(value).strip().lower())
    if name is None:
        raise CorpusError(f"{where}: unknown split {value!r} (expected one of {sorted(SPLIT_ALIASES)}).")
    return name


def read_table(path, *, delimiter, required, where=None) -> list[tuple[int, dict]]:
    """Rows of a delimited text file with a header, as (line number, {column: stripped value}).

    Raises `CorpusError` if the file is absent, a `required` column is missing, or a row has more or fewer fields
    than the header."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{where or 'annotation file'} not found: {path}")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter != "," else
                            csv.QUOTE_MINIMAL)
        try:
            header = [column.strip() for column in next(reader)]
        except StopIteration:
            raise CorpusError(f"{path} is empty; expected a header with columns {list(required)}.") from None
        absent = [column for column in required if column not in header]
        if absent:
            raise CorpusError(f"{path}: columns {absent} not in the header {header}; is this the right file "
                              f"(separator {delimiter!r})?")
        rows = []
        for values in reader:
            line = reader.line_num
            if not values or all(not value.strip() for value in values):
                continue
            if len(values) != len(header):
                raise CorpusError(f"{path}, line {line}: {len(values)} fields where the header has {len(header)} "
                                  f"(separator {delimiter!r}).")
            rows.append((line, {key: value.strip() for key, value in zip(header, values)}))
    return rows


def to_number(value, kind, where):
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise CorpusError(f"{where}: {value!r} is not a{'n integer' if kind is int else ' number'}.") from None


def first_existing(candidates, what) -> Path:
    """The first of `candidates` that exists, else a `CorpusError` listing where it was looked for."""
    candidates = [Path(c) for c in candidates]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = "\n  ".join(str(c) for c in candidates)
    raise CorpusError(f"{what} not found; looked for:\n  {looked}")


def files_by_stem(folder, suffixes=VIDEO_SUFFIXES) -> dict[str, Path]:
    """{file name without suffix: path} of the files below `folder` with one of `suffixes` (the first in sorted
    order wins when two share a name)."""
    found = {}
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        for name in sorted(names):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in suffixes:
                found.setdefault(stem, Path(directory) / name)
    return found


def has_frames(folder) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def read_class_list(path) -> list[str]:
    """Class names in order from a text file: one name per line, or `index<TAB>name` lines (WLASL's
    `wlasl_class_list.txt`; indices must run 0, 1, 2, ...). Blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"class list not found: {path}")
    names = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        if "\t" in line:
            index, name = line.split("\t", 1)
            if to_number(index.strip(), int, f"{path}, line {number}") != len(names):
                raise CorpusError(f"{path}, line {number}: index {index.strip()} out of order (expected "
                                  f"{len(names)}).")
            line = name
        names.append(line.strip())
    if len(set(names)) != len(names):
        raise CorpusError(f"{path} names some classes twice.")
    return names


def ordered_labels(labels, class_list=None, where="") -> list[str]:
    """Class names in order: `class_list` (a file, see `read_class_list`) when given, which must name every label
    seen; otherwise the labels in order of first appearance."""
    if class_list is not None:
        names = read_class_list(class_list)
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise CorpusError(f"{where}: labels {unknown[:5]} ({len(unknown)} in all) are not in the class list "
                              f"{class_list}.")
        return names
    return list(dict.fromkeys(labels))


def require_values(row, columns, where):
    """Raise `CorpusError` naming `where` if a row leaves one of `columns` empty."""
    empty = [column for column in columns if not row.get(column)]
    if empty:
        raise CorpusError(f"{where}: no value for {empty}.")


def clip_source(where, path, **fields) -> ClipSource:
    """A `ClipSource`, whose own checks (an empty or negative range, a reserved column) raise `CorpusError`
    naming `where`."""
    try:
        return ClipSource(str(path), **fields)
    except ValueError as error:
        raise CorpusError(f"{where}: {error}") from None

"""The clips to extract, shared by the corpus readers (`msmae.data.corpora`) and the runner (`msmae.data.extract`):
`ClipSource` (a whole video, a range inside one, or a frame folder), `clips_from_inputs` (input paths and/or a
manifest as clips), and `printable` (a file name as UTF-8 text for logs and rows)."""

import logging
import math
import os
from dataclasses import dataclass, field

from ..holistic import ExtractionError
from .discovery import find_clips
from .manifest import RANGE_COLUMNS, plain_value, read_manifest
from .schema import ROW_COLUMNS

logger = logging.getLogger(__name__)


@dataclass
class ClipSource:
    """One clip to extract: a whole video, a time or frame range inside a long video, or a folder of frames.

    Corpus readers (`msmae.data.corpora`) describe their clips this way; `run_extraction(clips=...)` decodes each
    source video once for all of its clips. Give a range either in seconds (`start`/`end`) or in frames
    (`start_frame`/`end_frame`), never both; `end`/`end_frame` are exclusive and None means the end. A time range
    holds the frames `i` with `start <= i / fps < end` (`fps`: the video's average rate, or the one given here).

    Attributes:
        path: a video file, or a folder of frame images (`.png`/`.jpg`, read in name order; needs `fps`).
        clip_id: unique within a dataset (its row's key, so re-runs find it); defaults to the path plus the range.
        start, end: the clip's time range in seconds.
        start_frame, end_frame: the clip's frame range (0-based).
        fps: frame rate of a frame folder (PHOENIX-2014-T: 25), or to override a video's.
        columns: values copied into the clip's row (`label`, `text`, `signer`, `split`, ...).
    """

    path: str
    clip_id: str | None = None
    start: float | None = None
    end: float | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    fps: float | None = None
    columns: dict = field(default_factory=dict)

    def __post_init__(self):
        self.path = os.path.normpath(str(self.path))
        timed = self.start is not None or self.end is not None
        framed = self.start_frame is not None or self.end_frame is not None
        if timed and framed:
            raise ValueError(f"Clip {self.clip_id or self.path}: give a range in seconds or in frames, not both.")
        low, high = (self.start, self.end) if timed else (self.start_frame, self.end_frame)
        if (low is not None and low < 0) or (low is not None and high is not None and high <= low):
            raise ValueError(f"Clip {self.clip_id or self.path}: the range [{low}, {high}) is empty or negative.")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"Clip {self.clip_id or self.path}: fps must be positive, got {self.fps}.")
        if self.clip_id is None:
            if timed:
                self.clip_id = f"{self.path}#t={_number(self.start or 0)},{_number(self.end)}"
            elif framed:
                self.clip_id = f"{self.path}#frames={self.start_frame or 0},{_number(self.end_frame)}"
            else:
                self.clip_id = self.path  # a whole video: its path, as in datasets written before clips existed
        self.columns = {key: plain_value(value) for key, value in self.columns.items()}
        bad = sorted(set(self.columns) & set(ROW_COLUMNS))
        if bad:
            raise ValueError(f"Clip {self.clip_id}: columns {bad} clash with the stored pose row; rename them.")

    def frame_range(self, fps) -> tuple[int, int | None]:
        """`(start, stop)` frame indices of this clip in a source recorded at `fps` (stop None: to the end)."""
        if self.start is None and self.end is None:
            return self.start_frame or 0, self.end_frame
        if not fps:
            raise ExtractionError(f"{self.path}: the frame rate is unknown, so the time range of clip {self.clip_id} "
                                  "cannot be placed; give the clip's fps.")
        # Frame i is shown at i / fps: the first frame at or after each bound (rounded so 1.0 s at 25 fps is 25).
        first = math.ceil(round((self.start or 0.0) * fps, 6))
        return first, None if self.end is None else max(math.ceil(round(self.end * fps, 6)), first + 1)


def _number(value):
    return "end" if value is None else f"{value:g}"


def clips_from_inputs(inputs=None, manifest=None) -> list:
    """`ClipSource`s of `inputs` (videos, folders, .txt lists: see `msmae.data.discovery.find_clips`) and/or a
    `manifest` (see `msmae.data.manifest.read_manifest`): each input video is one clip, with the columns of its
    manifest row; with no inputs, the manifest's rows are the clips. Manifest columns named as `ClipSource` fields
    (`clip_id`, `start`, `end`, `start_frame`, `end_frame`, `fps`) place the clip; the others go into its row."""
    rows = read_manifest(manifest) if manifest else []
    if not inputs:
        return _merge_repeated([_clip_from_row(row) for row in rows], manifest)
    by_file = {}
    for row in rows:
        by_file.setdefault(os.path.realpath(row["path"]), []).append(row)
    clips, unlisted = [], []
    for source in find_clips(inputs, kind="videos"):
        listed = by_file.get(os.path.realpath(source))
        if rows and not listed:
            unlisted.append(source)
        clips += [_clip_from_row({**row, "path": source}) for row in listed] if listed else [ClipSource(source)]
    if unlisted:
        logger.warning("%d videos are not in the manifest (their manifest columns are empty), e.g. %s",
                       len(unlisted), printable(unlisted[0]))
    return _merge_repeated(clips, manifest)


def _merge_repeated(clips, manifest):
    """One clip per clip_id: rows repeated with the same values count once; repeated with other values (e.g. three
    labels for one video) is an error naming them, never a silent choice."""
    by_id = {}
    for clip in clips:
        first = by_id.setdefault(clip.clip_id, clip)
        if first is not clip and first != clip:
            differ = {key: (first.columns.get(key), clip.columns.get(key))
                      for key in sorted(set(first.columns) | set(clip.columns))
                      if first.columns.get(key) != clip.columns.get(key)}
            raise ValueError(
                f"Manifest {manifest} lists clip {printable(clip.clip_id)} more than once with different values "
                f"{differ or '(range or fps)'}: keep one row per clip, or give the rows distinct clip_id (or "
                "start/end) values.")
    if len(by_id) < len(clips):
        logger.warning("Manifest %s repeats %d rows with the same values; each clip is extracted once.", manifest,
                       len(clips) - len(by_id))
    return list(by_id.values())


def _clip_from_row(row):
    fields = {key: row[key] for key in ("clip_id", *RANGE_COLUMNS) if row.get(key) is not None}
    columns = {key: value for key, value in row.items() if key not in ("path", "clip_id", *RANGE_COLUMNS)}
    return ClipSource(row["path"], columns=columns, **fields)


def printable(text) -> str:
    """`text` with the bytes of a file name that is not valid UTF-8 written as `\\xNN` (as `ls -b` does): Arrow,
    JSON readers and terminals need real UTF-8."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")

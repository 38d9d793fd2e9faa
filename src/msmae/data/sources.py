"""The clips to extract, shared by the corpus readers (`msmae.data.corpora`) and the runner (`msmae.data.extract`):
`ClipSource` (a whole video, a range inside one, or a frame folder), `clips_from_inputs` (input paths and/or a
manifest as clips), and `printable` (a file name as UTF-8 text for logs and rows)."""

import bisect
import logging
import math
import os
from dataclasses import dataclass, field

from ..holistic import ExtractionError, OutOfRangeError
from .discovery import find_named_clips
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
        id_path: the path as the default clip_id spells it, the same for every spelling of `path` (relative to
            the input folder, list or manifest that named it: `msmae.data.discovery.find_named_clips`); default
            `path`.
    """

    path: str
    clip_id: str | None = None
    start: float | None = None
    end: float | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    fps: float | None = None
    columns: dict = field(default_factory=dict)
    id_path: str | None = None

    def __post_init__(self):
        self.path = os.path.normpath(str(self.path))
        self.id_path = self.path if self.id_path is None else os.path.normpath(str(self.id_path))
        timed = self.start is not None or self.end is not None
        framed = self.start_frame is not None or self.end_frame is not None
        if timed and framed:
            raise ValueError(f"Clip {self.clip_id or self.path}: give a range in seconds or in frames, not both.")
        low, high = (self.start, self.end) if timed else (self.start_frame, self.end_frame)
        for value in (low, high, self.fps):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ValueError(f"Clip {self.clip_id or self.path}: range and fps values must be finite numbers, "
                                 f"got [{low}, {high}) at fps {self.fps}.")
        if (low is not None and low < 0) or (low is not None and high is not None and high <= low):
            raise ValueError(f"Clip {self.clip_id or self.path}: the range [{low}, {high}) is empty or negative.")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"Clip {self.clip_id or self.path}: fps must be positive, got {self.fps}.")
        if self.clip_id is None:
            self.clip_id = self.id_path + self.range_suffix()  # a whole video: its id_path alone
        self.columns = {key: plain_value(value) for key, value in self.columns.items()}
        bad = sorted(set(self.columns) & set(ROW_COLUMNS))
        if bad:
            raise ValueError(f"Clip {self.clip_id}: columns {bad} clash with the stored pose row; rename them.")

    def range_suffix(self) -> str:
        """What the default clip_id adds to the id_path: `#t=START,END` or `#frames=START,END` ("" for a whole
        video)."""
        if self.start is not None or self.end is not None:
            return f"#t={_number(self.start or 0)},{_number(self.end)}"
        if self.start_frame is not None or self.end_frame is not None:
            return f"#frames={self.start_frame or 0},{_number(self.end_frame)}"
        return ""

    def frame_range(self, fps, times=None) -> tuple[int, int | None]:
        """`(start, stop)` frame indices of this clip in a source recorded at `fps` (stop None: to the end).

        `times`: when each frame of the video is shown (seconds from the first frame, sorted: `frame_times`); a
        time range then holds the frames shown in it, so variable frame rate video is cut where the viewer sees
        it. Raises `OutOfRangeError` when no frame is shown in the range."""
        if self.start is None and self.end is None:
            return self.start_frame or 0, self.end_frame
        if times:
            return self._frames_shown(times)
        if not fps:
            raise ExtractionError(f"{self.path}: the frame rate is unknown, so the time range of clip {self.clip_id} "
                                  "cannot be placed; give the clip's fps.")
        # Frame i is shown at i / fps: the first frame at or after each bound (rounded so 1.0 s at 25 fps is 25).
        first = math.ceil(round((self.start or 0.0) * fps, 6))
        return first, None if self.end is None else max(math.ceil(round(self.end * fps, 6)), first + 1)

    def _frames_shown(self, times):
        slack = 1e-6  # a bound given to the microsecond still holds the frame shown at it
        first = bisect.bisect_left(times, (self.start or 0.0) - slack)
        stop = None if self.end is None else bisect.bisect_left(times, self.end - slack)
        if first >= len(times) or (stop is not None and stop <= first):
            raise OutOfRangeError(
                f"{printable(self.path)}: no frame is shown between {_number(self.start or 0)} s and "
                f"{_number(self.end)} s (clip {printable(self.clip_id)}; the video's {len(times)} frames span "
                f"0 to {times[-1]:g} s); fix the clip's start/end.")
        return first, stop


def frame_times(path) -> list[float] | None:
    """When each frame of the video at `path` is shown, in seconds from its first frame (sorted: presentation
    order), read from the packets without decoding; None when the file does not say (no timestamps)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps = [packet.pts for packet in container.demux(stream) if packet.size]
    except (av.FFmpegError, OSError, IndexError):
        return None  # the reader reports an unreadable file when it opens it
    if not stamps or any(stamp is None for stamp in stamps) or stream.time_base is None:
        return None
    stamps.sort()
    return [float((stamp - stamps[0]) * stream.time_base) for stamp in stamps]


def _number(value):
    return "end" if value is None else f"{value:g}"


def clips_from_inputs(inputs=None, manifest=None) -> list:
    """`ClipSource`s of `inputs` (videos, folders, .txt lists: see `msmae.data.discovery.find_clips`) and/or a
    `manifest` (see `msmae.data.manifest.read_manifest`): each input video is one clip, with the columns of its
    manifest row; with no inputs, the manifest's rows are the clips. Manifest columns named as `ClipSource` fields
    (`clip_id`, `start`, `end`, `start_frame`, `end_frame`, `fps`) place the clip; the others go into its row.
    Default clip ids spell paths relative to the inputs (`find_named_clips`: `clips/a.mp4` for the input `clips`)
    or, with no inputs, to the manifest's folder (absolute for files outside it), so every spelling of a file, or
    of the working folder, gives one id."""
    rows = read_manifest(manifest) if manifest else []
    base = os.path.abspath(os.path.dirname(manifest)) if manifest else None
    for row in rows:  # a file outside the manifest's folder keeps its absolute path (as the manifest gives it)
        relative = os.path.relpath(os.path.abspath(row["path"]), base)
        row["id_path"] = os.path.abspath(row["path"]) if relative.startswith("..") else relative
    if not inputs:
        return _merge_repeated([_clip_from_row(row) for row in rows], manifest)
    by_file = {}
    for row in rows:
        by_file.setdefault(os.path.realpath(row["path"]), []).append(row)
    clips, unlisted = [], []
    for source, id_path in find_named_clips(inputs, kind="videos"):
        listed = by_file.get(os.path.realpath(source))
        if rows and not listed:
            unlisted.append(source)
        # Ids follow the inputs, which name the files (so adding a manifest to label them keeps their ids).
        clips += ([_clip_from_row({**row, "path": source, "id_path": id_path}) for row in listed] if listed
                  else [ClipSource(source, id_path=id_path)])
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
    fields = {key: row[key] for key in ("clip_id", "id_path", *RANGE_COLUMNS) if row.get(key) is not None}
    columns = {key: value for key, value in row.items() if key not in ("path", "clip_id", "id_path", *RANGE_COLUMNS)}
    return ClipSource(row["path"], columns=columns, **fields)


def printable(text) -> str:
    """`text` with the bytes of a file name that is not valid UTF-8 written as `\\xNN` (as `ls -b` does): Arrow,
    JSON readers and terminals need real UTF-8."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")

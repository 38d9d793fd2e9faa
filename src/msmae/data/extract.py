"""The resumable dataset writer behind `msmae extract` (MediaPipe itself is in `msmae.holistic`).

`run_extraction(...)` turns many videos, frame folders or clips cut from long videos (`ClipSource`) into a Hugging
Face `datasets` dataset on disk, one row per clip (columns: `msmae.data.schema.ROW_COLUMNS`, then the clip's own):

    OUTPUT_DIR/data/train-<16 hex>.parquet   one file per clip (hash of its clip_id: a whole video's is its path),
                                              written atomically
    OUTPUT_DIR/failures.jsonl                 one line per clip that gave no row: {"path", "clip_id", "kind", "error"}
                                              (failures-<i>-of-<n>.jsonl per shard when sharded)
    OUTPUT_DIR/extraction_info.json           features, MediaPipe settings and version
    OUTPUT_DIR/README.md                      dataset card whose `configs` point `datasets` at data/*.parquet

Load it as one dataset with `load_extracted(OUTPUT_DIR)`, `datasets.load_dataset(OUTPUT_DIR, split="train")`
or `datasets.load_dataset("parquet", data_files=f"{OUTPUT_DIR}/data/*.parquet", split="train")`.
"""

import concurrent.futures
import errno
import hashlib
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..holistic import (
    ExtractionError,
    HolisticExtractor,
    OutOfRangeError,
    filter_native_stderr,
    holistic_settings,
    open_frames,
)
from ..keypoint_layout import NUM_STORED_KEYPOINTS, STORED_STREAMS_TEXT
from .schema import ROW_COLUMNS, row_features
from .discovery import find_clips
from .manifest import RANGE_COLUMNS, plain_value, read_manifest

logger = logging.getLogger(__name__)

DATA_DIR = "data"
INFO_FILE = "extraction_info.json"

# ----------------------------------------------------------------------------------------------------------------------
# Inputs, manifests and shards
# ----------------------------------------------------------------------------------------------------------------------


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


def shard_paths(paths, shard_index=0, num_shards=1) -> list:
    """This shard's share of the sorted `paths` (every `num_shards`-th item from `shard_index`): shards are
    disjoint, together cover every path, and agree across machines given the same inputs."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards) and num_shards >= 1, got {shard_index}/{num_shards}.")
    return sorted(paths)[shard_index::num_shards]


def _column_features(rows):
    """One `datasets` type per column of `rows` (dicts), from all its values (so every part and shard agrees)."""
    from datasets import Value

    kinds = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    features = {}
    for key in sorted({key for row in rows for key in row}):
        types = kinds.get(key, {str})
        if types == {bool}:
            features[key] = Value("bool")
        elif types <= {int}:
            features[key] = Value("int64")
        elif types <= {int, float}:
            features[key] = Value("float64")
        else:
            features[key] = Value("string")
    return features


# ----------------------------------------------------------------------------------------------------------------------
# The dataset on disk
# ----------------------------------------------------------------------------------------------------------------------


def part_path(output_dir, clip_id) -> Path:
    """Where the row of the clip `clip_id` (a whole video's is its path) is written: a stable name, so re-runs find
    what is already done. Hex only: split keywords such as 'test' in a video's name must not look like a dataset
    split to `datasets`."""
    digest = hashlib.sha1(os.fsencode(str(clip_id))).hexdigest()[:16]  # file names need not be valid UTF-8
    return Path(output_dir) / DATA_DIR / f"train-{digest}.parquet"


def printable(text) -> str:
    """`text` with the bytes of a file name that is not valid UTF-8 written as `\\xNN` (as `ls -b` does): Arrow,
    JSON readers and terminals need real UTF-8."""
    return os.fsencode(str(text)).decode("utf-8", "backslashreplace")


def write_part(path, example, features, settings=None, table=None):
    """Write one dataset row to `path` atomically (temporary file, fsync, rename): a killed run leaves either the
    whole file or none. The file's metadata records the clip, a digest of its poses and the extractor `settings`,
    so that a re-run can check it (`check_part`). `table`: the row as a one-row Arrow table instead of `example`."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = _row_table(example, features) if table is None else table
    record = {"clip_id": printable(table["clip_id"][0].as_py()), "poses_sha1": _poses_digest(table),
              "extractor": settings}
    table = table.replace_schema_metadata({**table.schema.metadata, PART_METADATA: json.dumps(record).encode()})
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")  # never matches *.parquet or *.json
    try:
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


PART_METADATA = b"msmae_part"


def _poses_digest(table) -> str:
    """SHA-1 of a row's keypoints and mask values (a part damaged from outside no longer matches it)."""
    digest = hashlib.sha1()
    for name in ("keypoints", "keypoint_mask"):
        values = table[name].combine_chunks()
        values = values.storage if hasattr(values, "storage") else values
        while hasattr(values, "flatten"):
            values = values.flatten()
        digest.update(values.to_numpy(zero_copy_only=False).tobytes())
    return digest.hexdigest()


def check_part(path, clip, features, settings) -> tuple[str, object]:
    """What a re-run does with the existing part of `clip` at `path`: ("ok", None) keep it; ("columns", table)
    rewrite its clip columns (the manifest or the column types changed; `table` holds the new row, poses kept);
    ("extract", reason) extract the clip again (unreadable, damaged, another clip's, other extractor settings)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        if table.num_rows != 1:
            return "extract", f"it holds {table.num_rows} rows"
        record = json.loads((table.schema.metadata or {}).get(PART_METADATA, b"{}"))
        if table["clip_id"][0].as_py() != printable(clip.clip_id):
            return "extract", f"it holds clip {table['clip_id'][0].as_py()!r}"
        if record and record.get("poses_sha1") != _poses_digest(table):
            return "extract", "its poses do not match their checksum"
    except Exception as error:  # any damage: a torn footer, bad pages, garbage bytes
        return "extract", f"it cannot be read ({type(error).__name__}: {error})"
    if record and record.get("extractor") not in (None, settings):
        return "extract", f"it was extracted with other settings {record['extractor']}"
    example = {key: clip.columns.get(key) for key in features if key not in ROW_COLUMNS}
    try:
        new = _row_table(example, features, poses=table)
    except Exception as error:  # e.g. a label that is not a class of the new ClassLabel
        raise ValueError(f"Clip {printable(clip.clip_id)}: its columns {example} do not fit {features}: {error}")
    metadata = dict(table.schema.metadata or {})
    metadata.pop(PART_METADATA, None)
    if new.equals(table, check_metadata=False) and new.schema.metadata == metadata:
        return "ok", None
    return "columns", new


def _row_table(example, features, poses=None):
    """A one-row Arrow table of `features` (with the schema metadata `datasets` reads back).

    Built from the arrays' buffers: `datasets.Dataset.from_list` goes through Python lists and costs more than the
    Parquet write itself. `poses`: a stored row (Arrow table) whose pose columns (`ROW_COLUMNS`) are taken as they
    are, so a row's own columns can be rewritten without running MediaPipe again."""
    import pyarrow as pa
    from datasets import ClassLabel

    schema = features.arrow_schema
    columns = []
    for field_ in schema:
        if poses is not None and field_.name in ROW_COLUMNS:
            column = poses[field_.name].combine_chunks()
            columns.append(column if column.type == field_.type else column.cast(field_.type))
            continue
        value = example.get(field_.name)
        if isinstance(features[field_.name], ClassLabel) and isinstance(value, str):
            value = features[field_.name].str2int(value)  # raises naming the label when it is not a class
        if isinstance(field_.type, pa.ExtensionType):  # Array2D / Array3D: nested lists over the flat values
            array = np.ascontiguousarray(value)
            storage = pa.array(array.ravel())
            for size in reversed(array.shape[1:]):
                storage = pa.ListArray.from_arrays(pa.array(np.arange(0, len(storage) + 1, size, dtype=np.int32)),
                                                   storage)
            storage = pa.ListArray.from_arrays(pa.array([0, len(storage)], pa.int32()), storage)
            columns.append(pa.ExtensionArray.from_storage(field_.type, storage.cast(field_.type.storage_type)))
        else:
            columns.append(pa.array([value], type=field_.type))
    return pa.Table.from_arrays(columns, schema=schema)


def failures_path(output_dir, shard_index=0, num_shards=1) -> Path:
    name = "failures.jsonl" if num_shards == 1 else f"failures-{shard_index:05d}-of-{num_shards:05d}.jsonl"
    return Path(output_dir) / name


def read_failures(output_dir) -> dict[str, dict]:
    """{clip_id: last failure record} from every shard's failure log; a line cut off by a kill is skipped, and so
    are records of a full disk or a permission error that older versions logged as a video's fault."""
    failures = {}
    for log in sorted(Path(output_dir).glob("failures*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "path" in record and not _environment_record(record):
                failures[record.get("clip_id", record["path"])] = record
    return failures


def load_extracted(output_dir, *, cache_dir=None):
    """The videos extracted into `output_dir` (by any number of runs and shards) as one `datasets.Dataset`.

    Same as `datasets.load_dataset("parquet", data_files=f"{output_dir}/data/*.parquet", split="train")`;
    `cache_dir` is where `datasets` keeps its Arrow copy (its default cache when None).
    """
    from datasets import load_dataset

    files = sorted(str(p) for p in (Path(output_dir) / DATA_DIR).glob("*.parquet"))
    if not files:
        raise ExtractionError(f"No extracted videos in {output_dir} (expected {DATA_DIR}/*.parquet); "
                              "run `msmae extract VIDEOS --output_dir ...` first.")
    return load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=cache_dir)


# ----------------------------------------------------------------------------------------------------------------------
# Running over many videos
# ----------------------------------------------------------------------------------------------------------------------


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


@dataclass
class ExtractionSummary:
    """What one `run_extraction` call did (this shard only). Counts are of clips, except `num_videos`."""

    output_dir: str
    num_videos: int = 0  # source videos or frame folders in this shard
    num_clips: int = 0  # their clips (one per whole video)
    num_already_extracted: int = 0
    num_already_failed: int = 0
    num_damaged: int = 0  # parts that failed `check_part` and were extracted again
    num_updated: int = 0  # parts whose columns were rewritten (manifest changed)
    num_extracted: int = 0
    num_no_person: int = 0
    num_failed: int = 0
    num_frames: int = 0
    seconds: float = 0.0  # wall time of the run, worker start-up included
    processing_seconds: float = 0.0  # from the first video's start to the last one's end (in any worker)
    cpu_seconds: float = 0.0  # CPU time of the workers (all their threads) spent on videos
    failures: list = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def num_already_done(self) -> int:
        return self.num_already_extracted + self.num_already_failed


_worker_extractor = None
_worker_state = {}


def _init_worker(extractor_kwargs, features, quiet, settings=None, main_pid=None):
    global _worker_extractor
    if main_pid is not None:
        _end_with_parent(main_pid)
    if quiet:
        filter_native_stderr()
    _worker_extractor = HolisticExtractor(**extractor_kwargs)
    _worker_state.update(features=features, settings=settings)


def _end_with_parent(main_pid):
    """Make this worker end when `msmae extract` dies (even by kill -9), not minutes later holding its memory: the
    kernel kills it when its parent (the fork server) exits (Linux), and a thread checks the main process too."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="msmae-parent-watch", daemon=True).start()


def _extract_source(path, fps, jobs):
    """Extract and write the clips `jobs` [(ClipSource, destination)] of one source, decoding it once; never
    raises (failures are returned as records for the log). Returns {"path", "clips": [result per clip], times}."""
    started, cpu = time.time(), time.process_time()  # wall clock: comparable across worker processes
    results = {}
    try:
        with open_frames(path, fps) as reader:
            rate = fps or reader.fps
            ranges = [clip.frame_range(rate) for clip, _ in jobs]
            for i, pose in _worker_extractor.extract_ranges(reader, ranges, source=path, fps=rate):
                results[i] = _write_clip(*jobs[i], pose)
    except ExtractionError as error:
        failure = {"kind": "unreadable", "error": printable(error)}
    except Exception as error:  # one bad video (e.g. a MediaPipe RuntimeError) must not stop the run
        failure = {"kind": "error", "error": printable(f"{type(error).__name__}: {error}")}
    else:
        failure = None
    clips = [results.get(i) or _clip_result(clip, 0, **failure) for i, (clip, _) in enumerate(jobs)]
    return {"path": path, "clips": clips, "started": started, "finished": time.time(),
            "cpu_seconds": time.process_time() - cpu}


def _write_clip(clip, destination, pose):
    if isinstance(pose, ExtractionError):
        return _clip_result(clip, 0, "out_of_range" if isinstance(pose, OutOfRangeError) else "unreadable", str(pose))
    if not pose.metadata["person_detected"]:
        return _clip_result(clip, pose.num_frames, "no_person",
                            f"no person detected in any of the {pose.num_frames} frames")
    pose.metadata["clip_id"] = printable(clip.clip_id)
    example = pose.to_example()
    example["source"] = printable(example["source"])
    example.update({key: clip.columns.get(key) for key in _worker_state["features"] if key not in example})
    try:
        write_part(destination, example, _worker_state["features"], _worker_state["settings"])
    except OSError as error:  # the output folder's fault (full, read-only), not the video's: the run stops
        return _clip_result(clip, pose.num_frames, WRITE_ERROR, output_error_message(error, destination))
    return _clip_result(clip, pose.num_frames, "ok")


WRITE_ERROR = "write_error"
# errno values that are the machine's fault, never the input's: full disk, quota, file size limit, permissions,
# read-only file system.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}


class OutputError(OSError):
    """The output folder could not be written (full disk, permissions, read-only): the run stopped; nothing that
    was written is lost and the same command continues where it stopped."""


def output_error_message(error, path) -> str:
    """What to fix, for an OSError met while writing `path`."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free disk space (or raise the quota / file size limit)"
    elif error.errno in (errno.EACCES, errno.EPERM):
        fix = f"make {Path(path).parent} writable for this user"
    elif error.errno == errno.EROFS:
        fix = "the file system is read-only: give an --output_dir on a writable one"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = f"{Path(path).parent} or a folder above it is a file: give another --output_dir"
    else:
        fix = "check the output folder"
    return f"could not write {printable(path)} ({printable(error.strerror or error)}): {fix}"


def _environment_record(record) -> bool:
    error = str(record.get("error") or "")
    return record.get("kind") == WRITE_ERROR or (
        record.get("kind") == "error" and any(f"[Errno {code}]" in error for code in _ENVIRONMENT_ERRNOS))


def _clip_result(clip, frames, kind, error=None):
    return {"path": clip.path, "clip_id": clip.clip_id, "frames": frames, "kind": kind,
            "error": None if error is None else printable(error)}


def run_extraction(inputs=None, output_dir=None, *, clips=None, manifest=None, num_workers=1, shard_index=0,
                   num_shards=1, overwrite=False, retry_failed=False, progress=True, quiet=False,
                   extractor_kwargs=None, column_features=None) -> ExtractionSummary:
    """Extract clips into `output_dir` as a resumable dataset (layout in the module docstring), one row per clip.

    The clips are `clips` (`ClipSource`s: whole videos, ranges inside long videos, frame folders), or every video
    of `inputs` (see `msmae.data.discovery.find_clips`) as a whole, or with a `manifest` and no inputs, the
    manifest's videos; a manifest's columns go into its videos' rows. Each source is decoded once for all of its clips, which run with
    fresh MediaPipe tracking each. Shards split the sources (never the clips of one source).

    Clips whose part file exists and checks out (`check_part`: readable, its poses whole, the same extractor
    settings) are skipped; a damaged part is extracted again; a part whose columns changed (manifest edited) gets
    them rewritten without MediaPipe. Clips in the failure log are skipped unless `retry_failed`; `overwrite`
    re-extracts everything (replacing each part atomically). `num_workers` processes each run one Holistic graph.
    Missing or unreadable sources, ranges outside their video and clips without a person are logged to the failure
    log, never written, never fatal. A failed write (full disk, permissions) stops the run with `OutputError`
    naming what to fix; what was not written is extracted by the next run. Other extractor settings than the
    folder's, or parts of unlisted clips with other columns, raise ValueError before any work. A second run on the
    same folder and shard while one runs raises `ExtractionBusy`. `column_features` ({column: datasets feature},
    e.g. a `ClassLabel`) types the clips' columns; the others are typed from their values. `quiet` filters
    MediaPipe's native start-up messages from stderr (see `filter_native_stderr`).
    """
    if output_dir is None:
        raise ValueError("run_extraction needs an output_dir.")
    if clips is not None and (inputs or manifest):
        raise ValueError("Give either clips or inputs/manifest to run_extraction, not both.")
    if clips is None:
        clips = clips_from_inputs(inputs, manifest)
    clips = list(clips)
    ids = {}
    for clip in clips:
        if ids.setdefault(clip.clip_id, clip) is not clip:
            raise ValueError(f"Two clips share the clip_id {clip.clip_id!r} (each row needs its own); give them "
                             "distinct clip_id values.")
    features = row_features({**_column_features([clip.columns for clip in clips]), **(column_features or {})})
    extractor_kwargs = dict(extractor_kwargs or {})
    settings = holistic_settings(**extractor_kwargs)  # bad settings fail here, not in every worker

    output_dir = Path(output_dir)
    try:
        (output_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
        lock = _lock(output_dir, shard_index, num_shards)
    except OSError as error:
        raise OutputError(f"Cannot extract into {printable(output_dir)}: "
                          f"{output_error_message(error, error.filename or output_dir)}.") from error
    with lock:
        return _run_locked(clips, output_dir, features, settings, extractor_kwargs, num_workers=num_workers,
                           shard_index=shard_index, num_shards=num_shards, overwrite=overwrite,
                           retry_failed=retry_failed, progress=progress, quiet=quiet)


class ExtractionBusy(RuntimeError):
    """Another `msmae extract` is writing the same folder (and shard)."""


class _lock:
    """An exclusive lock on OUTPUT_DIR for one shard, held while a run writes there: a second run on the same
    folder and shard refuses instead of doing the same work (an advisory flock; shards lock separately)."""

    def __init__(self, output_dir, shard_index, num_shards):
        name = ".msmae-extract.lock" if num_shards == 1 else f".msmae-extract-{shard_index}-of-{num_shards}.lock"
        self.path = Path(output_dir) / name
        # Held open read-only (flock needs no write access): an open writable file would keep its file system from
        # being remounted read-only.
        self.handle = open(os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644))
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            return
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = self.handle.read().strip() or "?"
            self.handle.close()
            shard = f" (shard {shard_index} of {num_shards})" if num_shards > 1 else ""
            raise ExtractionBusy(
                f"Another msmae extract (pid {owner}) is extracting into {printable(output_dir)}{shard}; wait for it "
                "to finish (or stop it), then run this command again to do what is left.") from None
        try:
            with open(self.path, "r+") as handle:  # in place: the lock is on this file, not its name
                handle.truncate(0)
                handle.write(f"{os.getpid()}\n")
        except OSError:
            self.handle.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _read_info(output_dir) -> dict:
    try:
        info = json.loads((Path(output_dir) / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _check_unlisted_parts(output_dir, clips, features):
    """Parts in the folder of clips this run does not list must have this run's columns, or the dataset would no
    longer load as one table (`CastError`): refuse, saying how to proceed."""
    import pyarrow.parquet as pq

    listed = {part_path(output_dir, clip.clip_id).name for clip in clips}
    wanted = features.arrow_schema
    for part in sorted((Path(output_dir) / DATA_DIR).glob("*.parquet")):
        if part.name in listed:
            continue
        try:
            schema = pq.read_schema(part)
            problem = None if (schema.remove_metadata().equals(wanted.remove_metadata())
                               and (schema.metadata or {}).get(b"huggingface")
                               == (wanted.metadata or {}).get(b"huggingface")) else (
                f"columns {sorted(schema.names)} instead of {sorted(wanted.names)} (or other types)")
        except Exception as error:
            problem = f"it cannot be read ({type(error).__name__}: {error})"
        if problem:
            raise ValueError(
                f"{printable(part)} holds a clip that this run does not list, and {problem}: the dataset would not "
                "load as one table. Give the inputs/manifest that list every clip of the folder (edit its rows "
                "rather than dropping them), or move the parts of clips you no longer want out of "
                f"{printable(Path(output_dir) / DATA_DIR)}, then run again.")


def _run_locked(clips, output_dir, features, settings, extractor_kwargs, *, num_workers, shard_index, num_shards,
                overwrite, retry_failed, progress, quiet):
    info = _read_info(output_dir)
    if not overwrite and info.get("extractor") not in (None, settings):
        raise ValueError(
            f"{printable(output_dir)} was extracted with the settings {info['extractor']}, not {settings}: run "
            "with the same settings, or add --overwrite to extract every clip again with the new ones, or give "
            "another --output_dir.")
    _check_unlisted_parts(output_dir, clips, features)
    by_source = {}
    for clip in clips:
        by_source.setdefault(clip.path, []).append(clip)
    shard = shard_paths(by_source, shard_index, num_shards)
    summary = ExtractionSummary(output_dir=str(output_dir), num_videos=len(shard),
                                num_clips=sum(len(by_source[path]) for path in shard))
    failed_before = {} if (overwrite or retry_failed) else read_failures(output_dir)
    tasks, rewrites = [], []
    for path in shard:
        jobs = []
        for clip in sorted(by_source[path], key=lambda c: c.clip_id):
            part = part_path(output_dir, clip.clip_id)
            if not overwrite and part.exists():
                state, detail = check_part(part, clip, features, settings)
                if state != "extract":
                    summary.num_already_extracted += 1
                    if state == "columns":
                        rewrites.append((part, detail))
                    continue
                logger.warning("%s: its part %s is not used (%s); extracting it again.", printable(clip.clip_id),
                               part.name, detail)
                summary.num_damaged += 1
            elif clip.clip_id in failed_before:
                summary.num_already_failed += 1
                continue
            jobs.append((clip, part))
        if jobs:
            fps = {clip.fps for clip, _ in jobs}
            if len(fps) > 1:
                raise ValueError(f"Clips of {printable(path)} give different fps values {sorted(fps)}; give one "
                                 "per source.")
            tasks.append((path, fps.pop(), jobs))
    if summary.num_already_done:
        logger.info("%d of %d clips already done (extracted or logged as failed); skipping them.",
                    summary.num_already_done, summary.num_clips)
    if not tasks and not rewrites:
        return summary

    previous = (info.get("rows_with_previous_settings") or {}).get("extractor") or info.get("extractor")
    try:
        _write_info(output_dir, features, settings, previous=previous)
        for part, table in rewrites:
            write_part(part, None, features, settings, table=table)
    except OSError as error:
        raise OutputError(f"Extraction stopped: {output_error_message(error, error.filename or output_dir)}. "
                          "Nothing is lost; run the same command again once fixed.") from error
    summary.num_updated = len(rewrites)
    if rewrites:
        logger.info("Rewrote the columns of %d rows whose manifest values or column types changed.", len(rewrites))
    log = failures_path(output_dir, shard_index, num_shards)
    bar = _progress_bar(sum(len(jobs) for *_, jobs in tasks), progress)
    started, first_start, last_finish = time.perf_counter(), float("inf"), float("-inf")
    stopped = None
    results = _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet, settings)
    try:
        for done in results:
            if "started" in done:
                first_start, last_finish = min(first_start, done["started"]), max(last_finish, done["finished"])
                summary.processing_seconds = last_finish - first_start
                summary.cpu_seconds += done["cpu_seconds"]
            for result in done["clips"]:
                summary.num_frames += result["frames"]
                if result["kind"] == "ok":
                    summary.num_extracted += 1
                elif result["kind"] == WRITE_ERROR:
                    stopped = stopped or result["error"]
                elif not stopped:
                    try:
                        _append_failure(log, result)
                    except OSError as error:  # not logged: the next run tries the clip again
                        stopped = output_error_message(error, log)
                        continue
                    summary.num_no_person += result["kind"] == "no_person"
                    summary.num_failed += result["kind"] != "no_person"
                    summary.failures.append(result)
                    logger.warning("%s: %s", printable(result["clip_id"]), result["error"])
            summary.seconds = time.perf_counter() - started
            if bar is not None:
                bar.set_postfix_str(f"{summary.frames_per_second:.1f} frames/s", refresh=False)
                bar.update(len(done["clips"]))
            if stopped:
                break
    finally:
        results.close()  # stops the workers
        if bar is not None:
            bar.close()
    if stopped:
        error = OutputError(
            f"Extraction stopped: {stopped}. The {summary.num_extracted} clips written before are kept; the "
            "others are extracted when you run the same command again.")
        error.summary = summary
        raise error
    if previous not in (None, settings) and num_shards == 1:
        _write_info(output_dir, features, settings)  # every row now has the new settings
    return summary


def _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet, settings=None):
    """Yield `_extract_source` results as sources finish: in this process for one worker, else in a process pool.
    A task is (path, fps, jobs)."""
    if num_workers <= 1:
        _init_worker(extractor_kwargs, features, quiet, settings)
        try:
            for task in tasks:
                yield _extract_source(*task)
        finally:
            _worker_extractor.close()
        return
    context = _worker_context()
    pending, suspects = list(reversed(tasks)), {}  # pop() from the end keeps the sorted order
    while pending:
        pool = concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=context, initializer=_init_worker,
            initargs=(extractor_kwargs, features, quiet, settings, os.getpid()),
        )
        in_flight, broken = {}, False
        try:
            while (pending or in_flight) and not broken:
                # After a worker died, the sources that were in flight are retried one at a time to find the culprit.
                isolate = (pending and pending[-1][0] in suspects) or any(t[0] in suspects for t in in_flight.values())
                limit = 1 if isolate else num_workers
                while pending and len(in_flight) < limit:
                    future = pool.submit(_extract_source, *pending[-1])
                    in_flight[future] = pending.pop()
                done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    if isinstance(future.exception(), BrokenProcessPool):
                        broken = True
                        continue
                    task = in_flight.pop(future)
                    if future.exception() is not None:
                        error = future.exception()
                        yield _failed_task(task, f"{type(error).__name__}: {error}")
                    else:
                        yield future.result()
        except BrokenProcessPool:  # from submit(): the pool broke between two waits
            broken = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for task in in_flight.values():  # a worker died (e.g. a native crash in MediaPipe)
            if task[0] in suspects and len(in_flight) == 1:
                yield _failed_task(task, "the worker process died while extracting this video")
            else:
                suspects[task[0]] = True
                pending.append(task)


def _failed_task(task, error):
    path, _, jobs = task
    return {"path": path, "clips": [_clip_result(clip, 0, "error", error) for clip, _ in jobs]}


def _worker_context():
    """Workers start from a fork server that has imported this module once (never a fork of this process, whose
    threads need not survive a fork), so they skip `msmae`'s imports (torch, transformers: seconds of CPU each);
    spawn where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _append_failure(log, result):
    record = {"path": result["path"], "clip_id": result["clip_id"], "kind": result["kind"], "error": result["error"]}
    line = (json.dumps(record) + "\n").encode("utf-8")  # ASCII: file names that are not UTF-8 as \udcNN escapes
    with open(log, "ab+") as handle:
        if handle.seek(0, os.SEEK_END) and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n":
            line = b"\n" + line  # a line torn by a kill must not swallow this record
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _write_info(output_dir, features, settings, previous=None):
    info = {
        "features": features.to_dict(),
        "extractor": settings,
        **({"rows_with_previous_settings": {
            "extractor": previous,
            "note": "an --overwrite with new settings has not finished: rows not yet extracted again still hold "
                    "these settings (each part records its own); run the same command again to finish"}}
           if previous not in (None, settings) else {}),
        "layout": f"one row per clip in {DATA_DIR}/train-<sha1(clip_id)[:16]>.parquet; failures in failures*.jsonl",
    }
    _write_text(Path(output_dir) / INFO_FILE, json.dumps(info, indent=2) + "\n")
    if not (Path(output_dir) / "README.md").exists():  # a card the user edited stays
        _write_text(Path(output_dir) / "README.md", _DATASET_CARD)


# The card's `configs` make `datasets.load_dataset(OUTPUT_DIR)` (and the Hub, once pushed) read exactly the parts,
# whatever else lies in the folder.
_DATASET_CARD = f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: {DATA_DIR}/*.parquet
---

# Sign-language poses extracted by `msmae extract`

MediaPipe Holistic landmarks, one row per clip. Columns: `keypoints` (frames, {NUM_STORED_KEYPOINTS}, 4) float32 x, y
(normalised to the frame), z, visibility of the streams {STORED_STREAMS_TEXT}, in that order;
`keypoint_mask` (frames, {NUM_STORED_KEYPOINTS}) bool, True where detected; `fps`, `width`, `height`,
`num_frames`, `source` (the video or frame folder), `clip_id`, `start_frame` and `end_frame` (the clip's frames in
the source, end exclusive), and the clips' own columns (label, text, signer, ...). See `{INFO_FILE}`.

Load with `msmae.data.extract.load_extracted(folder)` or `datasets.load_dataset(folder, split="train")`.
"""


def _write_text(path, text):
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")  # never matches *.parquet or *.json
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc="extract", dynamic_ncols=True)

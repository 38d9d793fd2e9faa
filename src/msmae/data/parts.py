"""The folder that `msmae extract` writes (`msmae.data.extract.run_extraction`), and reading it back:

    OUTPUT_DIR/data/train-<16 hex>.parquet   one file per clip (hash of its clip_id: see ClipSource.id_path),
                                              written atomically
    OUTPUT_DIR/failures.jsonl                 one line per clip that gave no row: {"path", "clip_id", "kind", "error",
                                              "key"} (key: the row's content, `extract.failure_key`)
                                              (failures-<i>-of-<n>.jsonl per shard when sharded)
    OUTPUT_DIR/extraction_info.json           features, MediaPipe settings and version
    OUTPUT_DIR/README.md                      dataset card whose `configs` point `datasets` at data/*.parquet
    OUTPUT_DIR/.msmae-extract*.lock           held by the runs writing the folder (`_lock`: one run per shard; never
                                              an unsharded run beside sharded ones, or two shard counts)

OUTPUT_DIR may be an object-store URL (s3://bucket/prefix: `msmae.data.storage`, which says what is guaranteed
where). Load it as one dataset with `load_extracted(OUTPUT_DIR)`, `datasets.load_dataset(OUTPUT_DIR, split="train")`
or `datasets.load_dataset("parquet", data_files=f"{OUTPUT_DIR}/data/*.parquet", split="train")`.
"""

import errno
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..holistic import ExtractionError
from ..keypoint_layout import HOLISTIC_COMPONENT_STARTS, NUM_STORED_KEYPOINTS, STORED_STREAMS_TEXT
from . import storage
from .schema import ROW_COLUMNS
from .sources import printable

DATA_DIR = "data"

INFO_FILE = "extraction_info.json"


# ----------------------------------------------------------------------------------------------------------------------
# Part files: one row each
# ----------------------------------------------------------------------------------------------------------------------


def part_path(output_dir, clip_id):
    """Where the row of the clip `clip_id` (a whole video's is its path) is written: a stable name, so re-runs find
    what is already done. Hex only: split keywords such as 'test' in a video's name must not look like a dataset
    split to `datasets`."""
    digest = hashlib.sha1(os.fsencode(str(clip_id))).hexdigest()[:16]  # file names need not be valid UTF-8
    return storage.join(storage.location(output_dir), DATA_DIR, f"train-{digest}.parquet")


def write_part(path, example, features, settings=None, table=None):
    """Write one dataset row to `path` atomically (temporary file, fsync, rename): a killed run leaves either the
    whole file or none. The file's metadata records the clip, a digest of its poses and the extractor `settings`,
    so that a re-run can check it (`check_part`). `table`: the row as a one-row Arrow table instead of `example`."""
    import pyarrow.parquet as pq

    table = _row_table(example, features) if table is None else table
    record = {"clip_id": printable(table["clip_id"][0].as_py()), "poses_sha1": _poses_digest(table),
              "extractor": settings}
    table = table.replace_schema_metadata({**table.schema.metadata, PART_METADATA: json.dumps(record).encode()})
    buffer = io.BytesIO()  # a part is one clip: small enough to write whole, locally or as one PUT
    pq.write_table(table, buffer)
    storage.write_bytes(path, buffer.getvalue())


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

    try:
        table = _read_parquet(path)
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


def _read_parquet(path, schema_only=False):
    import pyarrow.parquet as pq

    source = io.BytesIO(storage.read_bytes(path)) if storage.is_remote(path) else path  # parts are small
    return pq.read_schema(source) if schema_only else pq.read_table(source)


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


def migrate_old_ids(output_dir, clips) -> int:
    """Give the parts written before clip ids were spelled relative to their input (the path as typed, e.g.
    absolute or from another working folder) the id of the listed clip of the same file and range, so a re-run
    neither extracts them again nor keeps them twice; a part whose clip already has a part of its own is a
    duplicate and goes. Returns how many parts were renamed or dropped."""
    data = storage.join(storage.location(output_dir), DATA_DIR)
    listed = {storage.name(part_path(output_dir, clip.clip_id)) for clip in clips}
    unlisted = [part for part in storage.glob(data, "*.parquet") if storage.name(part) not in listed]
    if not unlisted:
        return 0
    by_file = {}
    for clip in clips:
        if clip.clip_id == clip.id_path + clip.range_suffix():  # a default id (a given clip_id is stable already)
            by_file[(os.path.realpath(clip.path), clip.range_suffix())] = clip
    present = {storage.name(part) for part in storage.glob(data, "*.parquet")}
    moved = 0
    for part in unlisted:
        clip = _old_id_clip(_stored_clip_id(part), by_file, part)
        if clip is None:
            continue
        new = part_path(output_dir, clip.clip_id)
        if storage.name(new) not in present:
            table = _read_parquet(part)
            record = json.loads((table.schema.metadata or {}).get(PART_METADATA, b"{}"))
            column = table.schema.get_field_index("clip_id")
            table = table.set_column(column, "clip_id", _string_like(table["clip_id"], printable(clip.clip_id)))
            write_part(new, None, None, record.get("extractor"), table=table)  # written before the old one goes
            present.add(storage.name(new))
        storage.remove(part)
        moved += 1
    return moved


def _stored_clip_id(part):
    try:
        import pyarrow.parquet as pq

        source = io.BytesIO(storage.read_bytes(part)) if storage.is_remote(part) else part
        return pq.read_table(source, columns=["clip_id"])["clip_id"][0].as_py()
    except Exception:  # a damaged part is reported by _check_unlisted_parts
        return None


def _old_id_clip(clip_id, by_file, part):
    """The listed clip that `clip_id`, spelled the old way (the path as typed and `#t=...`/`#frames=...`), named:
    the same file and range from this working folder; else, for a relative path typed in another working folder,
    the one listed file whose path ends with it, if the part's frame size is that video's. None otherwise."""
    if not clip_id:
        return None
    path, mark, suffix = clip_id.rpartition("#")
    if not (mark and (suffix.startswith("t=") or suffix.startswith("frames="))):
        path, suffix = clip_id, ""
    suffix = f"#{suffix}" if suffix else ""
    if os.path.exists(path):
        return by_file.get((os.path.realpath(path), suffix))
    if os.path.isabs(path) or ".." in Path(path).parts:
        return None
    tail = os.sep + os.path.normpath(path)
    found = [clip for (real, range_), clip in by_file.items()
             if range_ == suffix and (real.endswith(tail) or os.path.abspath(clip.path).endswith(tail))]
    return found[0] if len(found) == 1 and _same_frame_size(part, found[0].path) else None


def _same_frame_size(part, video) -> bool:
    try:
        import av
        import pyarrow.parquet as pq

        source = io.BytesIO(storage.read_bytes(part)) if storage.is_remote(part) else part
        row = pq.read_table(source, columns=["width", "height"]).to_pylist()[0]
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            size = (stream.codec_context.width, stream.codec_context.height)
    except Exception:  # not a readable video (a frame folder, a damaged file): no guess
        return False
    return (row["width"], row["height"]) in (size, size[::-1])  # rotated phone video: either way round


def _string_like(column, value):
    import pyarrow as pa

    return pa.array([value], type=column.type)


def _check_unlisted_parts(output_dir, clips, features):
    """Parts in the folder of clips this run does not list must have this run's columns, or the dataset would no
    longer load as one table (`CastError`): refuse, saying how to proceed."""
    listed = {storage.name(part_path(output_dir, clip.clip_id)) for clip in clips}
    wanted = features.arrow_schema
    for part in storage.glob(storage.join(storage.location(output_dir), DATA_DIR), "*.parquet"):
        if storage.name(part) in listed:
            continue
        try:
            schema = _read_parquet(part, schema_only=True)
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
                f"{printable(storage.join(output_dir, DATA_DIR))}, then run again.")


def load_extracted(output_dir, *, cache_dir=None):
    """The videos extracted into `output_dir` (by any number of runs and shards) as one `datasets.Dataset`.

    Same as `datasets.load_dataset("parquet", data_files=f"{output_dir}/data/*.parquet", split="train")`;
    `cache_dir` is where `datasets` keeps its Arrow copy (its default cache when None). `output_dir` may be a URL
    (s3://...; credentials from the environment).
    """
    from datasets import load_dataset

    files = [str(p) for p in storage.glob(storage.join(storage.location(output_dir), DATA_DIR), "*.parquet")]
    if not files:
        raise ExtractionError(f"No extracted videos in {output_dir} (expected {DATA_DIR}/*.parquet); "
                              "run `msmae extract VIDEOS --output_dir ...` first.")
    return load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=cache_dir)


# ----------------------------------------------------------------------------------------------------------------------
# The failure log
# ----------------------------------------------------------------------------------------------------------------------


def failures_path(output_dir, shard_index=0, num_shards=1):
    name = "failures.jsonl" if num_shards == 1 else f"failures-{shard_index:05d}-of-{num_shards:05d}.jsonl"
    return storage.join(storage.location(output_dir), name)


WRITE_ERROR = "write_error"


# errno values that are the machine's fault, never the input's: full disk, quota, file size limit, permissions,
# read-only file system.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS}


def _environment_record(record) -> bool:
    error = str(record.get("error") or "")
    return record.get("kind") == WRITE_ERROR or (
        record.get("kind") == "error" and any(f"[Errno {code}]" in error for code in _ENVIRONMENT_ERRNOS))


def read_failures(output_dir) -> dict[str, dict]:
    """{clip_id: last failure record} from every shard's failure log; a line cut off by a kill is skipped, and so
    are records of a full disk or a permission error that older versions logged as a video's fault."""
    failures = {}
    for log in storage.glob(storage.location(output_dir), "failures*.jsonl"):
        for line in storage.read_text(log).splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "path" in record and not _environment_record(record):
                failures[record.get("clip_id", record["path"])] = record
    return failures


def _append_failure(log, result):
    record = {"path": result["path"], "clip_id": result["clip_id"], "kind": result["kind"], "error": result["error"],
              **({"key": result["key"]} if result.get("key") else {})}  # key: `extract.failure_key`
    line = (json.dumps(record) + "\n").encode("utf-8")  # ASCII: file names that are not UTF-8 as \udcNN escapes
    if storage.is_remote(log):  # no append in object stores: the driver, its only writer, rewrites it whole
        before = storage.read_bytes(log) if storage.exists(log) else b""
        storage.write_bytes(log, before + (b"\n" if before and not before.endswith(b"\n") else b"") + line)
        return
    with open(log, "ab+") as handle:
        if handle.seek(0, os.SEEK_END) and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n":
            line = b"\n" + line  # a line torn by a kill must not swallow this record
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


# ----------------------------------------------------------------------------------------------------------------------
# The info file, the dataset card and the lock
# ----------------------------------------------------------------------------------------------------------------------


def _read_info(output_dir) -> dict:
    try:
        info = json.loads(storage.read_text(storage.join(storage.location(output_dir), INFO_FILE)))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


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
    output_dir = storage.location(output_dir)
    _write_text(storage.join(output_dir, INFO_FILE), json.dumps(info, indent=2) + "\n")
    if not storage.exists(storage.join(output_dir, "README.md")):  # a card the user edited stays
        _write_text(storage.join(output_dir, "README.md"), dataset_card(features["keypoints"].shape[1]))


# The card's `configs` make `datasets.load_dataset(OUTPUT_DIR)` (and the Hub, once pushed) read exactly the parts,
# whatever else lies in the folder.
def dataset_card(num_keypoints=NUM_STORED_KEYPOINTS) -> str:
    """The extraction folder's README: columns and the stored layout (160 stream keypoints, or all 543 Holistic
    landmarks with `--keep_landmarks all`)."""
    if num_keypoints == NUM_STORED_KEYPOINTS:
        layout = f"of the streams {STORED_STREAMS_TEXT}, in that order"
    else:  # the holistic layout: pose-format's component order
        layout = ("of every MediaPipe Holistic landmark in pose-format's order: "
                  + ", ".join(HOLISTIC_COMPONENT_STARTS) + " (`msmae extract --keep_landmarks all`)")
    return f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: {DATA_DIR}/*.parquet
---

# Sign-language poses extracted by `msmae extract`

MediaPipe Holistic landmarks, one row per clip. Columns: `keypoints` (frames, {num_keypoints}, 4) float32 x, y
(normalised to the frame), z, visibility {layout};
`keypoint_mask` (frames, {num_keypoints}) bool, True where detected; `fps`, `width`, `height`,
`num_frames`, `source` (the video or frame folder), `clip_id`, `start_frame` and `end_frame` (the clip's frames in
the source, end exclusive), and the clips' own columns (label, text, signer, ...). See `{INFO_FILE}`.

Load with `msmae.data.parts.load_extracted(folder)` or `datasets.load_dataset(folder, split="train")`.
"""


def _write_text(path, text):
    storage.write_bytes(path, text.encode("utf-8"), sync=False)


class ExtractionBusy(RuntimeError):
    """Another `msmae extract` is writing the same folder (and shard)."""


class _lock:
    """Exclusive locks on OUTPUT_DIR held while a run writes there (advisory flocks): a second run on the same folder
    and shard refuses instead of doing the same work, and so do an unsharded run beside sharded ones and runs of
    different shard counts (their shards hold other clips, so both would extract the same ones).

    `.msmae-extract.lock`: held exclusively by an unsharded run, shared by sharded ones;
    `.msmae-extract-of-<n>.lock`: shared by the runs of `n` shards (a run of another count checks it is free);
    `.msmae-extract-<i>-of-<n>.lock`: held exclusively by shard i."""

    def __init__(self, output_dir, shard_index, num_shards):
        self.handles = []
        if storage.is_remote(output_dir):  # object stores have no locks: see msmae.data.storage
            return
        try:
            import fcntl  # noqa: F401
        except ImportError:  # Windows: no lock
            return
        self.output_dir, self.shard = output_dir, (shard_index, num_shards)
        try:
            if num_shards == 1:
                self._take(".msmae-extract.lock", exclusive=True)
            else:
                self._take(".msmae-extract.lock", exclusive=False)
                self._take(f".msmae-extract-of-{num_shards}.lock", exclusive=False)
                self._refuse_other_counts(num_shards)
                self._take(f".msmae-extract-{shard_index}-of-{num_shards}.lock", exclusive=True)
        except BaseException:
            self.__exit__()
            raise

    def _open(self, name):
        # Held open read-only (flock needs no write access): an open writable file would keep its file system from
        # being remounted read-only.
        return open(os.open(Path(self.output_dir) / name, os.O_RDONLY | os.O_CREAT, 0o644))

    def _take(self, name, exclusive):
        import fcntl

        handle = self._open(name)
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(handle, name)
            handle.close()
            raise ExtractionBusy(self._busy(holder)) from None
        self.handles.append(handle)
        if exclusive:
            with open(Path(self.output_dir) / name, "r+") as writable:  # in place: the lock is on this file
                writable.truncate(0)
                writable.write(f"{os.getpid()}\n")

    def _holder(self, handle, name):
        """Who holds the lock `name` that `handle` could not take: "pid N" (an exclusive holder) or "a run split
        into N shards" (shared holders)."""
        import fcntl

        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # granted: the holders share it (sharded runs)
        except BlockingIOError:
            pid = handle.read().strip() or "?"
            return f"an unsharded msmae extract (pid {pid})" if name == ".msmae-extract.lock" and self.shard[1] > 1 \
                else f"another msmae extract (pid {pid})"
        fcntl.flock(handle, fcntl.LOCK_UN)
        counts = [path.name[len(".msmae-extract-of-"):-len(".lock")]
                  for path in Path(self.output_dir).glob(".msmae-extract-of-*.lock") if self._held(path.name)]
        return f"a run split into {' or '.join(counts) or 'several'} shards"

    def _held(self, name) -> bool:
        import fcntl

        handle = self._open(name)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            handle.close()
        return False

    def _refuse_other_counts(self, num_shards):
        for path in Path(self.output_dir).glob(".msmae-extract-of-*.lock"):
            count = path.name[len(".msmae-extract-of-"):-len(".lock")]
            if count != str(num_shards) and self._held(path.name):
                raise ExtractionBusy(self._busy(f"a run split into {count} shards"))

    def _busy(self, holder) -> str:
        index, count = self.shard
        this = f"shard {index} of {count}" if count > 1 else "this unsharded run"
        same = "the same shard" if holder.startswith("another") and count > 1 else "the same clips"
        return (f"{holder[0].upper()}{holder[1:]} is extracting into {printable(self.output_dir)}, and {this} would "
                f"extract {same} again: wait for it to finish (or stop it), then run this command again to do what "
                "is left (shards of one folder must all use the same --num_shards).")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.close()
        self.handles = []

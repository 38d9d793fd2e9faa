"""Window-level reads of pose datasets, compaction of extracted parts into shards, and streaming across nodes.

A pretraining clip is a 600-frame window of a recording that may last an hour. Decoding the stored row (what
`dataset[i]` does) costs the whole recording; `PoseRows` reads what a clip uses straight from the Arrow buffers
of a memory-mapped dataset instead:

- a row's length comes from the list offsets of its `keypoints` (no keypoint is read);
- `MSMAEPoseProcessor.frame_range` chooses the frames from that length and the clip's seeded generator;
- `PoseRow.read_frames(start, stop)` returns those frames as a `SignPose` whose keypoints are a zero-copy view of
  the file's float32 values and whose mask is unpacked from the Arrow bitmap of those frames only;
- the processor touches the shoulders of the window (normalisation) and the picked frames' keypoints of the
  model's streams; nothing else is copied.

Rows are located through the dataset's indices mapping, so `select`, `shuffle`, splits and concatenations work.

`compact` rewrites the per-video parts of `msmae extract` (or any pose dataset) as a few large Arrow shards that
are memory-mapped where they lie, with a dataset card; `push_compacted` puts them on the Hub as Parquet shards.
`stream_for_node` gives each node of a multi-node run its share of a streamed corpus.
"""

import logging
import math
import operator
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..keypoint_layout import KEYPOINT_LAYOUTS, NUM_STORED_KEYPOINTS, STORED_STREAMS_TEXT
from ..pose_io import SignPose
from .schema import ROW_COLUMNS

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------------
# Reading rows and frame ranges
# ----------------------------------------------------------------------------------------------------------------------


def _storage(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column without its `datasets` extension type (Array2D/Array3D are nested lists underneath)."""
    if isinstance(column.type, pa.ExtensionType):
        return column.cast(column.type.storage_type)
    return column


def _child_range(array, start, stop):
    """`(child, first, last)`: the values of list elements `[start, stop)` of `array` are `child[first:last]`."""
    if isinstance(array, pa.FixedSizeListArray):
        size = array.type.list_size
        return array.values, (array.offset + start) * size, (array.offset + stop) * size
    if isinstance(array, (pa.ListArray, pa.LargeListArray)):
        offsets = array.offsets  # accounts for the array's own offset; values index `array.values`
        return array.values, offsets[start].as_py(), offsets[stop].as_py()
    raise ValueError(
        f"keypoints or their mask are stored as Arrow type {array.type}, not as nested lists; rebuild the dataset in "
        "msmae's schema (msmae.data.schema.row_features)."
    )


def _bools(array, start, stop) -> np.ndarray:
    """`array[start:stop]` as a numpy bool array, unpacking only those bits of a boolean array."""
    if not pa.types.is_boolean(array.type):
        return array.slice(start, stop - start).to_numpy(zero_copy_only=False).astype(bool)
    first = array.offset + start
    low = first // 8
    bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)[low : -(-(array.offset + stop) // 8)]
    skip = first - low * 8
    return np.unpackbits(bits, bitorder="little")[skip : skip + stop - start].view(bool)


class _Columns:
    """Columns of an Arrow table, located by row without decoding anything (chunk bounds computed once)."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.names = tuple(table.column_names)
        self._columns = {}

    def locate(self, name: str, row: int):
        """`(array, position)`: row `row` of column `name` is `array[position]` (one chunk's storage)."""
        if name not in self._columns:
            column = _storage(self.table.column(name))
            bounds = np.cumsum([0] + [len(chunk) for chunk in column.iterchunks()])
            self._columns[name] = (column, bounds)
        column, bounds = self._columns[name]
        chunk = int(np.searchsorted(bounds, row, side="right")) - 1
        return column.chunk(chunk), row - int(bounds[chunk])


class PoseRow(Mapping):
    """One stored pose row (msmae's schema, `msmae.data.schema.row_features`), read lazily.

    `row.num_frames` reads list offsets only; `row.read_frames(start, stop)` reads frames `[start, stop)` as a
    `SignPose` (keypoints: a read-only view of the Arrow values); `row[column]` reads one column's value
    (`row["keypoints"]` reads every frame, for code that wants the whole clip).
    """

    def __init__(self, columns: _Columns, row: int):
        self._columns = columns
        self._row = row

    @classmethod
    def from_table(cls, table: pa.Table, row: int = 0) -> "PoseRow":
        """Row `row` of an Arrow table (e.g. a streamed dataset's rows in the `"arrow"` format)."""
        return cls(_Columns(table), row)

    def _array(self, name):
        try:
            return self._columns.locate(name, self._row)
        except KeyError as error:
            raise KeyError(name) from error

    def __getitem__(self, name):
        if name in ("keypoints", "keypoint_mask"):
            pose = self.read_frames(0, self.num_frames)
            return pose.keypoints if name == "keypoints" else pose.keypoint_mask
        array, position = self._array(name)
        return array[position].as_py()

    def __iter__(self):
        return iter(self._columns.names)

    def __len__(self):
        return len(self._columns.names)

    def get(self, name, default=None):
        return self[name] if name in self._columns.names else default

    @property
    def num_frames(self) -> int:
        array, position = self._array("keypoints")
        _, first, last = _child_range(array, position, position + 1)
        return last - first

    def read_frames(self, start: int, stop: int) -> SignPose:
        """Frames `[start, stop)` as a `SignPose`, reading only their bytes."""
        source = str(self.get("source") or "")
        keypoints, position = self._array("keypoints")
        frames, first, last = _child_range(keypoints, position, position + 1)
        if not 0 <= start <= stop <= last - first:
            raise ValueError(f"{source or 'row'}: frames [{start}, {stop}) are outside its {last - first} frames.")
        count = stop - start
        points, low, high = _child_range(frames, first + start, first + stop)
        values, value_low, value_high = _child_range(points, low, high)
        masks, mask_position = self._array("keypoint_mask")
        mask_frames, mask_first, _ = _child_range(masks, mask_position, mask_position + 1)
        mask_points, mask_low, mask_high = _child_range(mask_frames, mask_first + start, mask_first + stop)
        # 160 keypoints per frame, or 543 for rows extracted with every Holistic landmark (`--keep_landmarks all`).
        size = (high - low) // count if count else NUM_STORED_KEYPOINTS
        expected = count * size
        if (size not in KEYPOINT_LAYOUTS.values()
                or (high - low, value_high - value_low, mask_high - mask_low) != (expected, 4 * expected, expected)):
            raise ValueError(
                f"{source or 'row'}: keypoints are not stored as (frames, {NUM_STORED_KEYPOINTS}, 4) with a "
                f"(frames, {NUM_STORED_KEYPOINTS}) mask (or 543 keypoints); rebuild the dataset in msmae's schema "
                "(msmae.data.schema.row_features)."
            )
        xyzv = values.slice(value_low, value_high - value_low).to_numpy(zero_copy_only=False)
        return SignPose(
            keypoints=xyzv.reshape(count, size, 4),
            keypoint_mask=_bools(mask_points, mask_low, mask_high).reshape(count, size),
            fps=float(self.get("fps") or 0.0),
            width=int(self.get("width") or 0),
            height=int(self.get("height") or 0),
            source=source,
        )


class PoseRows:
    """The rows of a `datasets.Dataset` in msmae's schema as lazily read `PoseRow`s: `rows[i]` decodes nothing.

    Works on memory-mapped and in-memory datasets, after `select`, `shuffle`, `train_test_split` and
    `concatenate_datasets` (rows are found through the indices mapping). Pickles as the dataset itself (data-loader
    workers re-open the memory map, they never receive the data).
    """

    def __init__(self, dataset):
        missing = [c for c in ("keypoints", "keypoint_mask") if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"The dataset has no {' or '.join(missing)} column (columns: {dataset.column_names}); it is not a "
                "pose dataset in msmae's schema. Build one with `msmae extract` or msmae.data.loading."
            )
        self.dataset = dataset
        self._state = None

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index) -> PoseRow:
        index = operator.index(index)
        if not 0 <= index < len(self.dataset):
            raise IndexError(f"Row {index} is out of range for a dataset of {len(self.dataset)} rows.")
        if self._state is None:
            # `_indices` is the dataset's row mapping after select/shuffle (None when rows are in table order).
            indices = self.dataset._indices
            self._state = (_Columns(self.dataset.data.table), None if indices is None else indices.column(0))
        columns, indices = self._state
        return PoseRow(columns, index if indices is None else indices[index].as_py())

    def __getstate__(self):
        return {"dataset": self.dataset, "_state": None}  # the Arrow arrays would pickle their data


# ----------------------------------------------------------------------------------------------------------------------
# Compaction into shards, the Hub, and multi-node streaming
# ----------------------------------------------------------------------------------------------------------------------

MAX_FILES_PER_FOLDER = 1000
CARD_FILE = "README.md"


def compact(source, output_dir, *, max_shard_size="500MB"):
    """Rewrite a pose dataset as a few large Arrow shards per split, with a dataset card.

    Args:
        source: the folder `msmae extract` wrote (one Parquet part per video), anything else
            `msmae.data.loading.load_sign_dataset` reads, or a `datasets.Dataset`/`DatasetDict`.
        output_dir: a new (or empty) folder, or an object-store URL (s3://...; `msmae.data.storage`). It gets
            `DatasetDict.save_to_disk`'s layout:
            `train/data-00000-of-00012.arrow` ... (each split's shards in its own folder), `dataset_dict.json`,
            and `README.md`, a card whose `configs` also let `datasets.load_dataset(output_dir)` read it.
        max_shard_size: shard size, e.g. `"500MB"`; raised where a split would need more than
            `MAX_FILES_PER_FOLDER` shards.

    Why Arrow and not Parquet: Arrow files are memory-mapped where they lie (`load_sign_dataset` and
    `load_from_disk` copy nothing), and a frame range of a row is a slice of the mapped bytes, so a 600-frame
    window reads about 600 frames whatever the video's length (`PoseRows`). A Parquet row is compressed and
    encoded page by page, and `datasets` first converts Parquet into an Arrow copy in its cache anyway.
    `push_compacted` converts the shards to Parquet for the Hub, whose viewer and loaders expect it.

    Parts read from Parquet are converted in a temporary cache next to `output_dir`, deleted afterwards (the
    disk holds the corpus about twice while this runs). Returns the compacted `DatasetDict`, memory-mapped.
    """
    from datasets import Dataset, DatasetDict, load_from_disk
    from datasets.utils.py_utils import convert_file_size_to_int

    from . import storage
    from .loading import load_sign_dataset

    output_dir = storage.location(output_dir)
    remote = storage.is_remote(output_dir)
    if storage.glob(output_dir, "*") if remote else (output_dir.exists() and any(output_dir.iterdir())):
        raise FileExistsError(f"{output_dir} is not empty; give `compact` a new folder for the shards.")
    limit = convert_file_size_to_int(max_shard_size)
    if not remote:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
    # The cache for parts read from Parquet: beside the output, or in the local temporary folder for a URL.
    cache_options = {} if remote else {"dir": output_dir.parent, "prefix": f".{output_dir.name}-cache-"}
    with tempfile.TemporaryDirectory(**cache_options) as cache:
        dataset = source if isinstance(source, (Dataset, DatasetDict)) else load_sign_dataset(str(source), cache_dir=cache)
        if not isinstance(dataset, (Dataset, DatasetDict)):
            raise ValueError(f"{source} loaded as {type(dataset).__name__}; `compact` needs a dataset on disk, not a stream.")
        splits = dataset if isinstance(dataset, DatasetDict) else DatasetDict({"train": dataset})
        for name, split in splits.items():
            PoseRows(split)  # checks the schema
            if len(split) == 0:
                raise ValueError(f"The {name!r} split of {source} has no rows; there is nothing to compact.")
        num_shards = {}
        for name, split in splits.items():
            size = split.data.nbytes * len(split) / max(split.data.num_rows, 1)
            num_shards[name] = min(max(1, math.ceil(size / limit)), MAX_FILES_PER_FOLDER, len(split))
            if size / num_shards[name] > 1.5 * limit:
                logger.warning("Split %s: %d shards of about %.0f MB (at most %d files per folder).",
                               name, num_shards[name], size / num_shards[name] / 1e6, MAX_FILES_PER_FOLDER)
        splits.save_to_disk(str(output_dir), num_shards=num_shards)
    compacted = load_from_disk(str(output_dir))
    card = dataset_card(compacted, source=str(source), max_shard_size=max_shard_size)
    storage.write_bytes(storage.join(output_dir, CARD_FILE), card.encode("utf-8"), sync=False)
    return compacted


def _split_summary(split) -> dict:
    lengths = split.select_columns([c for c in ("num_frames", "fps") if c in split.column_names]).with_format("numpy")[:]
    frames = lengths.get("num_frames")
    fps = lengths.get("fps")
    seconds = None
    if frames is not None and fps is not None and (fps > 0).all():
        seconds = float((frames / fps).sum())
    return {"rows": len(split), "frames": None if frames is None else int(frames.sum()), "seconds": seconds}


def dataset_card(dataset, *, source="", max_shard_size="", data_files=None) -> str:
    """The `README.md` of a compacted pose dataset (`DatasetDict`): what it holds and how to load it.

    `data_files` ({split: glob}) fills the card's `configs`; default: `save_to_disk`'s `SPLIT/data-*.arrow`.
    """
    data_files = data_files or {name: f"{name}/data-*.arrow" for name in dataset}
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for name, pattern in data_files.items():
        lines += [f"  - split: {name}", f"    path: {pattern}"]
    lines += ["tags:", "- sign-language", "- pose-estimation", "- mediapipe", "---", "",
              "# Sign-language poses (MediaPipe Holistic) in msmae's row schema", "",
              f"Compacted by `msmae compact`{f' from `{source}`' if source else ''}"
              f"{f' into shards of about {max_shard_size}' if max_shard_size else ''}. One row per clip.", "",
              "| split | clips | frames | hours |", "| --- | ---: | ---: | ---: |"]
    for name, split in dataset.items():
        summary = _split_summary(split)
        hours = "" if summary["seconds"] is None else f"{summary['seconds'] / 3600:.2f}"
        lines.append(f"| {name} | {summary['rows']} | {summary['frames'] or ''} | {hours} |")
    first = next(iter(dataset.values()))
    lines += ["", "## Columns", "",
              f"- `keypoints` (frames, {NUM_STORED_KEYPOINTS}, 4) float32: x, y normalised to the frame (0-1), z, "
              f"visibility of the streams {STORED_STREAMS_TEXT}, in that order; undetected keypoints are 0.",
              f"- `keypoint_mask` (frames, {NUM_STORED_KEYPOINTS}) bool: True where MediaPipe detected the keypoint.",
              "- `fps`, `width`, `height` (pixels, for the aspect correction), `num_frames`, `source` (the video), "
              "and where present `clip_id`, `start_frame`, `end_frame` (the clip inside its source)."]
    others = [c for c in first.column_names if c not in ROW_COLUMNS]
    for column in others:
        lines.append(f"- `{column}`: {first.features[column]!r}")
    lines += ["", "## Loading", "", "```python",
              "from msmae.data.loading import load_sign_dataset",
              "", "corpus = load_sign_dataset(\"PATH_OR_REPO\")  # a local folder is memory-mapped where it lies",
              "```", "",
              "A pretraining clip reads only its window's frames (`msmae.data.windows.PoseRows`). For several nodes, "
              "stream the corpus and give each node its share with `msmae.data.windows.stream_for_node`.", ""]
    return "\n".join(lines)


def hub_folder(compacted_dir, staging_dir) -> Path:
    """Write what `push_compacted` uploads into `staging_dir`: each split as Parquet shards
    `data/SPLIT-00000-of-0000N.parquet` (as many as its Arrow shards) and the card, its `configs` pointing at them.
    """
    from datasets import load_from_disk

    compacted_dir, staging_dir = Path(compacted_dir), Path(staging_dir)
    dataset = load_from_disk(str(compacted_dir))
    (staging_dir / "data").mkdir(parents=True, exist_ok=True)
    for name, split in dataset.items():
        num_shards = len(split.cache_files)
        row_bytes = split.data.nbytes / max(split.data.num_rows, 1)
        rows_per_group = max(1, int(100e6 // max(row_bytes, 1)))  # Parquet row groups of about 100 MB
        for index in range(num_shards):
            shard = split.shard(num_shards, index, contiguous=True)
            shard.to_parquet(str(staging_dir / "data" / f"{name}-{index:05d}-of-{num_shards:05d}.parquet"),
                             batch_size=rows_per_group)
    card = dataset_card(dataset, data_files={name: f"data/{name}-*" for name in dataset})
    (staging_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return staging_dir


def push_compacted(compacted_dir, repo_id, *, token=None, private=None, revision=None):
    """Upload a `compact`ed dataset to the Hub dataset repository `repo_id` (created if needed) as Parquet
    shards with its card (`hub_folder`); returns the commit. Needs network and a token with write access."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging:
        hub_folder(compacted_dir, staging)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=staging, revision=revision,
                                 commit_message="Upload sign-language poses compacted by msmae")


def stream_for_node(dataset, rank=None, world_size=None, *, num_shards=None):
    """This node's share of a corpus for multi-node training, as an `IterableDataset`.

    `dataset` is a `datasets.IterableDataset` or a `Dataset` (turned into a stream of `num_shards` shards, by
    default its Arrow files' count rounded up to a multiple of `world_size`). `rank`/`world_size` default to the
    `RANK`/`WORLD_SIZE` environment variables that `torchrun` and `accelerate launch` set.

    Uses `datasets.distributed.split_dataset_by_node`: when the stream's shard count is a multiple of
    `world_size`, each node reads whole shards (only its own files); otherwise every node reads every row and
    keeps one in `world_size`. Either way the nodes' rows are disjoint and together cover the corpus. The
    trainer must then neither dispatch batches from the main process nor split each node's part again: the
    pretraining recipe does this with `--streaming` on several processes (`msmae.training.trainer`).
    """
    from datasets import Dataset
    from datasets.distributed import split_dataset_by_node

    rank = int(os.environ.get("RANK", 0)) if rank is None else int(rank)
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else int(world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank {rank} of world_size {world_size}.")
    if isinstance(dataset, Dataset):
        if num_shards is None:
            files = max(len(dataset.cache_files), 1)
            num_shards = min(len(dataset), math.ceil(files / world_size) * world_size)
        dataset = dataset.to_iterable_dataset(num_shards=num_shards)
    if dataset.num_shards % world_size:
        logger.warning("%d shards for %d nodes: every node reads every row (keeping 1 in %d); use a multiple of %d "
                       "shards to read only each node's files.", dataset.num_shards, world_size, world_size, world_size)
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)

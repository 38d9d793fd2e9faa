"""Pose datasets for training: builders from the formats people have, loading, and splits.

Dataset schema: one row per clip, the stored row of `msmae.pose_io` (`ROW_COLUMNS`, typed by `row_features`: what
`SignPose.to_example()` returns and `msmae extract` writes), then optional columns:

| column          | feature                               | meaning                                                        |
| --------------- | ------------------------------------- | -------------------------------------------------------------- |
| `label`         | `ClassLabel`                          | isolated sign (gloss) for recognition                          |
| `text`          | `string`                              | spoken-language sentence for translation                       |
| `signer`        | `string`                              | signer id: splits keep each signer in one split                |
| `split`         | `string`                              | a predefined split (`train`, `validation`, `test`)             |

Builders write the rows through `Dataset.from_generator`, i.e. to Arrow files in the datasets cache that are
memory-mapped, never held in RAM; a second build with the same files (same paths, sizes and modification times)
reuses the cache. Unreadable clips (an empty `.pose` file, a layout that cannot be mapped) are logged and skipped.
"""

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    IterableDatasetDict,
    Value,
    concatenate_datasets,
    load_dataset,
    load_from_disk,
)

from ..pose_io import POSE_SUFFIXES, VIDEO_SUFFIXES
from ..clips import load_pose
from .schema import ROW_COLUMNS, row_features
from .discovery import find_clips
from .manifest import RANGE_COLUMNS, SPLIT_NAMES, read_manifest

logger = logging.getLogger(__name__)

# Errors the readers raise for a bad clip (see msmae.pose_io): a build skips the clip and says why.
_CLIP_ERRORS = (ValueError, OSError)


def pose_features(label_names=None, *, text=False, signer=False, split=False) -> Features:
    """The `Features` of the stored row (`msmae.data.schema.row_features`) with the optional columns asked for."""
    features = {}
    if label_names is not None:
        features["label"] = ClassLabel(names=list(label_names))
    if text:
        features["text"] = Value("string")
    if signer:
        features["signer"] = Value("string")
    if split:
        features["split"] = Value("string")
    return row_features(features)


def _file_stamp(path) -> tuple:
    """(size, mtime) of a file, or of a folder's files: part of the cache key, so edited data is re-read."""
    path = Path(path)
    if path.is_dir():
        stats = [p.stat() for p in sorted(path.iterdir()) if p.is_file()]
        return (sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0))
    if path.exists():
        stat = path.stat()
        return (stat.st_size, stat.st_mtime_ns)
    return (0, 0)


def _generate_rows(records, optional_columns, load_kwargs):
    skipped = 0
    for record in records:
        try:
            pose = load_pose(record["path"], **load_kwargs)
            if pose.num_frames == 0:
                raise ValueError(f"{record['path']} has no frames")
        except _CLIP_ERRORS as error:
            skipped += 1
            logger.warning("Skipping clip %s: %s", record["path"], error)
            continue
        row = pose.to_example()
        row["source"] = str(record["path"])
        for column in optional_columns:
            row[column] = record.get(column)
        yield row
    if skipped:
        logger.warning("Skipped %d unreadable clip(s) of %d.", skipped, len(records))


def dataset_from_records(
    records: Iterable[dict], *, label_names=None, cache_dir=None, num_proc=None, load_kwargs=None
) -> Dataset:
    """A dataset from clip records: dicts with `path` (anything `msmae.clips.load_pose` reads: a `.pose`, `.npy`,
    `.npz` or ASL-App `.json` file, a folder of per-frame `.npy` vectors, or a video, which runs MediaPipe) and
    optionally `label`, `text`, `signer`, `split`.

    Labels become a `ClassLabel` with `label_names` (default: the sorted distinct labels). `num_proc` reads clips
    in parallel (worth it for videos).
    """
    records = [dict(record, path=str(record["path"])) for record in records]
    if not records:
        raise ValueError("No clips to build a dataset from: the list of files is empty.")
    optional = [c for c in ("label", "text", "signer", "split") if any(r.get(c) not in (None, "") for r in records)]
    if "label" in optional:
        missing = [r["path"] for r in records if r.get("label") in (None, "")]
        if missing:
            raise ValueError(f"{len(missing)} clip(s) have no label (e.g. {missing[0]}); label every clip or none.")
        if label_names is None:
            label_names = sorted({str(r["label"]) for r in records})
        for record in records:
            record["label"] = str(record["label"])
    for record in records:
        record["stamp"] = _file_stamp(record["path"])  # only for the cache key
    features = pose_features(
        label_names if "label" in optional else None,
        text="text" in optional,
        signer="signer" in optional,
        split="split" in optional,
    )
    try:
        dataset = Dataset.from_generator(
            _generate_rows,
            features=features,
            cache_dir=cache_dir,
            num_proc=num_proc if num_proc and num_proc > 1 else None,
            gen_kwargs={"records": records, "optional_columns": tuple(optional), "load_kwargs": dict(load_kwargs or {})},
        )
    except ValueError as error:  # datasets refuses to write an empty split
        if "corresponds to no data" not in str(error):
            raise
        dataset = None
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"None of the {len(records)} clips could be read (see the warnings above).")
    return dataset


def dataset_from_folder(folder, *, label_from_parent=False, cache_dir=None, num_proc=None) -> Dataset:
    """A dataset of every clip under `folder` (see `msmae.data.discovery.find_clips`), e.g. SignSuisse's `.pose`
    files.

    `label_from_parent=True` labels each clip with the name of the folder that holds it (`<gloss>/<clip>.pose`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder: {folder}")
    clips = [Path(p) for p in find_clips(folder)]
    if not clips:
        raise ValueError(
            f"{folder} holds no clips ({', '.join(POSE_SUFFIXES + VIDEO_SUFFIXES)} files or per-frame .npy folders)."
        )
    records = [{"path": p, "label": p.parent.name if label_from_parent else None} for p in clips]
    return dataset_from_records(records, cache_dir=cache_dir, num_proc=num_proc)


def dataset_from_msl150(root, *, cache_dir=None) -> Dataset:
    """MSL-150 (Mexican Sign Language): `data/sample_npy/<gloss>/<sample>/<frame>.npy`, labelled by gloss.

    All samples come from one signer, so no signer column is written (splits are stratified by gloss).
    """
    samples_root = Path(root) / "data" / "sample_npy"
    if not samples_root.is_dir():
        samples_root = Path(root)
    records = [
        {"path": sample, "label": gloss.name}
        for gloss in sorted(p for p in samples_root.iterdir() if p.is_dir())
        for sample in sorted((p for p in gloss.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name))
    ]
    if not records:
        raise ValueError(f"{root} has no MSL-150 samples (expected data/sample_npy/<gloss>/<sample>/<frame>.npy).")
    return dataset_from_records(records, cache_dir=cache_dir)


def dataset_from_asl_app(root, *, cache_dir=None) -> Dataset:
    """ASL-App: `signs/<sign>.json` landmark sequences, one per sign, labelled by sign."""
    signs = sorted((Path(root) / "signs").glob("*.json"))
    if not signs:
        raise ValueError(f"{root} has no ASL-App signs (expected signs/<sign>.json).")
    return dataset_from_records([{"path": p, "label": p.stem} for p in signs], cache_dir=cache_dir)


def dataset_from_manifest(manifest, *, cache_dir=None, num_proc=None) -> Dataset:
    """A dataset from a manifest (`msmae.data.manifest.read_manifest`: CSV, TSV, JSON or JSON lines) of whole clips:
    a `path` column (videos or pose files, relative to the manifest) and optional `label`, `text`, `signer` and
    `split`. Videos run through MediaPipe Holistic; the result is cached, so a second build does not re-extract.
    Clips cut from long videos (`start`/`end` columns) are extracted with `msmae extract --manifest` instead."""
    rows = read_manifest(manifest)
    ranged = sorted({key for row in rows for key in RANGE_COLUMNS if row.get(key) is not None})
    if ranged:
        raise ValueError(f"{manifest} places clips inside videos ({', '.join(ranged)} columns); extract them with "
                         f"`msmae extract --manifest {manifest} --output_dir OUT`, then load OUT.")
    for number, row in enumerate(rows, 1):
        if not os.path.exists(row["path"]):
            raise FileNotFoundError(f"Manifest {manifest}, row {number}: no such file {row['path']}.")
    return dataset_from_records(rows, cache_dir=cache_dir, num_proc=num_proc)


def _data_files(folder: Path, suffix: str) -> list[str]:
    return sorted(str(p) for p in folder.rglob(f"*{suffix}") if not any(part.startswith(".") for part in p.parts))


def load_sign_dataset(
    source, *, name=None, split=None, streaming=False, cache_dir=None, token=None, revision=None, num_proc=None
):
    """Load pose clips in the schema above from wherever they are.

    `source` is one of:
    - a folder written by `msmae extract` (`msmae.data.parts.load_extracted`) or by `Dataset.save_to_disk` /
      `DatasetDict.save_to_disk`;
    - a folder or file of Parquet (`.parquet`) or Arrow (`.arrow`) shards;
    - MSL-150 (`data/sample_npy/...`) or ASL-App (`signs/*.json`) as distributed;
    - any other folder of clips (`.pose`, `.npy`, `.npz`, `.json`, videos, per-frame `.npy` folders);
    - a CSV manifest (`dataset_from_manifest`);
    - an object-store URL (`s3://bucket/prefix`, `gs://...`: `msmae.data.storage`, credentials from the
      environment) of an `msmae extract` folder, a `save_to_disk` folder, or Parquet/Arrow shards (read as they
      are needed with `streaming=True`);
    - otherwise a Hugging Face Hub dataset id (`name` is its configuration, `revision` its revision).

    Returns a `Dataset`/`DatasetDict` (memory-mapped Arrow), or with `streaming=True` an `IterableDataset`/
    `IterableDatasetDict` that reads as it goes (for corpora larger than memory or disk). `split` picks one split.
    """
    from . import storage

    path = Path(str(source))
    if storage.is_remote(source):
        dataset = _load_remote(str(source).rstrip("/"), cache_dir=cache_dir, streaming=streaming)
    elif path.exists():
        dataset = _load_local(path, cache_dir=cache_dir, num_proc=num_proc, streaming=streaming)
    else:
        if str(source).startswith((".", "/", "~")) or str(source).count("/") > 1:
            raise FileNotFoundError(f"No such dataset folder or file: {source}")
        dataset = load_dataset(
            str(source), name, split=None, streaming=streaming, cache_dir=cache_dir, token=token, revision=revision
        )
    if streaming and isinstance(dataset, (Dataset, DatasetDict)):
        dataset = (
            IterableDatasetDict({k: v.to_iterable_dataset() for k, v in dataset.items()})
            if isinstance(dataset, DatasetDict)
            else dataset.to_iterable_dataset()
        )
    if split is not None:
        if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            if split not in dataset:
                raise ValueError(f"{source} has no split {split!r}; it has {list(dataset)}.")
            return dataset[split]
        if split != "train":
            raise ValueError(f"{source} is a single unsplit dataset; ask for split='train' or none.")
    return dataset


def _load_remote(url, *, cache_dir, streaming):
    """A dataset in object storage: no local copy when streaming (Parquet parts and shards are read as needed)."""
    from . import storage

    if storage.exists(storage.join(url, "dataset_dict.json")) or storage.exists(storage.join(url, "state.json")):
        return load_from_disk(url)
    if url.lower().endswith((".parquet", ".arrow")):
        files = [url] if storage.exists(url) else []
    elif storage.exists(storage.join(url, "extraction_info.json")):  # written by `msmae extract`
        files = [str(p) for p in storage.glob(storage.join(url, "data"), "*.parquet")]
    else:
        files = [str(p) for p in storage.glob(url, "**/*.parquet")] or [str(p) for p in storage.glob(url, "**/*.arrow")]
    if not files:
        raise FileNotFoundError(f"No dataset at {url}: expected an msmae extract folder, a save_to_disk folder or "
                                ".parquet/.arrow files there. Check the URL and that this machine's credentials "
                                "(e.g. AWS_PROFILE, AWS_ENDPOINT_URL) reach it.")
    kind = "arrow" if files[0].lower().endswith(".arrow") else "parquet"
    return load_dataset(kind, data_files={"train": files}, split="train", cache_dir=cache_dir, streaming=streaming)


def _load_local(path: Path, *, cache_dir, num_proc, streaming):
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".csv", ".tsv", ".jsonl"):
            return dataset_from_manifest(path, cache_dir=cache_dir, num_proc=num_proc)
        if suffix in (".parquet", ".arrow"):
            kind = suffix.lstrip(".")
            return load_dataset(kind, data_files=str(path), split="train", cache_dir=cache_dir, streaming=streaming)
        return dataset_from_records([{"path": path}], cache_dir=cache_dir)
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return load_from_disk(str(path))
    if (path / "extraction_info.json").exists():  # written by `msmae extract`
        from .parts import load_extracted

        dataset = load_extracted(path, cache_dir=cache_dir)
        return dataset.to_iterable_dataset() if streaming else dataset
    if (path / "data" / "sample_npy").is_dir():
        return dataset_from_msl150(path, cache_dir=cache_dir)
    if (path / "signs").is_dir() and (path / "metadata.json").exists():
        return dataset_from_asl_app(path, cache_dir=cache_dir)
    for suffix in (".parquet", ".arrow"):
        files = _data_files(path, suffix)
        if files:
            splits = {name: [f for f in files if _split_of(f) == name] for name in SPLIT_NAMES}
            splits = {name: group for name, group in splits.items() if group}
            unsplit = [f for f in files if _split_of(f) is None]
            data_files = {"train": files} if unsplit or not splits else splits
            return load_dataset(suffix.lstrip("."), data_files=data_files, cache_dir=cache_dir, streaming=streaming)
    return dataset_from_folder(path, cache_dir=cache_dir, num_proc=num_proc)


def _split_of(file_name: str):
    """The split a shard belongs to by its name (`train-00000-of-00004.parquet`, `test/...`), or None."""
    parts = Path(file_name).parts
    for name in SPLIT_NAMES:
        if any(part == name or part.startswith(f"{name}-") or part.startswith(f"{name}.") for part in parts[-2:]):
            return name
    return None


def load_pose_corpus(sources, *, name=None, streaming=False, cache_dir=None, token=None, revision=None, num_proc=None):
    """Several sources (see `load_sign_dataset`) as one unlabelled pretraining corpus: the `train` split of each
    (or its only split), reduced to the core columns and concatenated. `name` is a Hub dataset's configuration."""
    parts = []
    for source in sources:
        dataset = load_sign_dataset(
            source, name=name, streaming=streaming, cache_dir=cache_dir, token=token, revision=revision, num_proc=num_proc
        )
        if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
        missing = [c for c in ("keypoints", "keypoint_mask") if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"{source} has no {' or '.join(missing)} column; it is not a pose dataset in msmae's schema "
                f"(columns: {dataset.column_names}). Build one with `msmae extract` or msmae.data.loading."
            )
        dataset = dataset.select_columns([c for c in ROW_COLUMNS if c in dataset.column_names])
        if dataset.features is not None and dataset.features != pose_features():
            dataset = dataset.cast(Features({c: pose_features()[c] for c in dataset.column_names}))
        parts.append(dataset)
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def split_dataset(
    dataset: Dataset, *, validation_size=0.1, test_size=0.1, seed=42, signer_column="signer", label_column="label"
) -> DatasetDict:
    """Train / validation / test splits, by the first rule that applies:

    1. a `split` column: its values (`train`, `validation`, `test`) are used as they are;
    2. signer ids in `signer_column` with at least one signer per split: whole signers go to one split
       (signer-independent evaluation), signers drawn in a seeded order until each split holds about its share;
    3. a `ClassLabel` in `label_column`: stratified by class (each class in every split in proportion);
    4. otherwise a seeded random split.

    `validation_size` and `test_size` are fractions of all clips; 0 leaves that split out.
    """
    if not 0 <= validation_size < 1 or not 0 <= test_size < 1 or validation_size + test_size >= 1:
        raise ValueError(f"validation_size ({validation_size}) and test_size ({test_size}) must be fractions summing below 1.")
    if "split" in dataset.column_names:
        values = dataset["split"]
        unknown = sorted({v for v in values if v not in SPLIT_NAMES})
        if unknown:
            raise ValueError(f"The `split` column holds {unknown}; allowed values are {SPLIT_NAMES}.")
        splits = {name: [i for i, v in enumerate(values) if v == name] for name in SPLIT_NAMES}
        logger.info("Using the dataset's own `split` column.")
        return DatasetDict({name: dataset.select(index) for name, index in splits.items() if index})

    wanted = {"test": test_size, "validation": validation_size}
    wanted = {name: size for name, size in wanted.items() if size > 0}
    if signer_column in dataset.column_names:
        signers = dataset[signer_column]
        distinct = sorted({s for s in signers if s is not None})
        if len(distinct) >= len(wanted) + 1:
            return _split_by_signer(dataset, signers, distinct, wanted, seed)
        logger.warning("Only %d signer(s): splitting clips, not signers.", len(distinct))

    split = {"train": dataset}
    remaining = 1.0
    for name, size in wanted.items():
        fraction = size / remaining
        stratify = label_column if isinstance(dataset.features.get(label_column), ClassLabel) else None
        try:
            parts = split["train"].train_test_split(test_size=fraction, seed=seed, stratify_by_column=stratify)
        except ValueError as error:  # too few clips per class to stratify
            logger.warning("Cannot stratify the %s split by %s (%s); splitting at random.", name, label_column, error)
            parts = split["train"].train_test_split(test_size=fraction, seed=seed)
        split["train"], split[name] = parts["train"], parts["test"]
        remaining -= size
    return DatasetDict({name: split[name] for name in SPLIT_NAMES if name in split})


def _split_by_signer(dataset, signers, distinct, wanted, seed) -> DatasetDict:
    counts = {s: 0 for s in distinct}
    for s in signers:
        if s is not None:
            counts[s] += 1
    order = [distinct[i] for i in np.random.default_rng(seed).permutation(len(distinct))]
    names = list(wanted)
    assignment = {}
    for k, name in enumerate(names):
        target, taken = wanted[name] * len(signers), 0
        # Keep a signer for every later split and one for train.
        while len(order) > len(names) - k:
            signer = order.pop(0)
            assignment[signer] = name
            taken += counts[signer]
            if taken >= target:
                break
    index = {name: [] for name in SPLIT_NAMES}
    for i, s in enumerate(signers):
        index[assignment.get(s, "train")].append(i)
    logger.info(
        "Signer-independent split: %s",
        {name: sorted({signers[i] for i in rows}) for name, rows in index.items() if rows},
    )
    return DatasetDict({name: dataset.select(rows) for name, rows in index.items() if rows})

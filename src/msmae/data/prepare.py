"""`msmae prepare DATASET ROOT --output_dir OUT`: a corpus as its publishers distribute it -> a pose `DatasetDict`.

`prepare(dataset, root, output_dir, **options)` reads the corpus's index (`msmae.data.corpora`), extracts every
clip with MediaPipe Holistic (`msmae.data.extract.run_extraction`: resumable, each source video decoded once for all
of its clips), then writes the official splits:

    OUT/dataset_dict.json, OUT/<split>/     the `datasets.DatasetDict` (`DatasetDict.save_to_disk`): load it with
                                            `datasets.load_from_disk(OUT)` or `msmae.data.loading.load_sign_dataset`
    OUT/README.md                           dataset card: corpus, command, splits, columns, missing sources
    OUT/prepare_info.json                   corpus, root, options, rows per split, missing and failed counts
    OUT/missing.txt                         the source files the annotations name but that are not on disk
    OUT/extracted/                          the extraction run (one Parquet part per clip, failures.jsonl); keep
                                            it to resume or to re-prepare without decoding again
    OUT/extracted/not_in_annotations/       parts of clips the annotations no longer list (kept; moved back when
                                            they are listed again)

Rows follow the schema of `msmae.data.loading` (keypoints, keypoint_mask, fps, width, height, num_frames, source,
clip_id, start_frame, end_frame) plus the corpus's columns: `label` as a `ClassLabel` in the official class order
(recognition corpora), `text` (translation corpora), `signer` where the corpus has signer ids, `split`, and corpus
ids (`video_id`, `name`, ...). Within a split, rows are in annotation order. Clips without a person or whose source
cannot be decoded are counted and listed (`OUT/extracted/failures.jsonl`), never fatal; so are missing sources.
One OUT holds one corpus with one set of options: re-running with the same ones resumes, other ones are refused.
"""

import inspect
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..keypoint_layout import STORED_STREAMS_TEXT
from .corpora import READERS, CorpusError, read_corpus

logger = logging.getLogger(__name__)

EXTRACTED_DIR = "extracted"
INFO_FILE = "prepare_info.json"


@dataclass
class PrepareSummary:
    """What `prepare` did: rows written per split, clips indexed per split, missing sources and failed clips."""

    dataset: str
    output_dir: str
    rows: dict = field(default_factory=dict)
    indexed: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    failures: list = field(default_factory=list)  # {"clip_id", "path", "kind", "error"} of clips that gave no row
    extraction: object = None  # this run's `ExtractionSummary`

    def lines(self) -> list[str]:
        """The summary as printable lines."""
        lines = [f"{self.dataset} -> {self.output_dir}"]
        for split, count in self.rows.items():
            lines.append(f"  {split}: {count} clips written of {self.indexed[split]} found")
        lines.append(f"  missing source files: {len(self.missing)}" +
                     (f" (listed in {self.output_dir.rstrip('/')}/missing.txt)" if self.missing else ""))
        kinds = {}
        for failure in self.failures:
            kinds[failure["kind"]] = kinds.get(failure["kind"], 0) + 1
        lines.append(f"  clips that gave no row: {len(self.failures)}" +
                     (f" ({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}; see "
                      f"{self.output_dir.rstrip('/')}/{EXTRACTED_DIR}/failures.jsonl)" if self.failures else ""))
        return lines


def reader_options(dataset) -> list[str]:
    """The options `prepare` accepts for `dataset` (its reader's keyword arguments)."""
    reader = READERS.get(str(dataset).lower().replace("-", "_"))
    if reader is None:
        raise CorpusError(f"Unknown corpus {dataset!r}; known: {', '.join(READERS)}.")
    return [name for name, p in inspect.signature(reader).parameters.items() if p.kind is p.KEYWORD_ONLY]


def prepare(dataset, root, output_dir, *, num_workers=1, overwrite=False, retry_failed=False, progress=True,
            extractor_kwargs=None, index=None, engine="local", ray_address=None, **options) -> PrepareSummary:
    """Prepare corpus `dataset` (see `msmae.data.corpora.READERS`) from `root` into `output_dir`.

    `options` go to the corpus reader (e.g. `subset=100` for WLASL); `num_workers`, `overwrite`, `retry_failed`,
    `progress`, `extractor_kwargs`, `engine` and `ray_address` to `run_extraction`. `index` is the `CorpusIndex`
    those give, when the caller has already read it. Returns a `PrepareSummary`; raises `CorpusError` (before
    extracting anything) for unreadable annotations, options the corpus does not take, or an `output_dir` prepared
    with other options.
    """
    from datasets import ClassLabel, DatasetDict

    from . import storage
    from .extract import run_extraction
    from .parts import load_extracted, read_failures

    unknown = sorted(set(options) - set(reader_options(dataset)))
    if unknown:
        raise CorpusError(f"{dataset} takes the options {reader_options(dataset) or 'none'}, not {unknown}.")
    if index is None:
        index = read_corpus(dataset, root, **options)
    output_dir = storage.location(output_dir)  # a Path, or an object-store URL (msmae.data.storage)
    info = {"dataset": index.name, "root": str(Path(root).resolve()),
            "options": {key: str(value) for key, value in sorted(options.items())}}
    _check_same_preparation(output_dir, info)
    clips = index.clips()
    if not clips:
        example = f", e.g. {index.missing[0]}" if index.missing else ""
        raise CorpusError(f"No {index.name} clips found under {root}: the annotations name {len(index.missing)} "
                          f"sources and none is on disk{example}. Check ROOT and the video options.")

    column_features = {"label": ClassLabel(names=index.label_names)} if index.label_names is not None else {}
    extracted = storage.join(output_dir, EXTRACTED_DIR)
    order = {clip.clip_id: position for position, clip in enumerate(clips)}
    if index.load_pose is None:
        _set_aside_unindexed(extracted, clips)
        summary = run_extraction(clips=clips, output_dir=extracted, column_features=column_features,
                                 num_workers=num_workers, overwrite=overwrite, retry_failed=retry_failed,
                                 progress=progress, quiet=True, extractor_kwargs=extractor_kwargs, engine=engine,
                                 ray_address=ray_address)
        failures = [record for clip_id, record in read_failures(extracted).items() if clip_id in order]
    else:  # published keypoints (msmae.data.landmarks): rows straight from the files, no MediaPipe
        summary, failures = None, []

    if not storage.is_remote(output_dir):
        _remove_stale_caches(output_dir)
    cache = Path(tempfile.mkdtemp(prefix=".cache-", dir=None if storage.is_remote(output_dir) else output_dir))
    cache_lock = _hold(cache / CACHE_LOCK)
    try:
        if index.load_pose is not None:
            from .landmarks import landmark_rows

            rows = landmark_rows(clips, index.load_pose, column_features, cache_dir=str(cache), num_proc=num_workers)
        else:
            has_rows = bool(storage.glob(storage.join(extracted, "data"), "*.parquet"))
            rows = load_extracted(extracted, cache_dir=str(cache)) if has_rows else None
        splits = _split(rows, index, order, extracted)
        # An empty split needs one (empty) shard: with none, datasets 5 cannot load the split back.
        DatasetDict(splits).save_to_disk(str(output_dir), num_shards={k: 1 for k, v in splits.items() if not len(v)})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        cache_lock.close()

    result = PrepareSummary(index.name, str(output_dir), {name: len(split) for name, split in splits.items()},
                            {name: len(clips) for name, clips in index.splits.items()}, index.missing_files,
                            failures, summary)
    _write(storage.join(output_dir, "missing.txt"), "".join(f"{path}\n" for path in result.missing))
    info.update(rows=result.rows, indexed=result.indexed, missing_files=len(result.missing),
                failed_clips=len(failures), num_classes=len(index.label_names or []), notes=index.notes)
    _write(storage.join(output_dir, INFO_FILE), json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    _write(storage.join(output_dir, "README.md"), _card(index, result, splits))
    return result


SET_ASIDE_DIR = "not_in_annotations"
CACHE_LOCK = ".lock"


def _set_aside_unindexed(extracted, clips):
    """Move the parts of clips the annotations no longer list (e.g. the last row of a class removed, which changes
    the label classes) from `extracted/data` to `extracted/not_in_annotations`, and those listed again back: the
    folder then holds exactly the indexed clips and loads as one table, and nothing extracted is lost."""
    from . import storage
    from .parts import DATA_DIR, part_path

    wanted = {storage.name(part_path(extracted, clip.clip_id)) for clip in clips}
    data, aside = storage.join(extracted, DATA_DIR), storage.join(extracted, SET_ASIDE_DIR)
    moves = [(part, storage.join(aside, storage.name(part))) for part in storage.glob(data, "*.parquet")
             if storage.name(part) not in wanted]
    moves += [(part, storage.join(data, storage.name(part))) for part in storage.glob(aside, "*.parquet")
              if storage.name(part) in wanted]
    if moves:
        storage.makedirs(aside)
        storage.makedirs(data)
    for source, destination in moves:
        storage.write_bytes(destination, storage.read_bytes(source))  # whole, before the original goes
        storage.remove(source)
    if moves:
        logger.info("Moved %d extracted clips between %s and %s (their rows left or came back to the "
                    "annotations).", len(moves), data, aside)


def _hold(path):
    """An exclusive flock on `path` (created), held while the returned file is open: marks a cache as in use."""
    handle = open(path, "w")
    try:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # Windows: no lock; a killed run's cache then stays
        pass
    return handle


def _remove_stale_caches(output_dir):
    """Delete the `.cache-*` copies that a killed `prepare` left (no process holds their lock); a running one's
    stays."""
    try:
        import fcntl
    except ImportError:
        return
    for cache in Path(output_dir).glob(".cache-*"):
        lock = cache / CACHE_LOCK
        try:
            handle = open(lock, "a")
        except OSError:  # killed before its lock was made
            shutil.rmtree(cache, ignore_errors=True)
            continue
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another prepare is using it
            shutil.rmtree(cache, ignore_errors=True)
            logger.info("Removed %s, left by a prepare that was stopped.", cache)


def _write(path, text):
    from . import storage

    storage.write_bytes(path, text.encode("utf-8"), sync=False)


def _check_same_preparation(output_dir, info):
    """Refuse an `output_dir` begun with another corpus, root or options (its parts would not match); record this
    one's before extracting, so that a run killed half-way is guarded too."""
    from . import storage

    previous = storage.join(output_dir, INFO_FILE)
    if storage.exists(previous):
        before = json.loads(storage.read_text(previous))
        before = {key: before.get(key) for key in info}
        if before != info:
            raise CorpusError(f"{output_dir} was prepared from {before}; it cannot also hold {info}. Use another "
                              "--output_dir.")
    else:
        storage.makedirs(output_dir)
        _write(previous, json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def _split(rows, index, order, extracted) -> dict:
    """{split: Dataset} with each split's rows in annotation order (rows of clips no longer indexed are left out)."""
    from datasets import Dataset, Features

    if rows is None:  # no clip gave a row: empty splits with the run's schema
        from .parts import INFO_FILE as EXTRACTION_INFO

        from . import storage

        info = json.loads(storage.read_text(storage.join(extracted, EXTRACTION_INFO)))
        features = Features.from_dict(info["features"])
        empty = Dataset.from_dict({name: [] for name in features}, features=features)
        return {name: empty for name in index.splits}
    split_of = {clip.clip_id: name for name, clips in index.splits.items() for clip in clips}
    positions = {name: [] for name in index.splits}
    for row, clip_id in enumerate(rows["clip_id"]):
        if clip_id in split_of:
            positions[split_of[clip_id]].append((order[clip_id], row))
    return {name: rows.select([row for _, row in sorted(pairs)]) for name, pairs in positions.items()}


def _provenance(index) -> str:
    """The card's first sentences: what made the keypoints and how the splits were made."""
    if index.load_pose is None:
        made = f"MediaPipe Holistic poses of the {index.name} corpus, extracted by `msmae extract`"
    else:
        made = (f"Keypoints of the {index.name} corpus as its publishers released them (keypoint source: "
                f"`{index.keypoint_source}`, also in the `keypoint_source` column; no video was read)")
        if index.keypoint_source != "mediapipe_holistic":
            made += (". A model pretrained on MediaPipe Holistic sees these keypoints as a different "
                     "distribution")
    if index.split_note:
        splits = f"splits made by msmae: {index.split_note}"
    else:  # landmark corpora without official splits put everything in train (no `split` column)
        splits = "its official splits" if index.load_pose is None else "the splits as published"
    return f"{made}, one row per clip, in {splits}. "


def _card(index, result, splits) -> str:
    columns = next(iter(splits.values())).features if splits else {}
    label = ""
    if index.label_names is not None:
        shown = ", ".join(index.label_names[:10]) + (", ..." if len(index.label_names) > 10 else "")
        label = f"\n`label` is a `ClassLabel` of {len(index.label_names)} classes in the official order ({shown}).\n"
    split_lines = "\n".join(f"| {name} | {result.rows[name]} | {result.indexed[name]} |" for name in result.rows)
    return f"""# {index.name}, prepared by `msmae prepare`

{_provenance(index)}Load with
`datasets.load_from_disk(folder)` or `msmae.data.loading.load_sign_dataset(folder)`.

| split | clips written | clips in the annotations with a source on disk |
| --- | --- | --- |
{split_lines}

Columns: {", ".join(f"`{name}`" for name in columns)}.
{label}
Missing source files: {len(result.missing)} (listed in `missing.txt`). Clips that gave no row: {len(result.failures)}
(listed in `extracted/failures.jsonl`). Reader notes: {"; ".join(index.notes) or "none"}.

Keypoints: x, y normalised to the frame, z, visibility of the streams {STORED_STREAMS_TEXT}; see
`msmae.data.loading` for the row schema. The corpus's own licence applies
to this derived data.
"""

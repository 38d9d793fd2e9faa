"""The one manifest reader: a table of clips, one `path` per row plus that clip's columns.

Used by `msmae extract --manifest` (`msmae.data.sources`) and the dataset builders (`msmae.data.loading`).
"""

import csv
import functools
import json
import math
import os
from pathlib import Path

from .schema import CLIP_COLUMNS, ROW_COLUMNS

SPLIT_NAMES = ("train", "validation", "test")
# Always text, even when every value looks like a number: labels are class names (a `ClassLabel` is built from
# them in sorted or official order), signer ids and clip ids are names.
TEXT_COLUMNS = ("label", "text", "signer", "split", "clip_id")
# Where a clip lies in its source (`msmae.data.sources.ClipSource`'s fields); numbers.
RANGE_COLUMNS = ("start", "end", "start_frame", "end_frame", "fps")
# Columns a manifest may not have: they are computed from the clip.
_COMPUTED = tuple(c for c in ROW_COLUMNS if c not in CLIP_COLUMNS + RANGE_COLUMNS)


def read_manifest(path) -> list[dict]:
    """The rows of a CSV/TSV (header row), JSON (a list of objects, or {"data": [...]}) or JSON lines manifest.

    Each row is a dict with `path` (relative paths are relative to the manifest; normalised) and its other columns:
    `TEXT_COLUMNS` are strings; other CSV columns are typed per column (all integers -> int, all numbers -> float,
    otherwise strings); JSON values are kept, lists and objects as JSON strings; empty cells are None. `split` must
    be one of `SPLIT_NAMES`. Rows may repeat a path (several clips of one long video, with `start`/`end`).

    Raises:
        FileNotFoundError: no manifest at `path`.
        ValueError: an unsupported format, bad JSON, no `path` column or value, a bad `split`, or a column that the
            pose row computes itself (`keypoints`, `fps`, `source`, ...); the message names the manifest and row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest not found: {path}")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"Manifest {path} is not UTF-8 text (byte {error.start}: {error.reason}); save it as "
                         "UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(f"Manifest {path} needs a header with a `path` column (and any of label, text, signer, "
                             f"split, start, end, ...); found columns {reader.fieldnames}.")
        _refuse_repeated_columns(path, reader.fieldnames)
        rows, places = [], []
        for row in reader:
            rows.append(row)
            places.append(f"line {reader.line_num}")
        rows = _type_csv_columns(rows)
    elif suffix in (".json", ".jsonl"):
        lines = [number for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        load = functools.partial(json.loads, object_pairs_hook=functools.partial(_unique_keys, path))
        try:
            data = load(text) if suffix == ".json" else [load(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"Manifest {path} is not valid JSON: {error}") from error
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"Manifest {path} must hold a list of objects (one per clip, with a 'path' key).")
        rows = [{key: plain_value(value) for key, value in row.items()} for row in rows]
        places = [f"line {lines[i]}" if suffix == ".jsonl" else f"row {i + 1}" for i in range(len(rows))]
    else:
        raise ValueError(f"Manifest {path}: unsupported format {suffix!r}; use .csv, .tsv, .json or .jsonl.")
    clash = sorted({key for row in rows for key in row} & set(_COMPUTED))
    if clash:
        raise ValueError(f"Manifest {path}: columns {clash} clash with the columns computed from each clip; "
                         "rename them.")
    result = []
    for number, (row, place) in enumerate(zip(rows, places), 1):
        if row.get("path") in (None, ""):
            raise ValueError(f"Manifest {path}, row {number}: no 'path' value (columns: {sorted(k for k in row if k)}).")
        problem = range_problem(row)
        if problem:
            raise ValueError(f"Manifest {path}, {place}: {problem}; fix the row (leave start/end empty for the "
                             "beginning/end of the video).")
        for key in TEXT_COLUMNS:
            if row.get(key) is not None:
                row[key] = str(row[key]).strip() or None
        if row.get("split") is not None and row["split"] not in SPLIT_NAMES:
            raise ValueError(f"Manifest {path}, row {number}: split must be one of {SPLIT_NAMES}, "
                             f"got {row['split']!r}.")
        source = os.path.normpath(os.path.join(path.parent, str(row["path"]).strip()))
        result.append({"path": source, **{k: v for k, v in row.items() if k and k != "path"}})
    return result


def range_problem(fields):
    """Why the range values of `fields` (a manifest row or a clip's fields) place no clip, or None: each must be a
    finite number >= 0 (fps > 0), and the start before the end."""
    for key in RANGE_COLUMNS:
        value = fields.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} must be a number, got {value!r}"
        if not math.isfinite(value) or value < 0 or (key == "fps" and value == 0):
            return f"{key} must be a finite number {'above' if key == 'fps' else 'at least'} 0, got {value}"
    for low, high in (("start", "end"), ("start_frame", "end_frame")):
        if fields.get(high) is not None and fields.get(high) <= (fields.get(low) or 0):
            return f"{high} {fields[high]} is not after {low} {fields.get(low) or 0}"
    return None


def _refuse_repeated_columns(path, names):
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Manifest {path} has more than one column named {repeated[0]!r}; rename or remove the "
                         "extra one (only one value per clip can be kept).")


def _unique_keys(path, pairs):
    _refuse_repeated_columns(path, [key for key, _ in pairs])
    return dict(pairs)


def _type_csv_columns(rows):
    columns = {key for row in rows for key in row if key is not None}
    for column in columns - {"path", *TEXT_COLUMNS}:
        values = [row.get(column) for row in rows]
        present = [v for v in values if v not in (None, "")]
        for cast in (int, float):
            try:
                typed = [cast(v) if v not in (None, "") else None for v in values]
            except ValueError:
                continue
            if present:
                break
        else:
            typed = [v if v not in (None, "") else None for v in values]
        for row, value in zip(rows, typed):
            row[column] = value
    for row in rows:
        for column in TEXT_COLUMNS:
            if row.get(column) == "":
                row[column] = None
    return rows


def plain_value(value):
    """JSON values that Arrow can store in one column type; nested ones become JSON strings."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value

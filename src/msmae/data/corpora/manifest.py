"""A generic clip manifest: JSL's annotated corpus, or any corpus annotated in ELAN or similar.

The paper's JSL word-level clips are cut from an annotated corpus; exported annotation tiers give one row per
sign. A manifest is a CSV (comma), TSV (tab) or JSON Lines file with a header (or keys) and one row per clip:

| column    | required | meaning                                                                           |
| --------- | -------- | --------------------------------------------------------------------------------- |
| `video`   | yes      | the source video (or a folder of frames), relative to the manifest                |
| `start`   | no       | clip start in seconds (empty: the video's start)                                  |
| `end`     | no       | clip end in seconds, exclusive (empty: the video's end)                           |
| `label`   | no*      | the sign (class); *a manifest has labels on every row or on none                  |
| `signer`  | no       | signer id                                                                         |
| `split`   | no       | train / validation (or val, dev) / test; without the column every clip is `train` |
| `text`    | no       | a sentence, for translation                                                       |
| `id`      | no       | a unique clip id (default: the video and the range)                               |
| `fps`     | no       | frame rate of a frame folder                                                      |

ELAN stores times in milliseconds: divide by 1000 when exporting. Other columns are kept as they are. Class order:
`class_list` (a text file, one class per line) when given, else order of first appearance in the manifest.
"""

import json
from pathlib import Path

from .common import (CorpusError, CorpusIndex, clip_source, ordered_labels, read_table, require_values, split_name,
                     to_number)

RESERVED = ("video", "start", "end", "id", "fps")


def read_manifest_corpus(root, *, class_list=None) -> CorpusIndex:
    """Index the clips of the manifest file `root` (.csv, .tsv or .jsonl)."""
    path = Path(root)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = read_table(path, delimiter="\t" if suffix == ".tsv" else ",", required=("video",), where="manifest")
    elif suffix == ".jsonl":
        if not path.is_file():
            raise CorpusError(f"manifest not found: {path}")
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CorpusError(f"{path}, line {number}: not JSON ({error}).") from None
                if not isinstance(row, dict):
                    raise CorpusError(f"{path}, line {number}: expected an object with a 'video' key.")
                rows.append((number, {k: "" if v is None else str(v).strip() for k, v in row.items()}))
    else:
        raise CorpusError(f"{path}: a manifest must be .csv, .tsv or .jsonl (one row per clip: video, start, end, "
                          "label, signer[, split, text]).")
    labelled = [bool(row.get("label")) for _, row in rows]
    if any(labelled) and not all(labelled):
        line = rows[labelled.index(False)][0]
        raise CorpusError(f"{path}, line {line}: no label, while other rows have one.")
    splits = {"train": [], "validation": [], "test": []}
    index = CorpusIndex("manifest", splits)
    for line, row in rows:
        where = f"{path}, line {line}"
        require_values(row, ("video",), where)
        start = to_number(row["start"], float, where) if row.get("start") else None
        end = to_number(row["end"], float, where) if row.get("end") else None
        if start is not None and end is not None and end <= start:
            raise CorpusError(f"{where}: end {end} is not after start {start}.")
        split = split_name(row["split"], where) if row.get("split") else "train"
        source = path.parent / row["video"]
        columns = {key: (value or None) for key, value in row.items() if key not in RESERVED}
        columns["split"] = split
        if not source.exists():
            index.missing.append(str(source))
            continue
        fps = to_number(row["fps"], float, where) if row.get("fps") else None
        splits[split].append(clip_source(where, source, clip_id=row.get("id") or None, start=start, end=end, fps=fps,
                                         columns=columns))
    if any(labelled):
        index.label_names = ordered_labels([row["label"] for _, row in rows], class_list, str(path))
    return index

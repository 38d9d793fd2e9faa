"""A clip manifest as a corpus: JSL's annotated corpus, or any corpus annotated in ELAN or similar.

The paper's JSL word-level clips are cut from an annotated corpus; exported annotation tiers give one row per sign.
The file is read by the one manifest reader, `msmae.data.manifest.read_manifest` (CSV, TSV, JSON or JSON lines),
and its rows become clips as `msmae extract --manifest` makes them (`msmae.data.sources.clips_from_inputs`):

| column    | required | meaning                                                                              |
| --------- | -------- | ------------------------------------------------------------------------------------ |
| `path`    | yes      | the source video (or a folder of frames), relative to the manifest                   |
| `start`   | no       | clip start in seconds (empty: the video's start); or `start_frame`                   |
| `end`     | no       | clip end in seconds, exclusive (empty: the video's end); or `end_frame`              |
| `label`   | no*      | the sign (class); *a manifest has labels on every row or on none                     |
| `signer`  | no       | signer id                                                                            |
| `split`   | no       | train / validation / test; without it every clip is `train`                          |
| `text`    | no       | a sentence, for translation                                                          |
| `clip_id` | no       | a unique clip id (default: the path and the range)                                   |
| `fps`     | no       | frame rate of a frame folder                                                         |

ELAN stores times in milliseconds: divide by 1000 when exporting. Other columns are kept as they are. Class order:
`class_list` (a text file, one class per line) when given, else order of first appearance in the manifest. A row
whose source is not on disk is missing (listed, not fatal); a malformed manifest raises `CorpusError`.
"""

from pathlib import Path

from ..sources import clips_from_inputs
from .common import CorpusError, CorpusIndex, ordered_labels

SPLITS = ("train", "validation", "test")


def read_manifest_corpus(root, *, class_list=None) -> CorpusIndex:
    """Index the clips of the manifest file `root` (.csv, .tsv, .json or .jsonl)."""
    path = Path(root)
    try:
        clips = clips_from_inputs(manifest=path)
    except (OSError, ValueError) as error:  # the reader's messages name the manifest and row; ClipSource's the clip
        message = str(error)
        raise CorpusError(message if str(path) in message else f"Manifest {path}: {message}") from None
    labelled = [clip.columns.get("label") is not None for clip in clips]
    if any(labelled) and not all(labelled):
        raise CorpusError(f"Manifest {path}, row {labelled.index(False) + 1}: no label, while other rows have one.")
    index = CorpusIndex("manifest", {split: [] for split in SPLITS})
    for clip in clips:
        clip.columns["split"] = clip.columns.get("split") or "train"
        if not Path(clip.path).exists():
            index.missing.append(clip.path)
            continue
        index.splits[clip.columns["split"]].append(clip)
    if any(labelled):
        index.label_names = ordered_labels([clip.columns["label"] for clip in clips], class_list, str(path))
    return index

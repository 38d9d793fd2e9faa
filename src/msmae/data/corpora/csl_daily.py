"""CSL-Daily (Zhou et al., CVPR 2021): 20,654 Chinese Sign Language sentences of daily life, with Chinese text.

Verified against the release's files as read by its public users (the publishers, ustc-slr, ship no loader code):
`sentence_label/split_1.txt` is pipe-separated `name|split` with splits train/dev/test; `sentence_label/
video_map.txt` is pipe-separated `index|name|length|gloss|char|word|postag` (gloss, char and word are
space-separated tokens); `sentence_label/csl2020ct_v2.pkl` is a pickled dict whose `info` list holds one dict per
sentence `{name, length, label_gloss, label_char, label_word, label_postag, signer, time}`; the frames are JPEG
images in `sentence/frames_512x512/<name>/`.

This reader reads `video_map.txt` (plain text) when present. The pickle is read only through an unpickler that
admits no globals (`find_class` refuses every one), so it cannot run code; a pickle that needs any class is refused
with instructions. Signer: the pickle's `signer`, else the `P<n>` part of the name `S<sentence>_P<signer>_T<take>`
(the pickle's example `S000007_P0003_T00` has signer 3). Text: the `char` tokens joined without spaces.
The frame rate is not stated in any release file: `fps` defaults to 30, which is not verified; give the right one.
Columns: `text`, `gloss`, `signer`, `name`, `split`. `dev` becomes `validation`.
"""

import io
import pickle
import re
from pathlib import Path

from .common import (CorpusError, CorpusIndex, clip_source, first_existing, has_frames, read_table, require_values,
                     split_name)

SPLITS = ("train", "validation", "test")
MAP_COLUMNS = ("name", "char", "gloss")


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise CorpusError(f"the pickle asks for the Python object {module}.{name}; msmae never loads objects from "
                          "pickles (it could run code). Use the release's sentence_label/video_map.txt instead.")


def load_plain_pickle(path):
    """Unpickle `path` admitting only plain data (dicts, lists, strings, numbers): no class, no code."""
    return _NoGlobalsUnpickler(io.BytesIO(Path(path).read_bytes())).load()


def read_csl_daily(root, *, fps=30.0) -> CorpusIndex:
    """Index CSL-Daily under `root` (the folder holding `sentence/` and `sentence_label/`, or its parent)."""
    root = Path(root)
    split_file = first_existing([root / "sentence_label" / "split_1.txt",
                                 root / "CSL-Daily" / "sentence_label" / "split_1.txt",
                                 root / "csl-daily" / "sentence_label" / "split_1.txt"],
                                "CSL-Daily's sentence_label/split_1.txt")
    base = split_file.parents[1]
    labels = _labels(base)
    index = CorpusIndex("csl_daily", {split: [] for split in SPLITS}, notes=[labels.pop("__source__")])
    for line, row in read_table(split_file, delimiter="|", required=("name", "split"), where="CSL-Daily split"):
        where = f"{split_file}, line {line}"
        require_values(row, ("name", "split"), where)
        split = split_name(row["split"], where)
        label = labels.get(row["name"])
        if label is None:
            raise CorpusError(f"{where}: {row['name']} has no sentence label in {index.notes[0]}.")
        folder = base / "sentence" / "frames_512x512" / row["name"]
        if not has_frames(folder):
            index.missing.append(str(folder))
            continue
        columns = {**label, "name": row["name"], "split": split}
        index.splits[split].append(clip_source(where, folder, clip_id=row["name"], fps=float(fps), columns=columns))
    return index


def _labels(base) -> dict:
    """{name: {text, gloss, signer}} from video_map.txt, else from the pickle."""
    video_map = base / "sentence_label" / "video_map.txt"
    if video_map.is_file():
        labels = {"__source__": str(video_map)}
        for line, row in read_table(video_map, delimiter="|", required=MAP_COLUMNS, where="CSL-Daily video_map"):
            require_values(row, MAP_COLUMNS, f"{video_map}, line {line}")
            labels[row["name"]] = {"text": "".join(row["char"].split()), "gloss": row["gloss"],
                                   "signer": _signer_from_name(row["name"])}
        return labels
    pickled = first_existing([base / "sentence_label" / "csl2020ct_v2.pkl"],
                             "CSL-Daily's sentence labels (sentence_label/video_map.txt or csl2020ct_v2.pkl)")
    try:
        data = load_plain_pickle(pickled)
    except (pickle.UnpicklingError, EOFError) as error:
        raise CorpusError(f"{pickled} is not a readable pickle ({error}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("info"), list):
        raise CorpusError(f"{pickled}: expected a dict with an 'info' list (csl2020ct_v2.pkl).")
    labels = {"__source__": str(pickled)}
    for number, item in enumerate(data["info"]):
        try:
            labels[item["name"]] = {"text": "".join(item["label_char"]), "gloss": " ".join(item["label_gloss"]),
                                    "signer": str(item["signer"])}
        except (KeyError, TypeError) as error:
            raise CorpusError(f"{pickled}: info[{number}] lacks {error} (expected name, label_char, label_gloss, "
                              "signer).") from None
    return labels


def _signer_from_name(name):
    match = re.search(r"_P(\d+)_", name)
    return str(int(match.group(1))) if match else None

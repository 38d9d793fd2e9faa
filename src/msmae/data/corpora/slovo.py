"""Slovo (Kapitanov et al., 2023): 20,400 videos of 1,000 Russian Sign Language signs (+ `no_event`), 194 signers.

Verified against the publishers' repository hukenovs/slovo (`README.md`, `constants.py`): `annotations.csv` has the
columns `attachment_id` (the video's file name), `user_id`, `width`, `height`, `length`, `text` (the sign),
`train` (True = train split, False = test), `begin`, `end` ("start/end of the gesture (for original dataset)").
The file is tab-separated despite its name (the README does not say; every public loader reads it with
`sep="\\t"`). The main download (`slovo.zip`) holds the videos "trimmed by (start, end) annotations", in `train/`
and `test/` folders beside `annotations.csv`, so they are used whole; `trimmed=False` reads the original videos
(`slovo_full.zip`) and cuts frames `begin` .. `end` (0-based, end exclusive: the README does not say which; this
reading is not verified).
Class order: the publishers' models use `constants.py`'s `classes = {0: ..., 1000: "no_event"}`; pass that file
(or a text file, one class per line) as `class_list` to use its order (it is read with `ast.literal_eval`, never
run). Without one, classes are numbered in order of first appearance in `annotations.csv`.
Columns: `label` (text), `signer` (user_id), `split` (train/test).
"""

import ast
from pathlib import Path

from .common import (CorpusError, CorpusIndex, clip_source, files_by_stem, first_existing, ordered_labels,
                     read_table, require_values, to_number)

COLUMNS = ("attachment_id", "user_id", "text", "train", "begin", "end")
FLAGS = {"true": "train", "false": "test"}


def read_slovo(root, *, trimmed=True, video_dir=None, class_list=None) -> CorpusIndex:
    """Index Slovo under `root` (the folder holding `annotations.csv`, or its parent with `slovo/`).

    Args:
        trimmed: True for the trimmed videos of `slovo.zip` (used whole), False for the original videos of
            `slovo_full.zip` (cut to `begin`..`end`).
        video_dir: where the videos are (searched recursively by `<attachment_id>.mp4`; default: beside
            `annotations.csv`).
        class_list: the publishers' `constants.py` or a text file of class names, for their class order.
    """
    root = Path(root)
    annotations = first_existing([root / "annotations.csv", root / "slovo" / "annotations.csv"],
                                 "Slovo's annotations.csv (from slovo.zip, github.com/hukenovs/slovo)")
    videos = files_by_stem(video_dir or annotations.parent)
    rows = read_table(annotations, delimiter="\t", required=COLUMNS, where="Slovo annotations.csv")
    index = CorpusIndex("slovo", {"train": [], "test": []})
    labels = []
    for line, row in rows:
        where = f"{annotations}, line {line}"
        require_values(row, COLUMNS, where)
        split = FLAGS.get(row["train"].lower())
        if split is None:
            raise CorpusError(f"{where}: train flag {row['train']!r} is neither True nor False.")
        labels.append(row["text"])
        video = videos.get(row["attachment_id"])
        if video is None:
            index.missing.append(str(annotations.parent / split / f"{row['attachment_id']}.mp4"))
            continue
        columns = {"label": row["text"], "signer": row["user_id"], "split": split}
        frames = {} if trimmed else {"start_frame": to_number(row["begin"], int, where),
                                     "end_frame": to_number(row["end"], int, where)}
        index.splits[split].append(clip_source(where, video, clip_id=row["attachment_id"], columns=columns, **frames))
    if class_list is not None and Path(class_list).suffix == ".py":
        names = publisher_classes(class_list)
        unknown = sorted(set(labels) - set(names))
        if unknown:
            raise CorpusError(f"{annotations}: signs {unknown[:5]} ({len(unknown)} in all) are not in {class_list}.")
        index.label_names = names
    else:
        index.label_names = ordered_labels(labels, class_list, str(annotations))
    return index


def publisher_classes(path) -> list[str]:
    """The class names of hukenovs/slovo's `constants.py` (`classes = {0: "...", ...}`), read as a literal."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "classes" for t in node.targets):
            try:
                classes = ast.literal_eval(node.value)
            except ValueError as error:
                raise CorpusError(f"{path}: `classes` is not a literal dict ({error}).") from None
            if not isinstance(classes, dict) or sorted(classes) != list(range(len(classes))):
                raise CorpusError(f"{path}: `classes` must map 0..n-1 to names.")
            return [str(classes[i]) for i in range(len(classes))]
    raise CorpusError(f"{path} has no `classes = {{...}}` assignment (expected hukenovs/slovo's constants.py).")

"""RWTH-PHOENIX-Weather 2014 T (Camgoz et al., CVPR 2018): German weather-forecast signing with German sentences.

Verified against the release's own files as quoted by public users of `PHOENIX-2014-T-release-v3`: the annotations
are `PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv`, pipe-separated with the header
`name|video|start|end|speaker|orth|translation` (e.g. `11August_2010_Wednesday_tagesschau-2|11August_2010_Wednesday_
tagesschau-2/1/*.png|-1|-1|Signer08|DRUCK TIEF KOMMEN|tiefer luftdruck ...`); `start`/`end` are -1 (the whole
sequence). The frames are PNG images in `PHOENIX-2014-T/features/fullFrame-210x260px/{train,dev,test}/<name>/`
(the `video` column's `<name>/1/*.png` pattern names a `1/` level that the 2014-T release does not have; both are
accepted). 25 frames per second (the corpus paper; the skeleton reader `phoenix_skels` uses it too).
Columns: `text` (translation), `gloss` (orth), `signer` (speaker), `name`, `split`. `dev` becomes `validation`.
"""

from pathlib import Path

from .common import CorpusIndex, clip_source, first_existing, has_frames, read_table, require_values

FPS = 25.0
SPLITS = {"train": "train", "validation": "dev", "test": "test"}
COLUMNS = ("name", "video", "start", "end", "speaker", "orth", "translation")
FRAMES = Path("features") / "fullFrame-210x260px"


def read_phoenix14t(root) -> CorpusIndex:
    """Index PHOENIX-2014-T under `root`: the `PHOENIX-2014-T` folder, or `PHOENIX-2014-T-release-v3` above it."""
    root = Path(root)
    manual = Path("annotations") / "manual" / "PHOENIX-2014-T.train.corpus.csv"
    base = first_existing([root / manual, root / "PHOENIX-2014-T" / manual,
                           root / "PHOENIX-2014-T-release-v3" / "PHOENIX-2014-T" / manual],
                          "PHOENIX-2014-T's annotations/manual/PHOENIX-2014-T.train.corpus.csv").parents[2]
    index = CorpusIndex("phoenix14t", {split: [] for split in SPLITS})
    for split, official in SPLITS.items():
        path = base / "annotations" / "manual" / f"PHOENIX-2014-T.{official}.corpus.csv"
        for line, row in read_table(path, delimiter="|", required=COLUMNS, where=f"PHOENIX-2014-T {official}"):
            require_values(row, ("name", "translation"), f"{path}, line {line}")
            folder = base / FRAMES / official / row["name"]
            pattern_folder = base / FRAMES / official / Path(row["video"]).parent
            if not has_frames(folder) and has_frames(pattern_folder):
                folder = pattern_folder
            if not has_frames(folder):
                index.missing.append(str(folder))
                continue
            columns = {"text": row["translation"], "gloss": row["orth"], "signer": row["speaker"],
                       "name": row["name"], "split": split}
            index.splits[split].append(clip_source(f"{path}, line {line}", folder, clip_id=row["name"], fps=FPS,
                                                   columns=columns))
    return index

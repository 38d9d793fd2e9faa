"""ASL Citizen (Desai et al., NeurIPS 2023): 83,399 isolated-sign videos of 2,731 glosses by 52 signers.

Verified against the publishers' code, microsoft/ASL-citizen-code (`I3D/aslcitizen_dataset.py`,
`I3D/aslcitizen_training.py`) and the layout read by sign-language-processing/datasets
(`sign_language_datasets/datasets/asl_citizen/asl_citizen.py`): the release unpacks to `ASL_Citizen/` with
`videos/<Video file>` and `splits/{train,val,test}.csv`; each CSV has a header row and the columns
`Participant ID, Video file, Gloss, ASL-LEX Code` (in that order; the publishers' loader reads them by position).
Class order: the publishers' loader numbers glosses (stripped of spaces) in order of first appearance in the
training CSV and reuses that numbering for validation and test; so does this reader (a gloss first seen in val or
test, which the release does not have, would be appended after the training ones).
Columns: `label` (gloss), `signer` (Participant ID), `asl_lex_code`, `split`. `val` becomes `validation`.
"""

from pathlib import Path

from .common import CorpusIndex, clip_source, first_existing, read_table, require_values

FILES = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}
COLUMNS = ("Participant ID", "Video file", "Gloss")


def read_asl_citizen(root) -> CorpusIndex:
    """Index ASL Citizen under `root` (the unpacked `ASL_Citizen/` folder or the folder holding it)."""
    root = Path(root)
    base = first_existing([root / "splits", root / "ASL_Citizen" / "splits"],
                          "ASL Citizen's splits/ folder (from ASL_Citizen.zip)").parent
    index = CorpusIndex("asl_citizen", {split: [] for split in FILES}, [])
    labels = {}
    for split, name in FILES.items():
        for line, row in read_table(base / "splits" / name, delimiter=",", required=COLUMNS,
                                    where=f"ASL Citizen {split} split"):
            require_values(row, COLUMNS, f"{base / 'splits' / name}, line {line}")
            gloss = row["Gloss"]
            labels.setdefault(gloss, None)
            video = base / "videos" / row["Video file"]
            if not video.is_file():
                index.missing.append(str(video))
                continue
            columns = {"label": gloss, "signer": row["Participant ID"],
                       "asl_lex_code": row.get("ASL-LEX Code") or None, "split": split}
            index.splits[split].append(clip_source(f"{base / 'splits' / name}, line {line}", video,
                                                   clip_id=Path(row["Video file"]).stem, columns=columns))
    index.label_names = list(labels)
    return index

"""How2Sign (Duarte et al., CVPR 2021): instructional ASL videos with English sentences, ~35k sentence clips.

Verified against the publishers' gdown download script (as copied in public repositories; its header names the
contact amanda.duarte@upc.edu) and the files as read by public users: the re-aligned English translation is
`how2sign_realigned_{train,val,test}.csv` (placed by the script in
`How2Sign/sentence_level/<split>/text/en/raw_text/re_aligned/`), tab-separated with the
columns `VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME, START_REALIGNED, END_REALIGNED, SENTENCE` (times in
seconds within the raw video). Front-view raw videos unpack into `How2Sign/video_level/<split>/rgb_front/`
(`<VIDEO_NAME>.mp4`), pre-cut sentence clips into `How2Sign/sentence_level/<split>/rgb_front/`
(`<SENTENCE_NAME>.mp4`).
Each sentence is taken from its pre-cut clip (whole) when present, else cut from its raw video by
START_REALIGNED..END_REALIGNED seconds (`source` chooses). How2Sign has no signer column.
Columns: `text` (SENTENCE), `video_name`, `sentence_name`, `split`. `val` becomes `validation`.
"""

from pathlib import Path

from .common import (CorpusError, CorpusIndex, clip_source, files_by_stem, first_existing, read_table, require_values,
                     to_number)

SPLITS = {"train": "train", "validation": "val", "test": "test"}
COLUMNS = ("VIDEO_NAME", "SENTENCE_NAME", "START_REALIGNED", "END_REALIGNED", "SENTENCE")
SOURCES = ("auto", "clips", "videos")


def read_how2sign(root, *, source="auto", video_dir=None) -> CorpusIndex:
    """Index How2Sign under `root` (the `How2Sign/` folder the download script makes, its parent, or a folder
    holding the three CSVs and the videos).

    Args:
        source: "clips" (pre-cut `<SENTENCE_NAME>.mp4` only), "videos" (cut from `<VIDEO_NAME>.mp4` only) or
            "auto" (a clip when there is one, else the raw video).
        video_dir: where the videos are (searched recursively by name; default: the `sentence_level/` and
            `video_level/` folders of the download, else `root`).
    """
    if source not in SOURCES:
        raise CorpusError(f"How2Sign source must be one of {SOURCES}, got {source!r}.")
    root = Path(root)
    base = root / "How2Sign" if (root / "How2Sign").is_dir() else root
    # The publishers' folders when they are there: the rest of the tree may hold millions of keypoint files.
    levels = [base / level for level in ("sentence_level", "video_level") if (base / level).is_dir()]
    videos = {}
    for folder in [video_dir] if video_dir else levels or [base]:
        for stem, path in files_by_stem(folder).items():
            videos.setdefault(stem, path)
    index = CorpusIndex("how2sign", {split: [] for split in SPLITS})
    for split, official in SPLITS.items():
        name = f"how2sign_realigned_{official}.csv"
        path = first_existing([base / name, base / "sentence_level" / official / "text" / "en" / "raw_text" /
                               "re_aligned" / name], f"How2Sign's {name} (the re-aligned English translation)")
        index.notes.append(f"read {path}")
        for line, row in read_table(path, delimiter="\t", required=COLUMNS, where=f"How2Sign {official}"):
            where = f"{path}, line {line}"
            require_values(row, COLUMNS, where)
            start, end = to_number(row["START_REALIGNED"], float, where), to_number(row["END_REALIGNED"], float, where)
            if end <= start:
                raise CorpusError(f"{where}: END_REALIGNED {end} is not after START_REALIGNED {start}.")
            columns = {"text": row["SENTENCE"], "video_name": row["VIDEO_NAME"],
                       "sentence_name": row["SENTENCE_NAME"], "split": split}
            clip, video = videos.get(row["SENTENCE_NAME"]), videos.get(row["VIDEO_NAME"])
            if clip is not None and source != "videos":
                index.splits[split].append(clip_source(where, clip, clip_id=row["SENTENCE_NAME"], columns=columns))
            elif video is not None and source != "clips":
                index.splits[split].append(clip_source(where, video, clip_id=row["SENTENCE_NAME"], start=start,
                                                       end=end, columns=columns))
            else:
                level, wanted = (("video_level", row["VIDEO_NAME"]) if source == "videos" else
                                 ("sentence_level", row["SENTENCE_NAME"]))
                index.missing.append(str(base / level / official / "rgb_front" / f"{wanted}.mp4"))
    return index

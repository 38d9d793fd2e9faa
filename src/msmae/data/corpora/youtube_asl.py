"""YouTube-ASL (Uthus et al., NeurIPS 2023): 11,093 ASL videos, 984 hours, the paper's pretraining corpus.

Verified against the publishers' page google-research/google-research `youtube_asl/README.md`: only the video ids
are released ("As with the similar YouTube-8M dataset, we are releasing the video Ids", in the
`gresearch/youtube-asl` bucket); users download the videos themselves. So this reader takes the id list (one id per
line; blank lines and `#` comments skipped; the default name `youtube_asl_video_ids.txt` is not confirmed by the
README, so `video_ids` names the file) and the folder of downloaded videos, matched by file name: `<id>.<ext>`
or yt-dlp's default `<title> [<id>].<ext>`. Ids without a file are missing; files not in the list are ignored.
Pretraining uses video only: one `train` split, no labels, no text (captions are not read). Column: `video_id`.
"""

import re
from pathlib import Path

from .common import CorpusError, CorpusIndex, clip_source, files_by_stem, first_existing

ID_FILE = "youtube_asl_video_ids.txt"
_BRACKETED_ID = re.compile(r"\[([A-Za-z0-9_-]{11})\]$")


def read_youtube_asl(root, *, video_ids=None, video_dir=None) -> CorpusIndex:
    """Index the downloaded YouTube-ASL videos under `root` (or `video_dir`), listed by `video_ids` (default
    `root/youtube_asl_video_ids.txt`)."""
    root = Path(root)
    id_file = Path(video_ids) if video_ids else first_existing(
        [root / ID_FILE], f"the YouTube-ASL id list ({ID_FILE} from the gresearch/youtube-asl bucket; or pass "
                          "--video_ids)")
    if not id_file.is_file():
        raise CorpusError(f"YouTube-ASL id list not found: {id_file}")
    ids = []
    for number, line in enumerate(id_file.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not re.fullmatch(r"[A-Za-z0-9_-]{11}", line):
            raise CorpusError(f"{id_file}, line {number}: {line!r} is not a YouTube video id (11 characters).")
        ids.append(line)
    files = {}
    for stem, path in files_by_stem(video_dir or root).items():
        match = _BRACKETED_ID.search(stem)
        files.setdefault(match.group(1) if match else stem, path)
    index = CorpusIndex("youtube_asl", {"train": []}, notes=[f"read {id_file} ({len(ids)} ids)"])
    for video_id in dict.fromkeys(ids):
        if video_id not in files:
            index.missing.append(str(Path(video_dir or root) / f"{video_id}.mp4"))
            continue
        index.splits["train"].append(clip_source(id_file, files[video_id], clip_id=video_id,
                                                 columns={"video_id": video_id, "split": "train"}))
    return index

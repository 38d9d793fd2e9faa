"""WLASL (Li et al., WACV 2020): word-level ASL, subsets WLASL100/300/1000/2000.

Verified against the publishers' repository dxli94/WLASL:
- `start_kit/README.md`: `WLASL_v0.3.json` is a list of glosses, each `{"gloss", "instances": [...]}`; an instance
  has `video_id`, `split` (train/val/test), `signer_id`, `fps` (25, "used to decode the video"), `frame_start`
  ("indexed from 1") and `frame_end` ("-1 indicates the gloss ends at the last frame"), `url`, `source`, ...
  The subsets WLASL100/300/1000/2000 are "the top-K glosses from the WLASL_vx.x.json file", so the class order is
  the file's gloss order.
- `start_kit/preprocess.py` (what makes `videos/<video_id>.mp4`): YouTube instances are cut from
  `raw_videos_mp4/<url[-11:]>.mp4` as frames `frame_start-1 .. frame_end-1` inclusive (the whole video when
  `frame_end <= 0`); every other instance is `raw_videos_mp4/<video_id>.mp4` copied whole.
- `code/I3D/datasets/nslt_dataset.py` and `code/I3D/preprocess/nslt_{100,300,1000,2000}.json`: the start-kit form
  `{video_id: {"subset": train|val|test, "action": [class, start, end]}}`, videos read as `<videos>/<video_id>.mp4`
  from frame 0 (for 5-digit ids); `wlasl_class_list.txt` lines are `index<TAB>gloss`, in the JSON's gloss order.

So: a video in `videos/` (made by preprocess.py, or the publishers' pre-processed copies) is already the clip and
is used whole. Without it, the raw download is used as preprocess.py would: a YouTube video cut to seconds
`(frame_start - 1) / fps` .. `frame_end / fps` (end exclusive; -1 = to the end), any other raw video whole. The
start-kit form carries no urls or signers, so it uses `videos/` only and has no `signer` column. (preprocess.py itself
slices frames as OpenCV decodes them, at the video's own rate; the README's 25 fps is followed here, as the README
asks: "if you decode with different FPS, you may need to recalculate the frame_start and frame_end".)
Columns: `label` (gloss), `signer` (signer_id), `video_id`, `split`. `val` becomes `validation`.
"""

import json
from pathlib import Path

from .common import CorpusError, CorpusIndex, clip_source, first_existing, files_by_stem, read_class_list, split_name

SUBSETS = (100, 300, 1000, 2000)
SPLITS = ("train", "validation", "test")


def read_wlasl(root, *, subset=2000, annotations=None, video_dir=None) -> CorpusIndex:
    """Index WLASL under `root` (the repository's `start_kit/` or any folder holding its files).

    Args:
        subset: 100, 300, 1000 or 2000 (WLASL100 ... WLASL2000).
        annotations: the annotation file to read: `WLASL_v0.3.json` (any `WLASL_v*.json`) or `nslt_<subset>.json`;
            by default `WLASL_v0.3.json` (else the newest `WLASL_v*.json`) in `root`, else `nslt_<subset>.json`.
        video_dir: the folder of cut clips `<video_id>.mp4` (default `root/videos`).
    """
    root = Path(root)
    if int(subset) not in SUBSETS:
        raise CorpusError(f"WLASL subset must be one of {SUBSETS}, got {subset}.")
    subset = int(subset)
    annotations = Path(annotations) if annotations else _default_annotations(root, subset)
    clips_dir = Path(video_dir) if video_dir else root / "videos"
    cut = files_by_stem(clips_dir)
    if annotations.name.startswith("nslt_"):
        return _read_nslt(root, annotations, subset, clips_dir, cut)
    return _read_full(root, annotations, subset, clips_dir, cut)


def _default_annotations(root, subset) -> Path:
    versions = sorted(root.glob("WLASL_v*.json"))
    preferred = root / "WLASL_v0.3.json"
    if preferred.is_file():
        return preferred
    if versions:
        return versions[-1]
    return first_existing([root / f"nslt_{subset}.json", root / "preprocess" / f"nslt_{subset}.json"],
                          f"WLASL annotations (WLASL_v0.3.json from github.com/dxli94/WLASL start_kit/, or "
                          f"nslt_{subset}.json from its code/I3D/preprocess/) in {root}")


def _load_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CorpusError(f"{path} is not valid JSON: {error}") from error


def _read_full(root, path, subset, clips_dir, cut) -> CorpusIndex:
    glosses = _load_json(path)
    if not isinstance(glosses, list) or not all(isinstance(g, dict) and "gloss" in g for g in glosses):
        raise CorpusError(f"{path} is not a WLASL file: expected a list of {{'gloss', 'instances'}} objects.")
    if len(glosses) < subset:
        raise CorpusError(f"{path} has {len(glosses)} glosses, fewer than WLASL{subset} needs.")
    raw = {}
    for folder in ("raw_videos_mp4", "raw_videos"):  # preprocess.py's input, then the downloader's own output
        for stem, file in files_by_stem(root / folder).items():
            raw.setdefault(stem, file)
    index = CorpusIndex("wlasl", {split: [] for split in SPLITS}, [g["gloss"] for g in glosses[:subset]],
                        notes=[f"read {path} (WLASL{subset})"])
    for number, entry in enumerate(glosses[:subset]):
        for instance in entry.get("instances", []):
            where = f"{path}, gloss {number} ({entry['gloss']!r}), video {instance.get('video_id')!r}"
            try:
                video_id = str(instance["video_id"])
                split = split_name(instance["split"], where)
                start, end, fps = int(instance["frame_start"]), int(instance["frame_end"]), float(instance["fps"])
            except (KeyError, TypeError, ValueError) as error:
                raise CorpusError(f"{where}: bad instance ({type(error).__name__}: {error}).") from None
            columns = {"label": entry["gloss"], "signer": _text(instance.get("signer_id")), "video_id": video_id,
                       "split": split}
            url = str(instance.get("url", ""))
            youtube = "youtube" in url or "youtu.be" in url
            if video_id in cut:
                clip = clip_source(where, cut[video_id], clip_id=video_id, columns=columns)
            elif youtube and url[-11:] in raw:
                clip = clip_source(where, raw[url[-11:]], clip_id=video_id, start=(start - 1) / fps,
                                   end=None if end <= 0 else end / fps, columns=columns)
            elif not youtube and video_id in raw:
                clip = clip_source(where, raw[video_id], clip_id=video_id, columns=columns)
            else:
                index.missing.append(str(clips_dir / f"{video_id}.mp4"))
                continue
            index.splits[split].append(clip)
    return index


def _text(value):
    return None if value is None else str(value)


def _read_nslt(root, path, subset, clips_dir, cut) -> CorpusIndex:
    entries = _load_json(path)
    if not isinstance(entries, dict):
        raise CorpusError(f"{path} is not an nslt file: expected {{video_id: {{'subset', 'action'}}}}.")
    class_file = first_existing([path.parent / "wlasl_class_list.txt", root / "wlasl_class_list.txt"],
                                f"wlasl_class_list.txt (beside {path.name} in WLASL's code/I3D/preprocess/)")
    names = read_class_list(class_file)[:subset]
    index = CorpusIndex("wlasl", {split: [] for split in SPLITS}, names,
                        notes=[f"read {path} with {class_file} (WLASL{subset}); no signer ids in this form"])
    for video_id, entry in entries.items():
        where = f"{path}, video {video_id!r}"
        try:
            split = split_name(entry["subset"], where)
            label = int(entry["action"][0])
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise CorpusError(f"{where}: bad entry ({type(error).__name__}: {error}).") from None
        if not 0 <= label < len(names):
            raise CorpusError(f"{where}: class {label} is outside WLASL{subset}'s {len(names)} classes; is this "
                              f"nslt_{subset}.json?")
        if video_id not in cut:
            index.missing.append(str(clips_dir / f"{video_id}.mp4"))
            continue
        columns = {"label": names[label], "video_id": video_id, "split": split}
        index.splits[split].append(clip_source(where, cut[video_id], clip_id=video_id, columns=columns))
    return index

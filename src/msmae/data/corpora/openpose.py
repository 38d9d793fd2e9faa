"""OpenPose keypoint releases: folders of per-frame JSON (How2Sign's `openpose_output/json/<clip>/`, and the same
layout wherever it appears). `msmae prepare openpose ROOT --frame_size WxH --fps FPS` writes rows without video.

Layout, as OpenPose's `--write_json` writes it (CMU-Perceptual-Computing-Lab/openpose `doc/02_output.md`, earlier
`doc/output.md`): one `<name>_<frame:012d>_keypoints.json` per frame holding `version` and `people`, a list of
persons each with `pose_keypoints_2d` (BODY_25: 25 x (x, y, c)), `face_keypoints_2d` (70 x 3),
`hand_left_keypoints_2d` and `hand_right_keypoints_2d` (21 x 3); x and y in pixels of the source (the default
`keypoint_scale`), c the confidence in [0, 1], and (0, 0, 0) for a part not found. How2Sign puts one folder per
sentence clip in `How2Sign/sentence_level/<split>/rgb_front/features/openpose_output/json/<SENTENCE_NAME>/` beside
`text/en/raw_text/re_aligned/how2sign_realigned_<split>.csv` (as public How2Sign readers read it).

Mapping: BODY_25 LShoulder, RShoulder, LElbow, RElbow, LWrist, RWrist (5, 2, 6, 3, 7, 4) to the body stream (OpenPose
names the person's own sides, as MediaPipe does on an unmirrored video), the 21-point hands to the hand streams
(OpenPose's hand model has MediaPipe's 21-landmark topology and order), x / width and y / height, confidence 0 as
not detected; z and visibility are 0 (2D keypoints; OpenPose's confidence is not MediaPipe's visibility). The face
stream is always marked absent: OpenPose's 70 face points are not MediaPipe's face mesh, and none is made up.
A frame whose `people` is empty is a frame with nothing detected; with several people the one with the largest
summed body confidence is kept. Frames run from the first to the last frame number in the file names; a number
without a file is a frame with nothing detected.

The frame size is not in the JSON: it comes from `frame_size` ("1280x720"; How2Sign's clips are 1280x720) or from a
video named like the clip folder under ROOT; when neither gives it, `CorpusError` says so. The frame rate likewise
(`fps`, else the video). Rows carry `keypoint_source = "openpose_body25"` and the card says that a model pretrained
on MediaPipe sees these keypoints as a different distribution.

Splits: a folder below a `train`, `val` or `test` folder belongs to that split (How2Sign's; `split` column), else to
`train` without a `split` column (the recipes then split by themselves). When
How2Sign's `how2sign_realigned_*.csv` files are under ROOT, each clip gets its `text` (SENTENCE) and
`video_name`; a clip without a sentence is left out (counted in the notes), a sentence without a folder is missing.
"""

import json
import os
import re
from pathlib import Path

import numpy as np

from ...keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
from ...pose_io import SignPose
from .common import SPLIT_ALIASES, CorpusError, CorpusIndex, clip_source, files_by_stem, read_table, split_name
from .splits import apply_split

OPENPOSE_SOURCE = "openpose_body25"
FRAME_FILE = re.compile(r"(?:^|_)(\d+)_keypoints\.json$")
BODY25_BODY = (5, 2, 6, 3, 7, 4)  # LShoulder, RShoulder, LElbow, RElbow, LWrist, RWrist in BODY_25
BODY25_POINTS = 25
HAND_POINTS = 21
H2S_COLUMNS = ("VIDEO_NAME", "SENTENCE_NAME", "SENTENCE")
_SLICES = stream_slices()


def parse_frame_size(value) -> tuple[int, int]:
    """(width, height) from "WxH"."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
    if not match or not int(match.group(1)) or not int(match.group(2)):
        raise CorpusError(f"--frame_size must be WIDTHxHEIGHT in pixels, e.g. 1280x720; got {value!r}.")
    return int(match.group(1)), int(match.group(2))


def _points(person, key, count, path):
    values = person.get(key) or []
    if not values:
        return np.zeros((count, 3))
    if len(values) != count * 3:
        raise CorpusError(f"{path}: {key} has {len(values)} values, expected {count * 3} ({count} points x (x, y, c))"
                          + ("; BODY_25 is expected, not COCO-18" if key == "pose_keypoints_2d" else "") + ".")
    return np.asarray(values, dtype=np.float64).reshape(count, 3)


def read_openpose_frame(path) -> tuple[np.ndarray, np.ndarray]:
    """(xy (160, 2) in pixels, detected (160,)) of one OpenPose JSON frame, in stored order (face never set)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CorpusError(f"{path}: not a readable OpenPose JSON file ({error}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise CorpusError(f"{path}: no `people` list; expected OpenPose's --write_json output.")
    xy = np.zeros((NUM_STORED_KEYPOINTS, 2))
    present = np.zeros(NUM_STORED_KEYPOINTS, dtype=bool)
    if not data["people"]:
        return xy, present
    people = [(_points(p, "pose_keypoints_2d", BODY25_POINTS, path), p) for p in data["people"]]
    body, person = max(people, key=lambda item: item[0][:, 2].sum())
    for stream, values in (("body", body[list(BODY25_BODY)]),
                           ("left_hand", _points(person, "hand_left_keypoints_2d", HAND_POINTS, path)),
                           ("right_hand", _points(person, "hand_right_keypoints_2d", HAND_POINTS, path))):
        xy[_SLICES[stream]] = values[:, :2]
        present[_SLICES[stream]] = values[:, 2] > 0
    return xy, present


def frame_files(folder) -> dict[int, Path]:
    """{frame number: file} of an OpenPose JSON folder."""
    found = {}
    for name in os.listdir(folder):
        match = FRAME_FILE.search(name)
        if match:
            number = int(match.group(1))
            if number in found:
                raise CorpusError(f"{folder}: frame {number} is given by {found[number].name} and {name}.")
            found[number] = Path(folder) / name
    return found


def read_openpose_folder(folder, *, width, height, fps, metadata=None) -> SignPose:
    """One clip's OpenPose JSON folder as a `SignPose` (see the module docstring)."""
    if not (width and height):
        raise CorpusError(f"{folder}: the frame size is unknown; pass frame_size (--frame_size WxH).")
    files = frame_files(folder)
    if not files:
        raise CorpusError(f"{folder}: no *_keypoints.json files.")
    first, last = min(files), max(files)
    keypoints = np.zeros((last - first + 1, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    mask = np.zeros((last - first + 1, NUM_STORED_KEYPOINTS), dtype=bool)
    scale = np.array([width, height], dtype=np.float64)
    for number, path in files.items():
        xy, present = read_openpose_frame(path)
        keypoints[number - first, present, :2] = (xy[present] / scale).astype(np.float32)
        mask[number - first] = present
    metadata = {**(metadata or {}), "start_frame": first, "end_frame": last + 1}
    return SignPose(keypoints, mask, fps=fps, width=width, height=height, source=str(folder), metadata=metadata)


def video_size_and_fps(path) -> tuple[int, int, float]:
    """(width, height, fps) of a video, from its first frame."""
    from ...holistic import VideoReader

    with VideoReader(path) as video:
        for frame in video:
            return int(frame.shape[1]), int(frame.shape[0]), float(video.fps or 0.0)
    raise CorpusError(f"{path}: no frames, so it cannot give the frame size.")


class _Loader:
    """`load_pose` of the index: the frame size and rate found for each clip at indexing."""

    def __init__(self):
        self.geometry = {}

    def __call__(self, clip):
        width, height, fps = self.geometry[clip.clip_id]
        return read_openpose_folder(clip.path, width=width, height=height, fps=fps,
                                    metadata={"clip_id": clip.clip_id})


def _sentences(csv_files) -> dict:
    """{SENTENCE_NAME: (official split, row)} from How2Sign's re-aligned CSVs."""
    sentences = {}
    for path in csv_files:
        official = path.stem.rsplit("_", 1)[-1]
        for line, row in read_table(path, delimiter="\t", required=H2S_COLUMNS, where=f"How2Sign {path.name}"):
            sentences[row["SENTENCE_NAME"]] = (split_name(official, f"{path}, line {line}"), row)
    return sentences


def read_openpose(root, *, frame_size=None, fps=None, split_by=None, seed=0) -> CorpusIndex:
    """Index the OpenPose JSON folders under `root` (see the module docstring).

    Args:
        frame_size: "WIDTHxHEIGHT" of the source videos (else each clip's video under `root` gives it).
        fps: frame rate of the source videos (else each clip's video gives it).
        split_by, seed: signer-disjoint splits (`msmae.data.corpora.splits`; needs a signer column, which OpenPose
            folders alone do not give).
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"OpenPose root not found: {root}")
    size = parse_frame_size(frame_size) if frame_size is not None else None
    folders, csv_files = [], []
    for directory, subdirectories, names in os.walk(root):
        subdirectories.sort()
        if any(FRAME_FILE.search(name) for name in names):
            folders.append(Path(directory))
            subdirectories[:] = []  # a clip folder holds frames only
        csv_files += [Path(directory) / n for n in sorted(names) if re.fullmatch(r"how2sign_realigned_\w+\.csv", n)]
    sentences = _sentences(csv_files)
    videos = files_by_stem(root) if size is None or fps is None else {}
    loader = _Loader()
    index = CorpusIndex("openpose", {"train": []} if not sentences else {"train": [], "validation": [], "test": []})
    index.load_pose, index.keypoint_source = loader, OPENPOSE_SOURCE
    index.notes.append("OpenPose BODY_25 + hands; face stream marked absent (OpenPose's 70 face points are not "
                       "MediaPipe's face mesh)")
    unknown, without_text = [], 0
    for folder in folders:
        name = folder.name
        where = str(folder)
        columns = {"keypoint_source": OPENPOSE_SOURCE}
        parts = folder.relative_to(root).parts
        official = next((part for part in parts if part.lower() in SPLIT_ALIASES), None)
        if official is not None:
            columns["split"] = split_name(official, where)
        if sentences:
            if name not in sentences:
                without_text += 1
                continue
            columns["split"], row = sentences[name]
            columns.update(text=row["SENTENCE"], video_name=row["VIDEO_NAME"])
        width, height = size or (0, 0)
        rate = fps
        if size is None or fps is None:
            video = videos.get(name)
            if video is not None:
                video_width, video_height, video_fps = video_size_and_fps(video)
                width, height = size or (video_width, video_height)
                rate = fps or video_fps or None
        if not (width and height and rate):
            unknown.append(where)
            continue
        loader.geometry[name] = (width, height, float(rate))
        index.splits.setdefault(columns.get("split", "train"), []).append(clip_source(where, folder, clip_id=name,
                                                                         columns=columns))
    if unknown:
        raise CorpusError(f"The frame size or rate of {len(unknown)} OpenPose folders is unknown (e.g. {unknown[0]}): "
                          "OpenPose's JSON does not record them. Pass --frame_size WxH and --fps (How2Sign's clips "
                          "are 1280x720), or put each clip's video, named like its folder, under ROOT.")
    if sentences:
        found = {folder.name for folder in folders}
        index.missing += [f"{name} (How2Sign sentence without an OpenPose folder)" for name in sentences
                          if name not in found]
        index.notes.append(f"text from {', '.join(p.name for p in csv_files)}; {without_text} folders without a "
                           "sentence left out")
    return apply_split(index, split_by, seed)

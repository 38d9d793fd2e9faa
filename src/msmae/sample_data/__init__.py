"""Real signing shipped with msmae, so that it runs on sign language out of the box (no download, no `../shared`).

Two MIT-licensed sets, as MediaPipe Holistic keypoints (1.6 MB); licences and citation in this folder's README.md:

- `asl-app-100`: 100 American Sign Language signs, one clip each (28-84 frames, 29.97 fps), from ASL-App
  (Copyright (c) 2026 Shravan Chandra, MIT; `LICENSE-asl-app-100`).
- `msl150`: 86 clips of 5 Mexican Sign Language glosses (ambulancia 11, doctor 15, dolor 20, hoy 20, yo 20; 30
  frames each, one signer, 1280x720, 29.97 fps), from MSL-150 (Armando de Jesús Becerril Carrillo, MIT;
  `LICENSE-msl150`). Cite it as doi:10.5281/zenodo.17783312 (`CITATION-msl150.cff`).

Clips are named `asl-app-100/<sign>` and `msl150/<gloss>/<sample>`:

    from msmae import sample_data
    pose = sample_data.load_clip("msl150/doctor/2")          # a SignPose, label in pose.metadata["label"]
    clips = sample_data.load_clips("asl-app-100")            # all 100 ASL-App clips
    sample_data.sample_dataset("msl150")                     # a `datasets.Dataset` in msmae's schema, labelled

The keypoints are what msmae's readers make of the upstream files (`tools/build_sample_data.py` regenerates the file
from them), stored in float16. `signs.npz` holds every clip's frames one after another:
`keypoints (frames, 160, 4)` float16 and `keypoint_mask (frames, 160)` bool in `msmae.pose_io`'s stored order, and
one entry per clip in `num_frames`, `fps`, `width`, `height`, `dataset`, `name`, `label` and `source` (the upstream
file, relative to the set's parent folder). It is read with `allow_pickle=False`.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..pose_io import SignPose
from ..clips import load_pose

SAMPLE_FILE = Path(__file__).with_name("signs.npz")
DATASETS = ("asl-app-100", "msl150")


@lru_cache(maxsize=1)
def _arrays() -> dict:
    with np.load(SAMPLE_FILE, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["start"] = np.concatenate([[0], np.cumsum(arrays["num_frames"])[:-1]])
    for array in arrays.values():  # shared by every call: clips get copies (below), so nothing can change these
        array.flags.writeable = False
    return arrays


def _check_dataset(dataset):
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"Unknown sample dataset {dataset!r}; the packaged ones are {', '.join(DATASETS)}.")


def clip_names(dataset: str | None = None) -> list[str]:
    """Names of the packaged clips (of one dataset, or all), in stored order."""
    _check_dataset(dataset)
    arrays = _arrays()
    return [str(n) for n, d in zip(arrays["name"], arrays["dataset"]) if dataset in (None, d)]


def _clip(index: int) -> SignPose:
    """The stored clip as a dataset row (its extra columns become `metadata`), read by the one clip loader."""
    arrays = _arrays()
    frames = slice(arrays["start"][index], arrays["start"][index] + arrays["num_frames"][index])
    return load_pose({
        "keypoints": arrays["keypoints"][frames].copy(),  # the caller's own: editing a clip changes no other
        "keypoint_mask": arrays["keypoint_mask"][frames].copy(),
        "fps": float(arrays["fps"][index]),
        "width": int(arrays["width"][index]),
        "height": int(arrays["height"][index]),
        "source": f"msmae.sample_data:{arrays['name'][index]}",
        "label": str(arrays["label"][index]),
        "dataset": str(arrays["dataset"][index]),
        "upstream_file": str(arrays["source"][index]),
    })


def load_clip(name: str) -> SignPose:
    """One packaged clip by name (`clip_names()` lists them), e.g. "msl150/doctor/2" or "asl-app-100/book"."""
    names = clip_names()
    if name not in names:
        raise KeyError(
            f"No packaged clip named {name!r}. Names look like 'asl-app-100/<sign>' or 'msl150/<gloss>/<sample>', "
            f"e.g. {names[0]!r} or {names[-1]!r}; msmae.sample_data.clip_names() lists all {len(names)}."
        )
    return _clip(names.index(name))


def load_clips(dataset: str | None = None) -> list[SignPose]:
    """Every packaged clip of `dataset` ("asl-app-100" or "msl150"), or of both."""
    _check_dataset(dataset)
    return [_clip(i) for i, d in enumerate(_arrays()["dataset"]) if dataset in (None, d)]


def _rows(dataset, stamp):  # `stamp` is only part of the datasets cache key: a rebuilt file is read again
    for pose in load_clips(dataset):
        yield {**pose.to_example(), "label": pose.metadata["label"]}


def sample_dataset(dataset: str, cache_dir: str | None = None):
    """The clips of one packaged dataset as a `datasets.Dataset` in msmae's schema (`msmae.data.loading`), with a
    `ClassLabel` `label` column (sorted names), as `load_sign_dataset` builds it from the upstream files."""
    if dataset not in DATASETS:
        raise ValueError(f"Unknown sample dataset {dataset!r}; give one of {', '.join(DATASETS)}.")
    from datasets import Dataset

    from ..data.loading import pose_features

    labels = sorted({str(label) for label, d in zip(_arrays()["label"], _arrays()["dataset"]) if d == dataset})
    stamp = (SAMPLE_FILE.stat().st_size, SAMPLE_FILE.stat().st_mtime_ns)
    return Dataset.from_generator(
        _rows, features=pose_features(labels), cache_dir=cache_dir, gen_kwargs={"dataset": dataset, "stamp": stamp}
    )

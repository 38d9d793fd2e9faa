"""Data for the transfer evaluation: the held-out SignSuisse split, normalised clips and MSL-150.

Nothing here is copied into the repository: the held-out split is a pair of folders of symlinks in the work
directory (outside the repo), so `run_pretraining.py` reads the training part as an ordinary folder of clips.
"""

import os
from pathlib import Path

import numpy as np

from msmae.keypoint_layout import DEFAULT_STREAMS
from msmae.clips import load_pose
from msmae.processing_msmae import MSMAEPoseProcessor

STREAMS = list(DEFAULT_STREAMS)  # body and both hands, as the transfer runs were made


def split_signsuisse(data_root, work_dir, fraction=0.1, seed=0) -> tuple[Path, Path, list[str]]:
    """Symlink folders `signsuisse-train/` and `signsuisse-heldout/` under `work_dir/data`, split by file.

    The split is a seeded permutation of the sorted file list (full/ and reduced/ hold different recordings), so
    it is the same on every run. Returns the two folders and the held-out file names.
    """
    root = Path(data_root) / "signsuisse"
    files = sorted(list((root / "full").glob("*.pose")) + list((root / "reduced").glob("*.pose")))
    if not files:
        raise FileNotFoundError(f"No SignSuisse .pose files under {root}; pass --data-root pointing at shared/data.")
    held = set(np.random.default_rng(seed).permutation(len(files))[: round(fraction * len(files))].tolist())
    folders = {name: Path(work_dir) / "data" / name for name in ("signsuisse-train", "signsuisse-heldout")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    wanted = {name: set() for name in folders}
    for i, path in enumerate(files):
        name = "signsuisse-heldout" if i in held else "signsuisse-train"
        wanted[name].add(path.name)
        link = folders[name] / path.name
        if not link.is_symlink():
            os.symlink(path.resolve(), link)
    for name, folder in folders.items():  # a stale link from another split would leak held-out clips
        extra = {p.name for p in folder.iterdir()} - wanted[name]
        if extra:
            raise RuntimeError(f"{folder} holds files outside this split ({sorted(extra)[:3]}...); delete the folder.")
    return folders["signsuisse-train"], folders["signsuisse-heldout"], sorted(wanted["signsuisse-heldout"])


def normalised_clips(paths, streams=STREAMS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every frame of each clip as `(values (T, K, 2), keypoint_mask (T, K))`, normalised exactly as in
    pretraining (the processor's per-clip shoulder normalisation, statistics from the whole clip)."""
    processor = MSMAEPoseProcessor(streams=streams, sampling="full")
    return [processor.process_clip(load_pose(str(p)), training=False) for p in paths]


def clip_paths(folder) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix in (".pose", ".json") and p.name != "metadata.json")


def msl150(data_root, streams=STREAMS, num_frames=32):
    """MSL-150 as `(pose_values (N, 32, K, 2), keypoint_mask (N, 32, K), labels (N,), label_names)`: 32 frames
    sampled uniformly (the recognition preset's evaluation sampling, no augmentation)."""
    root = Path(data_root) / "msl150" / "data" / "sample_npy"
    glosses = sorted(p for p in root.iterdir() if p.is_dir())
    if not glosses:
        raise FileNotFoundError(f"No MSL-150 samples under {root}.")
    processor = MSMAEPoseProcessor(streams=streams, sampling="uniform", num_frames=num_frames)
    values, masks, labels = [], [], []
    for label, gloss in enumerate(glosses):
        for sample in sorted((p for p in gloss.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name)):
            v, m = processor.process_clip(load_pose(str(sample)), training=False)
            values.append(v)
            masks.append(m)
            labels.append(label)
    return np.stack(values), np.stack(masks), np.array(labels), [g.name for g in glosses]

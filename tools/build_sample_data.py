#!/usr/bin/env python
"""Regenerate the real signing data shipped inside msmae (`src/msmae/sample_data/`) from `../shared/data`.

Only the MIT-licensed sets are packed, each with its licence notice (and MSL-150 with its citation):
ASL-App-100 (100 ASL signs, one clip each) and MSL-150 (5 Mexican Sign Language glosses, 86 clips). The clips are
read by msmae's own dataset builders (`msmae.data.loading.load_sign_dataset`, the same readers `msmae demo` and
the example scripts use on the full folders) and stored in the layout `msmae.sample_data` documents: every
clip's frames one after another, keypoints in float16, in one compressed `.npz` read with `allow_pickle=False`.
The other sets in `../shared/data` (SignSuisse, PHOENIX14T) must never be shipped: their licences do not allow it.

    python tools/build_sample_data.py                       # reads ../shared/data (or $MSMAE_SHARED_DATA)
    python tools/build_sample_data.py --data_dir /path/to/shared/data

Run it again after a change to the readers; tests/data/test_sample_data.py checks that the shipped file still matches.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO_ROOT / "src" / "msmae" / "sample_data"
# Shipped sets: folder in ../shared/data -> the files copied beside the data as its licence notice.
SHIPPED_SETS = {
    "asl-app-100": {"LICENSE": "LICENSE-asl-app-100"},
    "msl150": {"LICENSE": "LICENSE-msl150", "CITATION.cff": "CITATION-msl150.cff"},
}


def default_data_dir() -> Path:
    return Path(os.environ.get("MSMAE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def read_clips(data_dir) -> list[dict]:
    """Every clip of the shipped sets as the readers give it: dicts with `dataset`, `name`, `label`, `source`
    (the upstream path, relative to `data_dir`), `keypoints`, `keypoint_mask`, `fps`, `width`, `height`."""
    from msmae.data.loading import load_sign_dataset

    data_dir = Path(data_dir).resolve()
    clips = []
    with tempfile.TemporaryDirectory() as cache:
        for dataset in SHIPPED_SETS:
            rows = load_sign_dataset(data_dir / dataset, cache_dir=cache).with_format("numpy")
            names = rows.features["label"].names
            for row in rows:
                source = Path(str(row["source"])).resolve().relative_to(data_dir).as_posix()
                label = names[int(row["label"])]
                # asl-app-100/signs/book.json -> asl-app-100/book; msl150/data/sample_npy/doctor/12 -> msl150/doctor/12
                name = f"{dataset}/{label}" if dataset == "asl-app-100" else f"{dataset}/{label}/{Path(source).name}"
                clips.append({
                    "dataset": dataset, "name": name, "label": label, "source": source,
                    "keypoints": np.asarray(row["keypoints"], dtype=np.float32),
                    "keypoint_mask": np.asarray(row["keypoint_mask"], dtype=bool),
                    "fps": float(row["fps"]), "width": int(row["width"]), "height": int(row["height"]),
                })
    return clips


def pack(clips: list[dict]) -> dict[str, np.ndarray]:
    """The arrays of `msmae.sample_data`'s file (its docstring describes them)."""
    return {
        "keypoints": np.concatenate([c["keypoints"] for c in clips]).astype(np.float16),
        "keypoint_mask": np.concatenate([c["keypoint_mask"] for c in clips]),
        "num_frames": np.array([len(c["keypoints"]) for c in clips], dtype=np.int32),
        "fps": np.array([c["fps"] for c in clips], dtype=np.float32),
        "width": np.array([c["width"] for c in clips], dtype=np.int32),
        "height": np.array([c["height"] for c in clips], dtype=np.int32),
        **{key: np.array([c[key] for c in clips], dtype=str) for key in ("dataset", "name", "label", "source")},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", type=Path, default=default_data_dir(), help="../shared/data (default: %(default)s)")
    parser.add_argument("--output_dir", type=Path, default=OUTPUT_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    missing = [name for name in SHIPPED_SETS if not (args.data_dir / name).is_dir()]
    if missing:
        parser.error(f"{args.data_dir} lacks {', '.join(missing)}; point --data_dir at the shared data folder.")

    clips = read_clips(args.data_dir)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    target = args.output_dir / "signs.npz"
    np.savez_compressed(target, **pack(clips))
    for dataset, notices in SHIPPED_SETS.items():
        for upstream, shipped in notices.items():
            shutil.copyfile(args.data_dir / dataset / upstream, args.output_dir / shipped)
    frames = sum(len(c["keypoints"]) for c in clips)
    print(f"wrote {target}: {len(clips)} clips, {frames} frames, {target.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

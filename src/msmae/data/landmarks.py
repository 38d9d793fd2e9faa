"""Rows of corpora published as keypoints (asl-signs, asl-fingerspelling, OpenPose folders): no MediaPipe run.

`landmark_rows(clips, load_pose, column_features)` reads each clip with the corpus's `load_pose` and writes the
same stored row as extraction (`schema.row_features`, with the clips' columns typed as `run_extraction` types
them), so `msmae.data.prepare` splits, saves and describes them on the one path it uses for videos.
"""

from .extract import _column_features
from .schema import row_features


def landmark_features(clips, column_features=None):
    """`datasets.Features` of the rows of `clips`: the stored row, then the clips' columns."""
    return row_features({**_column_features([clip.columns for clip in clips]), **(column_features or {})})


def _rows(clips, load_pose):
    for clip in clips:
        pose = load_pose(clip)
        pose.metadata["clip_id"] = clip.clip_id
        yield {**pose.to_example(), **clip.columns}


def landmark_rows(clips, load_pose, column_features=None, cache_dir=None, num_proc=None):
    """A `datasets.Dataset` with one row per clip, in `clips` order, written to `cache_dir` as it is read (a large
    corpus never sits in memory). `num_proc` > 1 reads contiguous shards of `clips` in that many processes (asl-signs
    is ~94,000 files)."""
    from datasets import Dataset

    features = landmark_features(clips, column_features)
    num_proc = num_proc if num_proc and num_proc > 1 and len(clips) > 1 else None
    return Dataset.from_generator(_rows, features=features, cache_dir=cache_dir, num_proc=num_proc,
                                  gen_kwargs={"clips": list(clips), "load_pose": load_pose})

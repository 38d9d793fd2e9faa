"""Training support for msmae's scripts (examples/run_pretraining.py, examples/run_sign_classification.py) and
the end-to-end demo (`msmae demo`).

- `data`: the pose dataset schema, builders from pose files, MSL-150, ASL-App, CSV manifests, `msmae extract`
  output, Parquet/Arrow and the Hub; signer-independent / stratified splits.
- `collator`: per-clip processing with reproducible randomness (seeded by seed, epoch and clip index) and the
  padding collator.
- `metrics`: top-k accuracy (per instance and per class) and the confusion matrix picture.
- `model_card`: Hub model cards (metadata, usage snippet, limitations) for any msmae checkpoint.
- `hub`: uploading an output folder with its card.
- `callbacks`: epoch seeding and the reconstruction picture at evaluation.
- `synthetic`: procedurally generated signing-like clips for running without real data.
- `demo`: pretraining -> fine-tuning -> evaluation -> prediction end to end.
"""

from .collator import ClipSampler, PoseClipDataset, PoseCollator, StreamingPoseClipDataset, clip_dataset
from ..data.loading import (
    dataset_from_asl_app,
    dataset_from_folder,
    dataset_from_manifest,
    dataset_from_msl150,
    dataset_from_records,
    load_pose_corpus,
    load_sign_dataset,
    pose_features,
    split_dataset,
)
from ..metrics.classification import classification_metrics, compute_metrics
from .model_card import build_model_card, write_model_card

__all__ = [
    "ClipSampler",
    "PoseClipDataset",
    "PoseCollator",
    "StreamingPoseClipDataset",
    "build_model_card",
    "classification_metrics",
    "clip_dataset",
    "compute_metrics",
    "dataset_from_asl_app",
    "dataset_from_folder",
    "dataset_from_manifest",
    "dataset_from_msl150",
    "dataset_from_records",
    "load_pose_corpus",
    "load_sign_dataset",
    "pose_features",
    "split_dataset",
    "write_model_card",
]

"""Cross-signer mode of the transfer evaluation: recognition on signers never seen in training.

`--cross-signer FOLDER` names a dataset prepared with signer-disjoint splits (`msmae prepare asl_signs ROOT
--split_by signer --seed N --output_dir FOLDER`). A linear probe and 1-nearest-neighbour are fitted on every clip of
the `train` split and scored on every clip of the `test` split, whose signers are all unseen; on frozen features of
the pretrained model, of its random init, and on raw keypoints. A dataset whose train and test share a signer is
refused (the figures would not be cross-signer).
"""

from functools import lru_cache

import numpy as np

from msmae.pose_io import SignPose
from msmae.processing_msmae import MSMAEPoseProcessor
from transfer_data import STREAMS
from transfer_fewshot import linear_probe_accuracy, nearest_neighbour_accuracy


@lru_cache(maxsize=2)
def cross_signer_data(folder, streams=tuple(STREAMS), num_frames=32, train_split="train", test_split="test"):
    """`(values (N, T, K, 2), mask (N, T, K), labels (N,), train indices, test indices, signers of each)` from a
    prepared signer-disjoint dataset; clips sampled as the recognition preset evaluates (uniform, no augmentation)."""
    from datasets import load_from_disk

    data = load_from_disk(str(folder))
    for split in (train_split, test_split):
        if split not in data:
            raise SystemExit(f"{folder} has no {split!r} split (has {list(data)}); prepare it with --split_by signer.")
    signers = {split: set(data[split]["signer"]) for split in (train_split, test_split)}
    shared = sorted(signers[train_split] & signers[test_split])
    if shared:
        raise SystemExit(f"{folder}: signers {shared[:5]} are in both {train_split} and {test_split}, so its test is "
                         "not cross-signer; prepare it with --split_by signer.")
    processor = MSMAEPoseProcessor(streams=list(streams), sampling="uniform", num_frames=num_frames)
    values, masks, labels, groups = [], [], [], []
    for split in (train_split, test_split):
        for row in data[split].with_format("numpy"):
            v, m = processor.process_clip(SignPose.from_example(row), training=False)
            values.append(v)
            masks.append(m)
            labels.append(int(row["label"]))
            groups.append(split)
    groups = np.array(groups)
    return (np.stack(values), np.stack(masks), np.array(labels), np.flatnonzero(groups == train_split),
            np.flatnonzero(groups == test_split), {split: sorted(s) for split, s in signers.items()})


def cross_signer_scores(features, labels, train, test) -> dict:
    """{feature name: {"probe": accuracy %, "1nn": accuracy %}}: fitted on `train`, scored on `test`."""
    return {name: {"probe": 100 * linear_probe_accuracy(x, labels, train, test),
                   "1nn": 100 * nearest_neighbour_accuracy(x, labels, train, test)}
            for name, x in features.items()}


def cross_signer(folder, pretrained, initial) -> dict:
    """The cross-signer figures of one run (`pretrained` and `initial` are `MSMAEForPreTraining`s)."""
    from transfer_fewshot import encoder_features

    values, mask, labels, train, test, signers = cross_signer_data(str(folder))
    features = {"pretrained": encoder_features(pretrained.msmae, values, mask),
                "random_init": encoder_features(initial.msmae, values, mask),
                "raw_keypoints": values.reshape(len(values), -1)}
    return {"dataset": str(folder), "train_clips": int(len(train)), "test_clips": int(len(test)),
            "signers": signers, "accuracy": cross_signer_scores(features, labels, train, test)}

"""The transfer evaluation's cross-signer mode (experiments/transfer/transfer_cross_signer.py) on a prepared
signer-disjoint asl-signs fixture."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "transfer"))
from transfer_cross_signer import cross_signer, cross_signer_data  # noqa: E402

from conftest import tiny_config  # noqa: E402
from conftest import write_long_parquet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def prepared(tmp_path, split_by="signer"):
    from msmae.data.prepare import prepare

    root = tmp_path / "asl-signs"
    lines = ["path,participant_id,sequence_id,sign"]
    for s, signer in enumerate(("16069", "26734", "28656", "30680")):
        for n in range(4):
            sequence = 1000 + 10 * s + n
            rel = f"train_landmark_files/{signer}/{sequence}.parquet"
            write_long_parquet(root / rel, list(range(12)), seed=sequence)
            lines.append(f"{rel},{signer},{sequence},{('TV', 'airplane')[n % 2]}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / f"prepared-{split_by}"
    prepare("asl_signs", root, out, progress=False, **({"split_by": split_by, "seed": 0} if split_by else {}))
    return out


def test_cross_signer_scores_unseen_signers(tmp_path):
    from msmae import MSMAEForPreTraining

    folder = prepared(tmp_path)
    values, mask, labels, train, test, signers = cross_signer_data(str(folder))
    assert not set(signers["train"]) & set(signers["test"])
    assert len(train) == 8 and len(test) == 4 and values.shape[:2] == (12, 32) and set(labels) == {0, 1}
    torch.manual_seed(0)
    pretrained, initial = (MSMAEForPreTraining(tiny_config(num_hidden_layers=1, cubelet_size=2)) for _ in range(2))
    result = cross_signer(str(folder), pretrained, initial)
    assert (result["train_clips"], result["test_clips"]) == (8, 4)
    for name in ("pretrained", "random_init", "raw_keypoints"):
        for method in ("probe", "1nn"):
            correct = result["accuracy"][name][method] * 4 / 100  # of the 4 test clips
            assert 0 <= correct <= 4 and np.isclose(correct, round(correct))


def test_cross_signer_refuses_splits_that_share_a_signer(tmp_path):
    from datasets import DatasetDict, concatenate_datasets, load_from_disk

    folder = prepared(tmp_path, split_by=None)  # train only: no test split
    with pytest.raises(SystemExit, match="no 'test' split"):
        cross_signer_data(str(folder))
    data = load_from_disk(str(prepared(tmp_path)))
    leaky = tmp_path / "leaky"
    DatasetDict({"train": data["train"], "test": concatenate_datasets([data["test"], data["train"].select([0])])}
                ).save_to_disk(str(leaky))
    with pytest.raises(SystemExit, match=f"signers \\['{data['train'][0]['signer']}'\\] are in both"):
        cross_signer_data(str(leaky))

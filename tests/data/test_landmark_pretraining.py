"""A prepared landmark corpus (Kaggle asl-signs layout, no video) streams unchanged into the pretraining recipe."""

import json
import math

import pytest
from conftest import tiny_overrides

from test_landmark_corpora import write_long_parquet

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_pretraining_streams_a_prepared_asl_signs_corpus(tmp_path):
    from msmae.data.prepare import prepare
    from msmae.recipes import pretraining

    root = tmp_path / "asl-signs"
    lines = ["path,participant_id,sequence_id,sign"]
    for s, signer in enumerate(("16069", "26734", "28656", "30680")):
        for n in range(4):
            sequence = 1000 + 10 * s + n
            rel = f"train_landmark_files/{signer}/{sequence}.parquet"
            write_long_parquet(root / rel, list(range(5 + n, 25 + 3 * n)), seed=sequence, hidden_left={7, 8})
            lines.append(f"{rel},{signer},{sequence},{('TV', 'airplane')[n % 2]}")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "prepared"
    summary = prepare("asl_signs", root, out, progress=False, split_by="signer", seed=1)
    assert sum(summary.rows.values()) == 16 and summary.rows["validation"] == 4

    output = tmp_path / "pretrained"
    pretraining.main([
        "--output_dir", str(output), "--config_overrides", tiny_overrides(), "--do_train", "--do_eval",
        "--dataset_name", str(out), "--streaming", "--max_steps", "3", "--max_eval_samples", "4",
        "--shuffle_buffer_size", "8", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--window_size", "48", "--num_frames", "24", "--warmup_steps", "1", "--logging_steps", "1", "--use_cpu",
        "--report_to", "none", "--disable_tqdm", "true", "--log_level", "warning",
    ])
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 3
    assert math.isfinite(json.loads((output / "eval_results.json").read_text())["eval_loss"])

"""A prepared landmark corpus (Kaggle asl-signs layout, no video) streams unchanged into the pretraining recipe."""

import json
import math

import pytest
from conftest import make_parts, tiny_overrides, write_long_parquet

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


def test_translation_recipe_trains_on_a_prepared_asl_fingerspelling_corpus(tmp_path):
    from conftest import fingerspelling_root

    from msmae.data.prepare import prepare
    from msmae.recipes import sign_translation

    root, _ = fingerspelling_root(tmp_path)
    out = tmp_path / "prepared"
    prepare("asl_fingerspelling", root, out, progress=False)
    tokenizer, text_dir, pose_dir = make_parts(tmp_path, ["3 Creekhouse", "scales/kuhaylah", "https://jsi.is/hukuoka",
                                                          "coming up with killer sound bites"])
    output = tmp_path / "translated"  # de_DE: the only language code of the test tokenizer
    sign_translation.main([
        "--pose_encoder_name_or_path", str(pose_dir), "--text_model_name_or_path", str(text_dir),
        "--dataset_name", str(out), "--target_lang", "de_DE", "--output_dir", str(output), "--do_train",
        "--max_steps", "2", "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--save_strategy", "no",
        "--load_best_model_at_end", "false", "--warmup_epochs", "0", "--logging_steps", "1", "--report_to", "none",
        "--max_target_length", "8", "--dataloader_num_workers", "0", "--use_cpu", "--disable_tqdm", "true",
    ])
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 2

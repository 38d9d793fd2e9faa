"""examples/run_sign_translation.py: Table 5 presets, and an offline end-to-end run on the PHOENIX14T sample (a
tokenizer fitted on the PHOENIX sentences, a tiny random mBART and MS-MAE; train a few steps, generate, score)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import MBartConfig, MBartForConditionalGeneration, PreTrainedTokenizerFast

from msmae import MSMAEConfig, MSMAEForPreTraining
from msmae.modeling_sign_translation import SignTranslationModel

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "run_sign_translation.py"
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # mBART's ids 0-3


def load_script():
    spec = importlib.util.spec_from_file_location("run_sign_translation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fit_tokenizer(sentences, vocab_size=600) -> PreTrainedTokenizerFast:
    """A SentencePiece-style BPE fitted offline, with mBART-50's special tokens and a `de_DE` language code that
    starts every target (`de_DE ... </s>`), as MBart50Tokenizer does."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        sentences, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + ["de_DE"])
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="de_DE $A </s>",
        special_tokens=[("de_DE", tokenizer.token_to_id("de_DE")), ("</s>", tokenizer.token_to_id("</s>"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        additional_special_tokens=["de_DE"],
    )


def test_fitted_tokenizer_frames_targets_like_mbart50(shared_data):
    from msmae.phoenix import phoenix_sentences

    sentences = phoenix_sentences(shared_data / "phoenix14t-sample")
    tokenizer = fit_tokenizer(sentences)
    ids = tokenizer(text_target=sentences[0])["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("de_DE") and ids[-1] == tokenizer.eos_token_id == 2
    assert tokenizer.pad_token_id == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == sentences[0]


@pytest.mark.parametrize(
    "preset, frozen, argv, expected",
    [
        ("phoenix14t", True, [], (1e-3, 0.1)),
        ("phoenix14t", False, [], (1e-4, 0.1)),
        ("csl-daily", False, [], (1e-4, 0.1)),
        ("how2sign", True, [], (3e-4, 1.0)),
        ("how2sign", False, [], (5e-5, 1.0)),
        ("how2sign", False, ["--learning_rate", "2e-5"], (2e-5, 1.0)),  # given values win
        ("phoenix14t", True, ["--max_grad_norm=0.5"], (1e-3, 0.5)),
    ],
)
def test_dataset_presets_follow_table_5(preset, frozen, argv, expected):
    script = load_script()
    training_args = SimpleNamespace(learning_rate=2e-5 if "--learning_rate" in argv else 5e-5,
                                    max_grad_norm=0.5 if argv and "max_grad_norm" in argv[0] else 1.0)
    script.apply_dataset_preset(training_args, SimpleNamespace(dataset_preset=preset), frozen, argv)
    assert (training_args.learning_rate, training_args.max_grad_norm) == pytest.approx(expected)


def test_paper_defaults_apply_unless_given(tmp_path):
    script = load_script()
    from msmae.training.arguments import parse_arguments

    defaults = {**script.PAPER_DEFAULTS, **script.SCRIPT_DEFAULTS}
    classes = (script.ModelArguments, script.DataTrainingArguments, script.Seq2SeqTrainingArguments)
    _, data_args, args = parse_arguments(classes, defaults, ["--output_dir", str(tmp_path)])
    assert (args.weight_decay, args.num_train_epochs, args.per_device_train_batch_size) == (1e-3, 100, 32)
    assert getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "cosine"
    assert args.predict_with_generate and not args.remove_unused_columns
    assert data_args.warmup_epochs == 10 and data_args.frame_drop_duplicate_rate == 0.2
    _, _, args = parse_arguments(classes, defaults, ["--output_dir", str(tmp_path), "--weight_decay", "0.1"])
    assert args.weight_decay == 0.1


def make_parts(folder: Path, sentences):
    """A fitted tokenizer with a tiny random mBART, and a tiny random MS-MAE pretraining checkpoint."""
    tokenizer = fit_tokenizer(sentences)
    text_dir, pose_dir = folder / "tiny-mbart", folder / "tiny-msmae"
    tokenizer.save_pretrained(text_dir)
    torch.manual_seed(0)
    text_config = MBartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        scale_embedding=True, dropout=0.0,
    )
    MBartForConditionalGeneration(text_config).save_pretrained(text_dir)
    pose_config = MSMAEConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
    )
    MSMAEForPreTraining(pose_config).save_pretrained(pose_dir)
    return tokenizer, text_dir, pose_dir


@pytest.mark.slow
def test_end_to_end_on_the_phoenix_sample(shared_data, tmp_path):
    from msmae.metrics import load_translation_metric
    from msmae.phoenix import load_phoenix_split, phoenix_sentences

    phoenix = shared_data / "phoenix14t-sample"
    tokenizer, text_dir, pose_dir = make_parts(tmp_path, phoenix_sentences(phoenix))
    output_dir = tmp_path / "out"
    command = [
        sys.executable, str(SCRIPT),
        "--pose_encoder_name_or_path", str(pose_dir), "--text_model_name_or_path", str(text_dir),
        "--phoenix_dir", str(phoenix), "--target_lang", "de_DE", "--dataset_preset", "phoenix14t",
        "--freeze_pose_encoder", "--lora_r", "4", "--lora_alpha", "8", "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "5", "--per_device_eval_batch_size", "5", "--warmup_epochs", "0",
        "--logging_steps", "1", "--save_steps", "3", "--report_to", "none", "--generation_max_length", "24",
        "--generation_num_beams", "2", "--dataloader_num_workers", "0", "--seed", "0",
    ]
    # One thread: the tiny model gains nothing from more, and on a busy 2-core machine they slow it down tenfold.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(tmp_path / "datasets_cache")}

    def run(*extra):
        result = subprocess.run(command + list(extra), capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        return result.stdout + result.stderr

    # An interrupted run (3 steps, checkpoint-3), then the full run in the same folder resumes from it.
    run("--do_train", "--max_steps", "3")
    first_losses = [e["loss"] for e in json.loads((output_dir / "checkpoint-3" / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    log = run("--do_train", "--do_eval", "--do_predict", "--max_steps", "6")
    assert f"resuming from {output_dir / 'checkpoint-3'}" in log

    # Trained: the preset's learning rate (frozen encoder) and the loss went down on the 5 training sentences.
    state = json.loads((output_dir / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 6 and losses[:3] == first_losses and losses[-1] < losses[0]
    assert (output_dir / "checkpoint-6").is_dir()
    card = (output_dir / "README.md").read_text()
    assert "| learning_rate | 0.001 |" in card and "| max_grad_norm | 0.1 |" in card and "translation" in card

    # Predictions: one line per test sentence, scored with the same metric the script reports.
    predictions = (output_dir / "generated_predictions.txt").read_text(encoding="utf-8").splitlines()
    references = [pose.metadata["text"] for pose in load_phoenix_split(phoenix, "test")]
    assert len(predictions) == len(references) == 5
    scores = json.loads((output_dir / "predict_results.json").read_text())
    expected = load_translation_metric().compute(predictions=predictions, references=references, language="de")
    for key in ("bleu1", "bleu4", "rougeL", "bleu4_uncorrected"):
        assert scores[f"predict_{key}"] == pytest.approx(expected[key], abs=1e-6)
    assert scores["predict_bleu4_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert {"eval_bleu4", "eval_rougeL"} <= set(json.loads((output_dir / "eval_results.json").read_text()))

    # The saved folder (adapters included) reloads and generates what the script wrote.
    model = SignTranslationModel.from_pretrained(output_dir).eval()
    assert model.config.freeze_pose_encoder and model.config.lora_r == 4 and model.adapter_parameter_names()
    assert model.generation_config.forced_bos_token_id == tokenizer.convert_tokens_to_ids("de_DE")
    from msmae.processing_msmae import MSMAEPoseProcessor

    processor = MSMAEPoseProcessor.from_pretrained(output_dir)
    inputs = processor(load_phoenix_split(phoenix, "test")[:2], return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, num_beams=2, max_length=24)
    decoded = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    assert decoded == predictions[:2]

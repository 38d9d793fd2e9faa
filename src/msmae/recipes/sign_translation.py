"""Fine-tuning an MS-MAE encoder with mBART-50 for gloss-free sign language translation (pose sequence in, text out).

The model (`msmae.modeling_sign_translation.SignTranslationModel`): the pretrained MS-MAE encoder (frozen with
`--freeze_pose_encoder`, else fine-tuned), a linear projection, mBART-50's encoder (fine-tuned in full) and its
decoder (frozen, with LoRA adapters on its attention projections). Training uses every frame of a clip with 20%
random frame deletion/duplication.

Evaluation generates with beam search and scores BLEU-1..4 and ROUGE-L as the SLT literature computes them
(`msmae.metrics.sign_translation`: signjoey's BLEU and TwoStreamSLT's ROUGE-L, words for German and English,
characters for Chinese), with and without mBART's full-width/half-width punctuation correction. The references are
the dataset's text column as it is, never text decoded back from the tokenised labels (mBART's NFKC normalisation,
`<unk>` and truncation would change them).

Checkpoint selection and generation (`SELECTION_DEFAULTS`, `GENERATION_DEFAULTS`): the validation split is scored
every epoch (`--eval_strategy steps --eval_steps N --save_strategy steps --save_steps N` for every N steps), and
the checkpoint with the best validation BLEU-4 is the one saved and tested at the end (`--load_best_model_at_end`,
`--metric_for_best_model bleu4`), as TwoStreamSLT keeps its best checkpoint. Generation uses beam search with 5
beams, length penalty 1.0 and at most 100 tokens, TwoStreamSLT's settings for PHOENIX14T and CSL-Daily
(`--generation_num_beams`, `--length_penalty`, `--generation_max_length`); they are saved in the model's
`generation_config.json` and recorded in the model card. To train without validation, pass `--eval_strategy no
--load_best_model_at_end false` (the last checkpoint is then the saved model).

Keypoint normalisation is the pose checkpoint's (from the processor saved with it): `--normalization` may only
repeat it, a different value is an error.

Data: `--dataset_name`, anything `msmae.data.loading.load_sign_dataset` reads (a folder from `msmae extract` or
`save_to_disk`, Parquet/Arrow shards, a Hub dataset id) with pose columns and a text column, split into train/
validation/test (by its own splits, its `split` column, or signer); or `--phoenix_dir` with PHOENIX14T `.skels`
files (`msmae.data.corpora.phoenix_skels`).

    python examples/run_sign_translation.py \\
        --pose_encoder_name_or_path ./msmae-pretrained \\
        --text_model_name_or_path facebook/mbart-large-50-many-to-many-mmt \\
        --phoenix_dir ../shared/data/phoenix14t-sample --target_lang de_DE --dataset_preset phoenix14t \\
        --output_dir ./msmae-phoenix --do_train --do_eval --do_predict

(`python -m msmae.recipes.sign_translation ...` runs the same recipe from an installed package, without a checkout.)

Defaults follow the paper: AdamW with weight decay 1e-3, cosine decay after a 10-epoch linear warmup, 100 epochs,
batch size 32, gradient clipping, and `--dataset_preset` picks the learning rate and clipping norm of its Table 5
(PHOENIX14T and CSL-Daily: 1e-3 with a frozen encoder, 1e-4 fine-tuning it, clip 0.1; How2Sign: 3e-4 / 5e-5, clip
1.0). Anything given on the command line wins. A run started again in the same `--output_dir` resumes from its newest
complete checkpoint (a finished one says so; see msmae.training.resume). Outputs: the model (adapters included),
tokenizer and pose processor, `generated_predictions.txt`, `*_results.json` and a model card; `--push_to_hub`
uploads them.
"""

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, Seq2SeqTrainer, Seq2SeqTrainingArguments

from msmae.configuration_msmae import MSMAEConfig
from msmae.augmentation import RandomFrameDropDuplicate
from msmae.configuration_sign_translation import DEFAULT_TEXT_MODEL
from msmae.metrics import load_translation_metric
from msmae.modeling_sign_translation import SignTranslationModel
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.training.arguments import (
    given,
    inherited_normalization,
    parse_arguments,
    setup_logging,
)
from msmae.training.resume import find_last_checkpoint, train_and_save
from msmae.training.callbacks import EpochCallback
from msmae.training.collator import ClipSampler, clip_dataset
from msmae.data.loading import load_sign_dataset, split_dataset
from msmae.training.hub import enable_checkpoint_pushes, push_output_dir
from msmae.training.model_card import write_model_card

logger = logging.getLogger(__name__)

# The paper's fine-tuning recipe; applied where the command line does not say otherwise. Warmup is 10 epochs
# (`--warmup_epochs`), turned into steps once the training set size is known.
PAPER_DEFAULTS = {
    "optim": "adamw_torch",
    "weight_decay": 1e-3,
    "lr_scheduler_type": "cosine",
    "num_train_epochs": 100,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 32,
}
SCRIPT_DEFAULTS = {
    "predict_with_generate": True,
    "remove_unused_columns": False,  # the clip datasets read the pose columns themselves
    "label_names": ["labels"],
}
# Score the validation split every epoch and keep the best BLEU-4 (the paper does not say; TwoStreamSLT keeps its
# best validation checkpoint). Two checkpoints on disk at most: the best and the latest (to resume from).
SELECTION_DEFAULTS = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "bleu4",
    "greater_is_better": True,
    "save_total_limit": 2,
}
# Beam search as TwoStreamSLT's PHOENIX14T and CSL-Daily configurations (the paper states none): 5 beams, at most
# 100 tokens; the length penalty is `DataTrainingArguments.length_penalty` (1.0).
GENERATION_DEFAULTS = {"generation_num_beams": 5, "generation_max_length": 100}
DEFAULTS = {**PAPER_DEFAULTS, **SCRIPT_DEFAULTS, **SELECTION_DEFAULTS, **GENERATION_DEFAULTS}
# Scores in the model card: (metric key, shown name, model-index type). The uncorrected ones only where the width
# correction changed them (text with full-width forms, e.g. Chinese).
CARD_METRICS = (("bleu1", "BLEU-1", "bleu"), ("bleu4", "BLEU-4", "bleu"), ("rougeL", "ROUGE-L", "rouge"))
# Table 5 of the paper: (learning rate with a frozen encoder, with a fine-tuned encoder, gradient clipping norm).
DATASET_PRESETS = {
    "phoenix14t": (1e-3, 1e-4, 0.1),
    "csl-daily": (1e-3, 1e-4, 0.1),
    "how2sign": (3e-4, 5e-5, 1.0),
}


@dataclass
class ModelArguments:
    """Which pose encoder and text model to assemble (or which trained translation model to continue)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A trained SignTranslationModel to continue training or to evaluate. Leave unset to "
                  "assemble one from --pose_encoder_name_or_path and --text_model_name_or_path."},
    )
    pose_encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretrained MS-MAE checkpoint (e.g. from run_pretraining.py). Unset: a randomly "
                  "initialised encoder (no pretraining; for comparisons only)."},
    )
    text_model_name_or_path: str = field(
        default=DEFAULT_TEXT_MODEL, metadata={"help": "The pretrained seq2seq text model (mBART-50 in the paper)."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer name or path, if not the one saved with the text model."}
    )
    streams: list[str] | None = field(
        default=None,
        metadata={"help": "Pose streams, if not the pose encoder's, e.g. body left_hand right_hand face (streams the "
                  "checkpoint lacks are newly initialised: the face ablation)."},
    )
    fusion: str = field(
        default="concat",
        metadata={"help": "'concat' (every stream's tokens in sequence) or 'mean' (average over streams per time "
                  "step).", "choices": ["concat", "mean"]},
    )
    freeze_pose_encoder: bool = field(default=False, metadata={"help": "Keep the MS-MAE encoder fixed."})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank on the text decoder (0: train the decoder in full)."})
    lora_alpha: float = field(default=32, metadata={"help": "LoRA alpha (scaling alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Decoder modules to adapt (default: q_proj k_proj v_proj out_proj of self- and "
                  "cross-attention)."},
    )
    normalization: str | None = field(
        default=None,
        metadata={"help": "Keypoint normalisation ('shoulder' or 'none'); default: the pose checkpoint's processor's, "
                  "else 'shoulder'. A value other than the checkpoint's is an error.",
                  "choices": ["shoulder", "none"]},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store models and data from the Hub."})
    model_revision: str = field(default="main", metadata={"help": "Model revision (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the one from `hf auth login`)."})


@dataclass
class DataTrainingArguments:
    """Which data to train, evaluate and predict on, and how to prepare it."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Pose dataset with a text column: a local folder or file, or a Hub dataset id."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    phoenix_dir: str | None = field(
        default=None, metadata={"help": "A folder of PHOENIX14T {train,dev,test}.skels/.text files instead."}
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the target sentence."})
    target_lang: str = field(
        default="de_DE", metadata={"help": "Target language code of the tokenizer (mBART-50: de_DE, zh_CN, en_XX)."}
    )
    dataset_preset: str | None = field(
        default=None,
        metadata={"help": "Learning rate and clipping norm of the paper's Table 5 for this dataset (unless given).",
                  "choices": sorted(DATASET_PRESETS)},
    )
    warmup_epochs: float = field(
        default=10.0, metadata={"help": "Linear warmup length in epochs (unless --warmup_steps is given)."}
    )
    frame_drop_duplicate_rate: float = field(
        default=0.2, metadata={"help": "Fraction of frames deleted or duplicated at random in training (0: off)."}
    )
    max_source_frames: int | None = field(
        default=None,
        metadata={"help": "Longer clips are evenly subsampled to this many frames (default: what the text model's "
                  "positions allow)."},
    )
    max_target_length: int = field(
        default=128, metadata={"help": "Maximum training target length in tokens (longer labels are truncated; the "
                               "references scored are always the full text)."}
    )
    length_penalty: float = field(
        default=1.0, metadata={"help": "Beam search length penalty (exponent on the length; 1.0 = none)."}
    )
    validation_size: float = field(
        default=0.1, metadata={"help": "Fraction held out for validation when the dataset has no splits."}
    )
    test_size: float = field(
        default=0.1, metadata={"help": "Fraction held out for testing when the dataset has no splits."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training clips."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many validation clips."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use at most this many test clips."})
    sign_languages: list[str] | None = field(
        default=None, metadata={"help": "ISO 639-3 codes of the sign languages, for the model card."}
    )


def apply_dataset_preset(training_args, data_args, freeze_pose_encoder: bool, args=None):
    """Fill the learning rate and clipping norm from `DATASET_PRESETS` where the command line did not set them."""
    if data_args.dataset_preset is None:
        return
    frozen_lr, tuned_lr, clip = DATASET_PRESETS[data_args.dataset_preset]
    if not given("learning_rate", args):
        training_args.learning_rate = frozen_lr if freeze_pose_encoder else tuned_lr
    if not given("max_grad_norm", args):
        training_args.max_grad_norm = clip
    logger.info(
        f"Preset {data_args.dataset_preset}: learning rate {training_args.learning_rate}, "
        f"gradient clipping {training_args.max_grad_norm}."
    )


def load_splits(data_args, model_args, seed: int) -> dict:
    """{"train", "validation", "test"} `datasets.Dataset`s with pose columns and the text column."""
    if data_args.phoenix_dir:
        from msmae.data.corpora.phoenix_skels import phoenix_dataset

        return {name: phoenix_dataset(data_args.phoenix_dir, split) for name, split in
                (("train", "train"), ("validation", "dev"), ("test", "test"))}
    if not data_args.dataset_name:
        raise ValueError("Give the data with --dataset_name (pose dataset with a text column) or --phoenix_dir.")
    dataset = load_sign_dataset(
        data_args.dataset_name, name=data_args.dataset_config_name, cache_dir=model_args.cache_dir,
        token=model_args.token,
    )
    if not hasattr(dataset, "keys"):
        dataset = {"train": dataset}
    dataset = dict(dataset)
    if "dev" in dataset and "validation" not in dataset:
        dataset["validation"] = dataset.pop("dev")
    if set(dataset) == {"train"}:
        dataset = dict(split_dataset(
            dataset["train"], validation_size=data_args.validation_size, test_size=data_args.test_size, seed=seed
        ))
    for name, split in dataset.items():
        missing = [c for c in ("keypoints", "keypoint_mask", data_args.text_column) if c not in split.column_names]
        if missing:
            raise ValueError(
                f"The {name} split has no {missing} column(s) (columns: {split.column_names}); translation needs "
                "msmae's pose columns and the target sentence (--text_column)."
            )
    return dataset


@dataclass
class TranslationClipSampler:
    """One dataset row to the model inputs of one clip: processed pose plus its tokenized target (`labels`)."""

    processor: object
    training: bool
    label_column: str = "labels"

    def __post_init__(self):
        self._clip = ClipSampler(self.processor, training=self.training)

    def __call__(self, row: dict, rng: np.random.Generator) -> dict:
        item = self._clip(row, rng)
        item["labels"] = np.asarray(row[self.label_column], dtype=np.int64)
        return item


@dataclass
class TranslationCollator:
    """Pads pose inputs (the processor) and target token ids (with -100, which the loss ignores)."""

    processor: object

    def __call__(self, features: list[dict]) -> dict:
        batch = dict(self.processor.pad([{k: v for k, v in f.items() if k != "labels"} for f in features],
                                        return_tensors="pt"))
        labels = [np.asarray(f["labels"]) for f in features]
        padded = np.full((len(labels), max(len(label) for label in labels)), -100, dtype=np.int64)
        for i, label in enumerate(labels):
            padded[i, : len(label)] = label
        batch["labels"] = torch.from_numpy(padded)
        return batch


def metric_language(target_lang: str) -> str:
    """`de_DE` -> `de`: the metric scores Chinese per character, other languages per word."""
    return target_lang.replace("-", "_").split("_")[0].lower()


def translation_scorer(metric, tokenizer, references: list[str], language: str):
    """`compute_metrics` for one split: generated ids decoded and scored against `references`, that split's text
    column in order (the Trainer keeps dataset order when evaluating)."""

    def compute_metrics(eval_preds):
        predictions = eval_preds.predictions[0] if isinstance(eval_preds.predictions, tuple) else eval_preds.predictions
        decoded = decode_generated(tokenizer, predictions)
        if len(decoded) != len(references):
            raise ValueError(f"{len(decoded)} generated sentences for {len(references)} references.")
        return metric.compute(predictions=decoded, references=references, language=language)

    return compute_metrics


def decode_generated(tokenizer, token_ids) -> list[str]:
    token_ids = np.where(token_ids != -100, token_ids, tokenizer.pad_token_id)
    return [text.strip() for text in tokenizer.batch_decode(token_ids, skip_special_tokens=True)]


def pose_checkpoint(model_args) -> str | None:
    """The checkpoint whose processor fixes the normalisation: the translation model, else the pose encoder."""
    return model_args.model_name_or_path or model_args.pose_encoder_name_or_path


def build_model(model_args, data_args, tokenizer):
    if model_args.model_name_or_path:
        model = SignTranslationModel.from_pretrained(
            model_args.model_name_or_path, cache_dir=model_args.cache_dir, revision=model_args.model_revision,
            token=model_args.token,
        )
        if model_args.freeze_pose_encoder != model.config.freeze_pose_encoder:
            model.config.freeze_pose_encoder = model_args.freeze_pose_encoder
            model.set_trainable_parameters()
    else:
        if model_args.pose_encoder_name_or_path is None:
            logger.warning("No --pose_encoder_name_or_path: the MS-MAE encoder starts from random weights.")
        config_kwargs = {"fusion": model_args.fusion, "freeze_pose_encoder": model_args.freeze_pose_encoder,
                         "lora_r": model_args.lora_r, "lora_alpha": model_args.lora_alpha,
                         "lora_dropout": model_args.lora_dropout}
        if model_args.lora_target_modules:
            config_kwargs["lora_target_modules"] = model_args.lora_target_modules
        model = SignTranslationModel.from_pretrained_parts(
            model_args.pose_encoder_name_or_path,
            model_args.text_model_name_or_path,
            streams=model_args.streams,
            pose_encoder_config=MSMAEConfig(streams=model_args.streams) if model_args.streams else None,
            load_kwargs={"cache_dir": model_args.cache_dir, "revision": model_args.model_revision,
                         "token": model_args.token},
            **config_kwargs,
        )
    model.set_target_lang(data_args.target_lang, tokenizer)
    return model


def main(args: list[str] | None = None):
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, Seq2SeqTrainingArguments), DEFAULTS, args
    )
    apply_dataset_preset(training_args, data_args, model_args.freeze_pose_encoder, args)

    setup_logging(training_args, logger)
    normalization = inherited_normalization(
        model_args.normalization, pose_checkpoint(model_args), cache_dir=model_args.cache_dir,
        revision=model_args.model_revision, token=model_args.token,
    )

    last_checkpoint = find_last_checkpoint(training_args, logger)

    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    tokenizer = AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path or model_args.text_model_name_or_path,
        cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
    )
    if hasattr(tokenizer, "tgt_lang"):
        tokenizer.tgt_lang = data_args.target_lang  # mBART-50 tokenizers prefix targets with it
    model = build_model(model_args, data_args, tokenizer)
    generation = generation_settings(training_args, data_args)
    # Saved with the model (generation_config.json), so `model.generate(**inputs)` decodes as evaluated.
    model.generation_config.update(**generation, length_penalty=data_args.length_penalty)
    config = model.config
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        f"Model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {trainable / 1e6:.2f}M trainable"
    )

    with training_args.main_process_first(desc="loading and tokenizing the data"):
        splits = load_splits(data_args, model_args, seed)
        limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
                  "test": data_args.max_predict_samples}
        for name, limit in limits.items():
            if name in splits and limit is not None:
                splits[name] = splits[name].select(range(min(limit, len(splits[name]))))

        def tokenize(batch):
            return {"labels": tokenizer(text_target=batch[data_args.text_column],
                                        max_length=data_args.max_target_length, truncation=True)["input_ids"]}

        splits = {name: split.map(tokenize, batched=True, desc=f"Tokenizing {name} targets")
                  for name, split in splits.items()}

    # The text encoder has `max_position_embeddings` positions; concatenation spends one per stream per cubelet.
    max_frames = data_args.max_source_frames
    if max_frames is None:
        tokens_per_cubelet = config.encoder.num_streams if config.fusion == "concat" else 1
        max_frames = config.text_config.max_position_embeddings // tokens_per_cubelet * config.encoder.cubelet_size
    rate = data_args.frame_drop_duplicate_rate
    augmentations = [RandomFrameDropDuplicate(rate)] if rate > 0 else None
    processor = MSMAEPoseProcessor(
        streams=config.encoder.streams, normalization=normalization, sampling="full",
        num_frames=None, max_frames=max_frames, augmentations=augmentations,
    )

    train_dataset = eval_dataset = predict_dataset = None
    if training_args.do_train:
        if "train" not in splits:
            raise ValueError("--do_train needs a train split.")
        train_dataset = clip_dataset(splits["train"], TranslationClipSampler(processor, training=True), seed)
        if not given("warmup_steps", args):
            batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * max(
                training_args.world_size, 1)
            training_args.warmup_steps = int(round(data_args.warmup_epochs * math.ceil(len(train_dataset) / batch)))
    if training_args.do_eval or (training_args.do_train and training_args.eval_strategy != "no"):
        if "validation" not in splits:
            raise ValueError("Evaluation needs a validation split.")
        eval_dataset = clip_dataset(splits["validation"], TranslationClipSampler(processor, training=False), seed)
    if training_args.do_predict:
        if "test" not in splits:
            raise ValueError("--do_predict needs a test split.")
        predict_dataset = clip_dataset(splits["test"], TranslationClipSampler(processor, training=False), seed)

    metric = load_translation_metric()
    language = metric_language(data_args.target_lang)
    references = {name: list(split[data_args.text_column]) for name, split in splits.items()}

    def scorer(split):
        if not training_args.predict_with_generate:
            return None
        return translation_scorer(metric, tokenizer, references[split], language)

    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=TranslationCollator(processor),
        compute_metrics=scorer("validation") if eval_dataset is not None else None,
        callbacks=[EpochCallback(train_dataset)] if train_dataset is not None else None,
    )
    enable_checkpoint_pushes(trainer)  # --push_to_hub: one commit of model files per save, no pickles

    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or last_checkpoint
        # Then trainer.save_model(): model with adapters, config with auto_map and code files, tokenizer.
        train_result = train_and_save(trainer, checkpoint)  # a full disk or no permission: says what to fix
        if trainer.is_world_process_zero():
            processor.save_pretrained(training_args.output_dir)
        metrics = train_result.metrics
        metrics["train_samples"] = len(train_dataset)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    eval_metrics = {}
    if training_args.do_eval:
        eval_metrics = trainer.evaluate(metric_key_prefix="eval", **generation)
        eval_metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)

    predict_metrics = {}
    if training_args.do_predict:
        trainer.compute_metrics = scorer("test")
        results = trainer.predict(predict_dataset, metric_key_prefix="predict", **generation)
        predict_metrics = results.metrics
        predict_metrics["predict_samples"] = len(predict_dataset)
        trainer.log_metrics("predict", predict_metrics)
        trainer.save_metrics("predict", predict_metrics)
        if trainer.is_world_process_zero() and training_args.predict_with_generate:
            predictions = results.predictions[0] if isinstance(results.predictions, tuple) else results.predictions
            with open(os.path.join(training_args.output_dir, "generated_predictions.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(decode_generated(tokenizer, predictions)) + "\n")

    if trainer.is_world_process_zero() and training_args.do_train:
        dataset_label = data_args.phoenix_dir or data_args.dataset_name
        eval_results = card_results(((eval_metrics, "eval", "validation"), (predict_metrics, "predict", "test")),
                                    dataset_label)
        write_model_card(
            training_args.output_dir,
            task="translation",
            repo_id=training_args.hub_model_id,
            base_model=model_args.model_name_or_path or model_args.pose_encoder_name_or_path,
            datasets=[dataset_label],
            sign_languages=data_args.sign_languages,
            eval_results=eval_results,
            hyperparameters=hyperparameters(training_args, model_args, data_args, config),
            usage=usage_snippet(
                training_args.hub_model_id or f"<your-username>/{Path(training_args.output_dir).resolve().name}",
                generation,
            ),
            notes=model_notes(config, model_args),
            generation={**generation, "length_penalty": data_args.length_penalty,
                        "checkpoint": selection_note(training_args)},
        )
    if training_args.push_to_hub:
        push_output_dir(trainer)
    return {"train": trainer.state.log_history, "eval": eval_metrics, "predict": predict_metrics,
            "output_dir": training_args.output_dir}


def card_results(splits, dataset_label) -> list[dict]:
    """Model-card evaluation entries from `(metrics, key prefix, split name)` triples."""
    results = []
    for scores, prefix, split in splits:
        for metric_name, name, kind in CARD_METRICS:
            for suffix, label in (("", ""), ("_uncorrected", " (no width correction)")):
                key = f"{prefix}_{metric_name}{suffix}"
                if key in scores and (not suffix or scores[key] != scores.get(f"{prefix}_{metric_name}")):
                    results.append({"metric": metric_name + suffix, "name": name + label, "type": kind,
                                    "value": scores[key], "dataset": dataset_label, "split": split})
    return results


def generation_settings(training_args, data_args) -> dict:
    """Beam search settings of evaluation and prediction (length penalty: the model's generation config)."""
    return {"num_beams": training_args.generation_num_beams or 1,
            "max_length": training_args.generation_max_length or data_args.max_target_length}


def selection_note(training_args) -> str:
    """Which checkpoint the saved model is, in words for the model card."""
    if not training_args.load_best_model_at_end:
        return "the last one"
    strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
    every = "epoch" if strategy == "epoch" else f"{training_args.eval_steps} steps"
    best = "highest" if training_args.greater_is_better else "lowest"
    return f"the {best} validation {training_args.metric_for_best_model} (scored every {every})"


def hyperparameters(training_args, model_args, data_args, config) -> dict:
    total_batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * max(
        training_args.world_size, 1)
    scheduler = getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)
    return {
        # As text: the card's number format would round a learning rate such as 5e-5.
        "learning_rate": f"{training_args.learning_rate:g}",
        "max_grad_norm": f"{training_args.max_grad_norm:g}",
        "weight_decay": f"{training_args.weight_decay:g}",
        "optimizer": str(getattr(training_args.optim, "value", training_args.optim)),
        "lr_scheduler": f"{scheduler}, {training_args.warmup_steps} warmup steps",
        "epochs": training_args.num_train_epochs,
        "max_steps": training_args.max_steps,
        "total_batch_size": total_batch,
        "fusion": config.fusion,
        "pose_encoder": "frozen" if config.freeze_pose_encoder else "fine-tuned",
        "lora": (f"r={config.lora_r}, alpha={config.lora_alpha}, dropout={config.lora_dropout}" if config.lora_r
                 else "none (decoder trained in full)"),
        "frame_drop_duplicate_rate": data_args.frame_drop_duplicate_rate,
        "target_lang": data_args.target_lang,
        "seed": training_args.seed,
    }


def model_notes(config, model_args) -> str:
    encoder = config.encoder
    return (
        f"Architecture: MS-MAE pose encoder (streams {', '.join(encoder.streams)}; {encoder.num_hidden_layers} layers, "
        f"width {encoder.hidden_size}, cubelets of {encoder.cubelet_size} frames), '{config.fusion}' stream fusion, "
        f"a linear projection to width {config.text_config.d_model}, and the encoder and decoder of "
        f"`{model_args.text_model_name_or_path}` (LoRA rank {config.lora_r} on the decoder; 0 = merged or none). "
        f"Target language token: `{config.target_lang}`."
    )


def usage_snippet(repo_id: str, generation: dict) -> str:
    return f'''import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from msmae.processing_msmae import MSMAEPoseProcessor  # pip install msmae

repo_id = "{repo_id}"
# trust_remote_code runs this repository's Python files: read them, then pin the commit you read.
revision = "main"  # replace with a commit hash from the repository's history
model = AutoModelForSeq2SeqLM.from_pretrained(repo_id, trust_remote_code=True, revision=revision).eval()
tokenizer = AutoTokenizer.from_pretrained(repo_id, revision=revision)
processor = MSMAEPoseProcessor.from_pretrained(repo_id, revision=revision)

# A MediaPipe Holistic pose file (pip install pose-format); see msmae's README for videos and arrays.
inputs = processor("sentence.pose", return_tensors="pt")
with torch.no_grad():
    # The evaluated settings (also in the model's generation_config.json).
    generated = model.generate(**inputs, num_beams={generation["num_beams"]}, max_length={generation["max_length"]})
print(tokenizer.batch_decode(generated, skip_special_tokens=True))
'''


if __name__ == "__main__":
    main()

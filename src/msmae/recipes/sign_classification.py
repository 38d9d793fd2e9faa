"""Isolated sign recognition with MS-MAE: fine-tuning (a learnable [CLS] token and a classifier on the encoder) or
linear probing (`--freeze_encoder`: frozen encoder, mean-pooled features, one linear layer).

Start from a pretrained checkpoint (`--model_name_or_path`, e.g. the output of run_pretraining.py: its encoder is
carried over, the [CLS] token and classifier are new) or from scratch. The data is any labelled pose dataset msmae
reads (`--dataset_name`: a folder written by `msmae extract` with a label column, Parquet/Arrow files, MSL-150 or a
folder of `<gloss>/<clip>.pose`, a CSV manifest, a Hub dataset id). Without predefined splits, validation and test
sets are split off by signer when the data has signer ids, stratified by sign otherwise.

    python examples/run_sign_classification.py \\
        --model_name_or_path ./msmae-pretrained --dataset_name ../shared/data/msl150 \\
        --output_dir ./msmae-msl150 --do_train --do_eval --do_predict

(`python -m msmae.recipes.sign_classification ...` runs the same recipe from an installed package.)

Defaults follow the paper: batch 128, 32 frames per clip (random frames in training, evenly spread at
evaluation), rotation/shear/scale augmentation (`--no_augmentation` turns it off), AdamW with weight decay 1e-3,
peak lr 5e-5, cosine decay after a 10-epoch linear warmup, 100 epochs (bf16 on GPUs that support it), evaluating
and saving every epoch and
keeping the checkpoint with the best validation top-1 accuracy (`--metric_for_best_model top5` chooses by top-5,
as the paper does for Slovo). The best model is then evaluated on the test split; the output folder gets the
metrics, `predictions_test.csv`, `confusion_matrix_test.png`, the label names in config.json and a model card.
"""

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, DatasetDict
from transformers import Trainer, TrainingArguments, set_seed

from msmae.configuration_msmae import MSMAEConfig
from msmae.modeling_msmae import MSMAEForSignClassification
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.training.arguments import (
    check_num_frames,
    given,
    inherited_normalization,
    parse_arguments,
    setup_logging,
)
from msmae.training.resume import find_last_checkpoint, train_and_save
from msmae.training.callbacks import EpochCallback
from msmae.training.collator import ClipSampler, PoseCollator, clip_dataset
from msmae.data.loading import load_sign_dataset, split_dataset
from msmae.training.hub import enable_checkpoint_pushes, push_output_dir
from msmae.metrics.classification import compute_metrics, confusion_matrix, save_confusion_matrix
from msmae.training.model_card import write_model_card

logger = logging.getLogger(__name__)

# The paper's fine-tuning recipe (its 10-epoch warmup is `--warmup_epochs`, turned into steps once the data is known).
PAPER_DEFAULTS = {
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 128,
    "num_train_epochs": 100,
    "learning_rate": 5e-5,
    "weight_decay": 1e-3,
    "lr_scheduler_type": "cosine",
}
SCRIPT_DEFAULTS = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "metric_for_best_model": "top1",
    "greater_is_better": True,
    "remove_unused_columns": False,
    "ddp_find_unused_parameters": False,  # every parameter takes part in every step
}


@dataclass
class ModelArguments:
    """Which model to fine-tune."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretrained MS-MAE checkpoint (MSMAEForPreTraining from run_pretraining.py, or a "
                  "classification checkpoint). Leave unset to train from scratch."},
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name or path, if not model_name_or_path's."})
    config_overrides: str | None = field(
        default=None, metadata={"help": "Config overrides for a model trained from scratch, e.g. 'hidden_size=256'."}
    )
    streams: list[str] | None = field(
        default=None, metadata={"help": "Streams of a model trained from scratch (default: body left_hand right_hand)."}
    )
    freeze_encoder: bool = field(
        default=False,
        metadata={"help": "Linear probing: freeze the encoder, average its outputs and train one linear layer "
                  "(config.linear_probe=True)."},
    )
    classifier_dropout: float | None = field(default=None, metadata={"help": "Dropout before the classifier."})
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Allow loading a classification checkpoint trained on another label set (new classifier)."},
    )
    normalization: str | None = field(
        default=None,
        metadata={"help": "Keypoint normalisation ('shoulder' or 'none'); default: the checkpoint's processor's, "
                  "else 'shoulder'. A value other than the checkpoint's is an error."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store downloads from the Hub."})
    model_revision: str = field(default="main", metadata={"help": "Model revision (branch, tag or commit)."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the one from `hf auth login`)."})


@dataclass
class DataTrainingArguments:
    """Which data to train and evaluate on, and how clips are sampled."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A labelled pose dataset: a path or a Hub dataset id (see the docstring)."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    label_column_name: str = field(default="label", metadata={"help": "Column holding the sign (gloss) label."})
    train_split_name: str = field(default="train", metadata={"help": "Training split of a split dataset."})
    validation_split_name: str = field(default="validation", metadata={"help": "Validation split of a split dataset."})
    test_split_name: str = field(default="test", metadata={"help": "Test split of a split dataset."})
    validation_split_percentage: float = field(
        default=0.1, metadata={"help": "Fraction of clips for validation when the data has no splits."}
    )
    test_split_percentage: float = field(
        default=0.1, metadata={"help": "Fraction of clips for testing when the data has no splits."}
    )
    num_frames: int = field(default=32, metadata={"help": "Frames per clip given to the model."})
    frame_sampling: str = field(
        default="random",
        metadata={"help": "Training frame choice: 'random' (num_frames random frames, in order) or 'uniform' (one "
                  "random frame per equal segment). Evaluation always spreads frames evenly.",
                  "choices": ["random", "uniform"]},
    )
    no_augmentation: bool = field(
        default=False, metadata={"help": "Turn off the random rotation, shear and scale of training clips."}
    )
    warmup_epochs: float = field(
        default=10.0, metadata={"help": "Linear warmup in epochs (ignored when --warmup_steps is given)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training clips."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many validation clips."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use at most this many test clips."})
    sign_languages: list[str] | None = field(
        default=None, metadata={"help": "ISO 639-3 codes of the data's sign languages, for the model card."}
    )


def load_splits(data_args: DataTrainingArguments, model_args: ModelArguments, seed: int) -> DatasetDict:
    """train / validation / test with an integer `ClassLabel` label column."""
    if not data_args.dataset_name:
        raise ValueError("Give the labelled pose data with --dataset_name.")
    data = load_sign_dataset(
        data_args.dataset_name, name=data_args.dataset_config_name, cache_dir=model_args.cache_dir, token=model_args.token
    )
    label = data_args.label_column_name
    if not isinstance(data, DatasetDict):
        if label not in data.column_names:
            raise ValueError(f"{data_args.dataset_name} has no label column {label!r} (columns: {data.column_names}).")
        if not isinstance(data.features[label], ClassLabel):
            data = data.class_encode_column(label)
        data = split_dataset(
            data,
            validation_size=data_args.validation_split_percentage,
            test_size=data_args.test_split_percentage,
            seed=seed,
            label_column=label,
        )
    else:
        names = {
            data_args.train_split_name: "train",
            data_args.validation_split_name: "validation",
            data_args.test_split_name: "test",
        }
        data = DatasetDict({names[k]: v for k, v in data.items() if k in names})
        if not isinstance(data["train"].features.get(label), ClassLabel):
            labels = sorted({str(v) for split in data.values() for v in split[label]})
            data = data.cast_column(label, ClassLabel(names=labels))
    if "train" not in data or "validation" not in data:
        raise ValueError(
            f"Fine-tuning needs a train and a validation split (to choose the best checkpoint); got {list(data)}. "
            "Set --validation_split_percentage above 0 or give a dataset with a validation split."
        )
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_predict_samples,
    }
    for split, limit in limits.items():
        if split in data and limit is not None:
            data[split] = data[split].select(range(min(limit, len(data[split]))))
    return data


def build_model(model_args: ModelArguments, label_names: list[str]):
    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    overrides = {"num_labels": len(label_names), "id2label": id2label, "label2id": label2id,
                 "linear_probe": model_args.freeze_encoder}
    if model_args.classifier_dropout is not None:
        overrides["classifier_dropout"] = model_args.classifier_dropout
    kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    if model_args.config_name or model_args.model_name_or_path:
        if model_args.config_overrides or model_args.streams:
            raise ValueError("--config_overrides and --streams apply to a model trained from scratch only.")
        config = MSMAEConfig.from_pretrained(model_args.config_name or model_args.model_name_or_path, **kwargs)
        config = MSMAEConfig(**{**config.to_dict(), **overrides})
    else:
        logger.warning("Training a new MS-MAE classifier from scratch.")
        values = {"streams": model_args.streams} if model_args.streams else {}
        if model_args.config_overrides:
            parsed = MSMAEConfig()
            parsed.update_from_string(model_args.config_overrides)
            keys = [item.split("=")[0].strip() for item in model_args.config_overrides.split(",")]
            values.update({key: getattr(parsed, key) for key in keys})
        config = MSMAEConfig(**values, **overrides)
    if model_args.model_name_or_path:
        model = MSMAEForSignClassification.from_pretrained(
            model_args.model_name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **kwargs
        )
    else:
        model = MSMAEForSignClassification(config)
    if config.linear_probe:
        # Loading weights can hand back trainable parameters; a linear probe trains the classifier only.
        model.msmae.requires_grad_(False)
    return model


def build_processor(model_args: ModelArguments, data_args: DataTrainingArguments, config) -> MSMAEPoseProcessor:
    # The pretraining's normalisation (the encoder learned that coordinate frame); another one is an error.
    normalization = inherited_normalization(model_args.normalization, model_args.model_name_or_path)
    overrides = {
        "streams": config.streams,
        "num_frames": data_args.num_frames,
        "sampling": data_args.frame_sampling,
        "normalization": normalization,
    }
    if data_args.no_augmentation:
        overrides["augmentations"] = None
    return MSMAEPoseProcessor.from_preset("recognition", **overrides)


def portable_sources(sources) -> list[str]:
    """Clip sources as they may be published: local paths relative to the folder above the clips' common folder
    (`/home/me/data/msl150/HELLO/1.pose` -> `msl150/HELLO/1.pose`), so the predictions file a push uploads names
    the clips without the machine's directories. Other sources (dataset ids, relative paths) are kept."""
    sources = [str(source) for source in sources]
    local = [source for source in sources if os.path.isabs(source)]
    if not local:
        return sources
    try:
        root = os.path.dirname(os.path.commonpath([os.path.dirname(source) for source in local]))
    except ValueError:  # paths on different drives: no common folder
        return [os.path.basename(source) if os.path.isabs(source) else source for source in sources]
    return [os.path.relpath(source, root) if os.path.isabs(source) else source for source in sources]


def write_predictions(path, logits, labels, sources, label_names, k=5):
    """One row per clip: source (see `portable_sources`), true sign, predicted sign, whether it is right, and the
    top-k with probabilities."""
    probabilities = torch.from_numpy(np.asarray(logits, dtype=np.float32)).softmax(-1)
    top = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "label", "prediction", "correct", f"top{k}"])
        for source, label, values, indices in zip(portable_sources(sources), labels, top.values.tolist(), top.indices.tolist()):
            ranked = " ".join(f"{label_names[i]}:{p:.3f}" for i, p in zip(indices, values))
            writer.writerow([source, label_names[label], label_names[indices[0]], int(indices[0] == label), ranked])
    return path


def main(args: list[str] | None = None):
    defaults = {**PAPER_DEFAULTS, **SCRIPT_DEFAULTS}
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not given("fp16", args):
        defaults["bf16"] = True
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, TrainingArguments), defaults, args
    )

    setup_logging(training_args, logger)

    last_checkpoint = find_last_checkpoint(training_args, logger)

    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    with training_args.main_process_first(desc="loading the labelled pose data"):
        splits = load_splits(data_args, model_args, seed)
    label_column = data_args.label_column_name
    label_names = splits["train"].features[label_column].names
    logger.info(f"{len(label_names)} signs; clips per split: { {k: len(v) for k, v in splits.items()} }")

    set_seed(training_args.seed)  # the new [CLS] token and classifier start from the seed
    model = build_model(model_args, label_names)
    check_num_frames(data_args.num_frames, model.config)
    processor = build_processor(model_args, data_args, model.config)

    train_dataset = clip_dataset(splits["train"], ClipSampler(processor, training=True, label_column=label_column), seed)
    evaluation = {
        split: clip_dataset(splits[split], ClipSampler(processor, training=False, label_column=label_column), seed)
        for split in ("validation", "test")
        if split in splits
    }

    if training_args.do_train and not given("warmup_steps", args):
        world = max(training_args.world_size, 1)
        steps_per_epoch = math.ceil(
            math.ceil(len(train_dataset) / (training_args.per_device_train_batch_size * world))
            / training_args.gradient_accumulation_steps
        )
        training_args.warmup_steps = int(round(data_args.warmup_epochs * steps_per_epoch))
        logger.info(f"Warmup: {data_args.warmup_epochs} epochs = {training_args.warmup_steps} steps")

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=evaluation["validation"],
        processing_class=processor,
        data_collator=PoseCollator(processor),
        compute_metrics=compute_metrics,
        callbacks=[EpochCallback(train_dataset)],
    )
    enable_checkpoint_pushes(trainer)  # --push_to_hub: one commit of model files per save, no pickles

    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or last_checkpoint
        # Then trainer.save_model(): best checkpoint (load_best_model_at_end), its config with id2label, the processor.
        train_result = train_and_save(trainer, checkpoint)  # a full disk or no permission: says what to fix
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()

    results = {}
    if training_args.do_eval:
        results["validation"] = trainer.evaluate(metric_key_prefix="eval")
        trainer.log_metrics("eval", results["validation"])
        trainer.save_metrics("eval", results["validation"])

    output_dir = Path(training_args.output_dir)
    if training_args.do_predict and "test" in evaluation:
        prediction = trainer.predict(evaluation["test"], metric_key_prefix="test")
        results["test"] = prediction.metrics
        trainer.log_metrics("test", prediction.metrics)
        trainer.save_metrics("test", prediction.metrics)
        if trainer.is_world_process_zero():
            logits, labels = prediction.predictions, prediction.label_ids
            write_predictions(output_dir / "predictions_test.csv", logits, labels, splits["test"]["source"], label_names)
            matrix = confusion_matrix(np.asarray(logits).argmax(-1), labels, len(label_names))
            save_confusion_matrix(
                matrix, label_names, output_dir / "confusion_matrix_test.png",
                title=f"Test confusion matrix (top-1 {prediction.metrics['test_top1']:.3f})",
            )

    if trainer.is_world_process_zero() and training_args.do_train:
        eval_results = [
            {"metric": name, "type": "accuracy" if name in ("top1", "top5") else "recall",
             "name": METRIC_NAMES.get(name, name), "value": value, "dataset": data_args.dataset_name, "split": split}
            for split, prefix in (("validation", "eval_"), ("test", "test_"))
            for name, value in ((k[len(prefix):], v) for k, v in results.get(split, {}).items() if k.startswith(prefix))
            if name in METRIC_NAMES
        ]
        write_model_card(
            output_dir,
            task="sign-classification",
            repo_id=training_args.hub_model_id,
            base_model=model_args.model_name_or_path,
            datasets=[data_args.dataset_name],
            sign_languages=data_args.sign_languages,
            eval_results=eval_results,
            hyperparameters={
                "mode": "linear probe (frozen encoder)" if model_args.freeze_encoder else "fine-tuning",
                "learning_rate": training_args.learning_rate,
                "weight_decay": training_args.weight_decay,
                "total_batch_size": training_args.per_device_train_batch_size
                * training_args.gradient_accumulation_steps * max(training_args.world_size, 1),
                "epochs": training_args.num_train_epochs,
                "max_steps": training_args.max_steps,
                "warmup_steps": training_args.warmup_steps,
                "frames": f"{data_args.num_frames} ({data_args.frame_sampling} in training)",
                "augmentation": "none" if data_args.no_augmentation else "rotation, shear, scale",
                "best_checkpoint_by": f"validation {training_args.metric_for_best_model}",
                "seed": training_args.seed,
            },
        )
    if training_args.push_to_hub:
        push_output_dir(trainer)
    return {
        "results": results,
        "label_names": label_names,
        "output_dir": str(output_dir),
        "log_history": trainer.state.log_history,
    }


METRIC_NAMES = {
    "top1": "Top-1 accuracy (per instance)",
    "top5": "Top-5 accuracy (per instance)",
    "top1_per_class": "Top-1 recall averaged over classes",
    "top5_per_class": "Top-5 recall averaged over classes",
}


if __name__ == "__main__":
    main()

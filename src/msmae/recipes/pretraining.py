"""Pretraining an MS-MAE (multi-stream masked autoencoder) on sign language pose sequences.

Windows of 600 consecutive frames, evenly subsampled to 300, are cut into cubelets per stream (body, hands, face);
`mask_ratio` of each stream's cubelets are hidden (DiffMask: different time steps per stream; SameMask: the same
ones) and a light decoder reconstructs their keypoints. Continual pretraining is the same script started from a
pretrained checkpoint (`--model_name_or_path`) on a target dataset's clips.

Data (`--dataset_name`, one or more): a folder written by `msmae extract`, Parquet/Arrow files, a folder of
`.pose`/`.npy`/`.json` clips (SignSuisse, ASL-App, ...), a CSV manifest, or a Hub dataset id; with `--streaming`
the corpus is read as training goes. Labels are ignored.

    python examples/run_pretraining.py \\
        --dataset_name ../shared/data/signsuisse ../shared/data/asl-app-100 \\
        --output_dir ./msmae-pretrained --do_train --do_eval --eval_strategy steps --eval_steps 2000

(`python -m msmae.recipes.pretraining ...` runs the same recipe from an installed package, without a checkout.)

The defaults are the paper's (AdamW, lr 8e-4, betas 0.9/0.95, 2K warmup steps, cosine decay, 120K steps, bf16 on
GPUs that support it); any of them can be set on the command line. The paper states no batch size or weight decay;
`CHOSEN_DEFAULTS` uses 64 clips per device (the size this project measured and ran on one GPU; with several GPUs the
total grows with them, and the learning rate stays the paper's) and weight decay 0.05 (MAE's and VideoMAE's value for
the same AdamW recipe; transformers' default of 0 would leave the encoder unregularised).
`--activation_checkpointing` (transformers 5's name for gradient checkpointing; `--gradient_checkpointing` still
works) trades compute for memory. The same command runs on several GPUs or nodes with `accelerate launch` (see
examples/accelerate_configs/). A run started again in the same `--output_dir` resumes from its newest complete
checkpoint; a finished one says so and exits (`--overwrite_output_dir` trains again; see msmae.training.resume).
"""

import logging
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments, set_seed

from msmae.configuration_msmae import MSMAEConfig
from msmae.modeling_msmae import MSMAEForPreTraining
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.training.arguments import (
    check_num_frames,
    given,
    inherited_normalization,
    parse_arguments,
    setup_logging,
)
from msmae.training.resume import find_last_checkpoint, train_and_save
from msmae.training.trainer import GlobalMeanTrainer
from msmae.training.callbacks import EpochCallback, ReconstructionPictureCallback
from msmae.training.collator import ClipSampler, PoseCollator, clip_dataset
from msmae.data.loading import load_pose_corpus
from msmae.data.windows import stream_for_node
from msmae.training.hub import enable_checkpoint_pushes, push_output_dir
from msmae.training.model_card import dataset_display_name, write_model_card

logger = logging.getLogger(__name__)

# The paper's pretraining recipe; applied where the command line does not say otherwise.
PAPER_DEFAULTS = {
    "learning_rate": 8e-4,
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "warmup_steps": 2000,
    "lr_scheduler_type": "cosine",
    "max_steps": 120_000,
}
# What the paper leaves out, chosen here (see the module docstring): weight decay 0.05 as in MAE and VideoMAE, whose
# AdamW recipe (betas 0.9/0.95, warmup, cosine) the paper's follows; 64 clips per device, the batch measured in
# BENCHMARKS.md (the paper's 120K steps take about 1.2 h of bf16 compute on one H200).
CHOSEN_DEFAULTS = {
    "weight_decay": 0.05,
    "per_device_train_batch_size": 64,
}
SCRIPT_DEFAULTS = {
    "label_names": [],  # the model has no labels: its loss is the reconstruction error
    "prediction_loss_only": True,  # evaluation needs the loss only; don't gather reconstructions
    "remove_unused_columns": False,
    "ddp_find_unused_parameters": False,  # every parameter takes part in every step
}


@dataclass
class ModelArguments:
    """Which model, config and processor to pretrain."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A pretrained MS-MAE checkpoint to continue pretraining (continual pretraining). Leave "
                  "unset to train from scratch."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Pretrained config name or path, if not the same as model_name_or_path."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Override config values when training from scratch, e.g. "
                  "'hidden_size=256,num_hidden_layers=4,num_attention_heads=4,intermediate_size=1024'."},
    )
    streams: list[str] | None = field(
        default=None,
        metadata={"help": "Streams of a model trained from scratch, e.g. body left_hand right_hand face "
                  "(default: body left_hand right_hand)."},
    )
    mask_ratio: float | None = field(
        default=None, metadata={"help": "Fraction of each stream's cubelets masked (default: the config's, 0.5)."}
    )
    masking_strategy: str | None = field(
        default=None,
        metadata={"help": "'diff' (DiffMask: other time steps per stream) or 'same' (SameMask); default: the config's.",
                  "choices": ["diff", "same"]},
    )
    normalization: str | None = field(
        default=None,
        metadata={"help": "Keypoint normalisation: 'shoulder' or 'none' (default: the checkpoint's processor's when "
                  "continuing a pretraining, else 'shoulder'; a value other than the checkpoint's is an error)."},
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where to store models and datasets downloaded from the Hub."})
    model_revision: str = field(default="main", metadata={"help": "Model revision (branch, tag or commit) to load."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the one from `hf auth login`)."})


@dataclass
class DataTrainingArguments:
    """Which data to pretrain and evaluate on."""

    dataset_name: list[str] | None = field(
        default=None,
        metadata={"help": "One or more pose datasets (paths or Hub ids), concatenated: see the module docstring."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    validation_dataset_name: list[str] | None = field(
        default=None,
        metadata={"help": "Separate evaluation data; otherwise a part of the training data is held out. With "
                  "--do_eval and no --do_train, scores a checkpoint's reconstruction on it (no --dataset_name needed)."},
    )
    validation_split_percentage: float = field(
        default=0.05, metadata={"help": "Fraction of the training clips held out for evaluation."}
    )
    streaming: bool = field(default=False, metadata={"help": "Read the corpus as training goes (needs max_steps)."})
    shuffle_buffer_size: int = field(default=1000, metadata={"help": "Clips in the shuffle buffer when streaming."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training clips (quick runs, debugging)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many evaluation clips."})
    window_size: int = field(default=600, metadata={"help": "Consecutive frames cut from a clip (random in training)."})
    num_frames: int = field(default=300, metadata={"help": "Frames the window is evenly subsampled to."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes that read pose files when building a dataset from files."}
    )
    sign_languages: list[str] | None = field(
        default=None,
        metadata={"help": "ISO 639-3 codes of the sign languages in the data, for the model card (guessed for "
                  "known datasets)."},
    )


def build_config(model_args: ModelArguments) -> MSMAEConfig:
    """Config from a name/path, or a fresh one with `streams` and `config_overrides`; then the masking options."""
    kwargs = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision, "token": model_args.token}
    if model_args.config_name or model_args.model_name_or_path:
        config = MSMAEConfig.from_pretrained(model_args.config_name or model_args.model_name_or_path, **kwargs)
        if model_args.config_overrides or model_args.streams:
            raise ValueError("--config_overrides and --streams apply to a model trained from scratch only.")
    else:
        logger.warning("Training a new MS-MAE from scratch.")
        values = {"streams": model_args.streams} if model_args.streams else {}
        if model_args.config_overrides:
            parsed = MSMAEConfig()
            parsed.update_from_string(model_args.config_overrides)  # parses each value with the field's type
            values.update({key.split("=")[0].strip(): getattr(parsed, key.split("=")[0].strip())
                           for key in model_args.config_overrides.split(",")})
        config = MSMAEConfig(**values)  # validated by MSMAEConfig
    if model_args.mask_ratio is not None or model_args.masking_strategy is not None:
        config = MSMAEConfig(**{
            **config.to_dict(),
            **({"mask_ratio": model_args.mask_ratio} if model_args.mask_ratio is not None else {}),
            **({"masking_strategy": model_args.masking_strategy} if model_args.masking_strategy else {}),
        })
    return config


def load_splits(data_args: DataTrainingArguments, model_args: ModelArguments, seed: int, do_train: bool = True):
    """(train, eval) `datasets` splits of the pose corpus (either may be None)."""
    load = {
        "name": data_args.dataset_config_name,
        "streaming": data_args.streaming,
        "cache_dir": model_args.cache_dir,
        "token": model_args.token,
        "num_proc": data_args.preprocessing_num_workers,
    }
    if not data_args.dataset_name and not (data_args.validation_dataset_name and not do_train):
        raise ValueError("Give the pose data with --dataset_name (a folder, Parquet/Arrow files or a Hub dataset id).")
    train = load_pose_corpus(data_args.dataset_name, **load) if data_args.dataset_name else None
    if data_args.validation_dataset_name:
        evaluation = load_pose_corpus(data_args.validation_dataset_name, **load)
    elif data_args.streaming:
        held_out = data_args.max_eval_samples or 100
        train, evaluation = train.skip(held_out), train.take(held_out)
    elif data_args.validation_split_percentage > 0:
        parts = train.train_test_split(test_size=data_args.validation_split_percentage, seed=seed)
        train, evaluation = parts["train"], parts["test"]
    else:
        evaluation = None
    if train is not None and data_args.streaming:
        train = train.shuffle(seed=seed, buffer_size=data_args.shuffle_buffer_size)
        if data_args.max_train_samples is not None:
            train = train.take(data_args.max_train_samples)
    elif train is not None and data_args.max_train_samples is not None:
        train = train.shuffle(seed=seed).select(range(min(data_args.max_train_samples, len(train))))
    if evaluation is not None and not data_args.streaming and data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(data_args.max_eval_samples, len(evaluation))))
    return train, evaluation


def normalization_of(model_args: ModelArguments) -> str:
    """The checkpoint's normalisation (its encoder learned in that coordinate frame); a different
    `--normalization` is an error. Without a checkpoint: the asked one, else shoulder."""
    return inherited_normalization(model_args.normalization, model_args.model_name_or_path)


def main(args: list[str] | None = None):
    defaults = {**PAPER_DEFAULTS, **CHOSEN_DEFAULTS, **SCRIPT_DEFAULTS}
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported() and not given("fp16", args):
        defaults["bf16"] = True
    model_args, data_args, training_args = parse_arguments(
        (ModelArguments, DataTrainingArguments, TrainingArguments), defaults, args
    )

    setup_logging(training_args, logger)

    last_checkpoint = find_last_checkpoint(training_args, logger)

    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    with training_args.main_process_first(desc="loading the pose corpus"):
        train_data, eval_data = load_splits(data_args, model_args, seed, do_train=training_args.do_train)

    set_seed(training_args.seed)  # before the model is built, so its initial weights follow the seed
    config = build_config(model_args)
    check_num_frames(data_args.num_frames, config)
    processor = MSMAEPoseProcessor.from_preset(
        "pretraining",
        streams=config.streams,
        normalization=normalization_of(model_args),
        window_size=data_args.window_size,
        num_frames=data_args.num_frames,
    )
    if model_args.model_name_or_path:
        model = MSMAEForPreTraining.from_pretrained(
            model_args.model_name_or_path,
            config=config,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=model_args.token,
        )
    else:
        model = MSMAEForPreTraining(config)
    logger.info(f"Model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, config {config.to_diff_dict()}")

    masking = config  # its noise_shape gives the masking noise of each clip
    train_dataset = eval_dataset = None
    node = None
    if training_args.do_train and data_args.streaming and training_args.world_size > 1:
        # Each process streams its own part of the corpus (its own shards where their count allows), read by it
        # alone: no batches dispatched from the main process (GlobalMeanTrainer keeps accelerate from re-splitting).
        node = training_args.process_index
        train_data = stream_for_node(train_data, node, training_args.world_size)
        training_args.accelerator_config.dispatch_batches = False
    if training_args.do_train:
        train_dataset = clip_dataset(train_data, ClipSampler(processor, training=True, masking=masking), seed, node)
    if (training_args.do_eval or training_args.eval_strategy != "no") and eval_data is not None:
        eval_dataset = clip_dataset(eval_data, ClipSampler(processor, training=False, masking=masking), seed)
    collator = PoseCollator(processor, masking=config)

    callbacks = []
    if train_dataset is not None:
        callbacks.append(EpochCallback(train_dataset))
    if eval_dataset is not None:
        callbacks.append(ReconstructionPictureCallback(eval_dataset, collator, training_args.output_dir, config))
    # Losses averaged over the global batch, so results do not depend on the number of processes or machines.
    trainer = GlobalMeanTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        data_collator=collator,
        callbacks=callbacks,
    )
    # The model always returns its reconstruction loss; without labels Trainer must be told to report it.
    trainer.can_return_loss = True
    enable_checkpoint_pushes(trainer)  # --push_to_hub: one commit of model files per save, no pickles

    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or last_checkpoint
        # Then trainer.save_model(): model, config with auto_map and code files, preprocessor_config.json.
        train_result = train_and_save(trainer, checkpoint)  # a full disk or no permission: says what to fix
        metrics = train_result.metrics
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    eval_metrics = {}
    if training_args.do_eval and eval_dataset is not None:
        eval_metrics = trainer.evaluate()
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)

    if trainer.is_world_process_zero() and training_args.do_train:
        results = []
        if "eval_loss" in eval_metrics:
            results.append({
                "metric": "masked_keypoint_mse",
                "type": "mse",
                "name": "Masked keypoint MSE"
                + (" (shoulder widths squared)" if processor.normalization == "shoulder" else ""),
                "value": eval_metrics["eval_loss"],
                "dataset": ", ".join(
                    dataset_display_name(d) for d in data_args.validation_dataset_name or data_args.dataset_name
                ),
                "split": "validation",
            })
        write_model_card(
            training_args.output_dir,
            task="pretraining",
            repo_id=training_args.hub_model_id,
            base_model=model_args.model_name_or_path,
            datasets=data_args.dataset_name,
            sign_languages=data_args.sign_languages,
            eval_results=results,
            hyperparameters=hyperparameters(training_args, config, data_args),
        )
    if training_args.push_to_hub:
        push_output_dir(trainer)
    return {"train": trainer.state.log_history, "eval": eval_metrics, "output_dir": training_args.output_dir}


def hyperparameters(training_args, config, data_args) -> dict:
    total_batch = (
        training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * max(training_args.world_size, 1)
    )
    return {
        "learning_rate": training_args.learning_rate,
        "adam_betas": f"({training_args.adam_beta1}, {training_args.adam_beta2})",
        "weight_decay": training_args.weight_decay,
        "lr_scheduler": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
        "warmup_steps": training_args.warmup_steps,
        "max_steps": training_args.max_steps,
        "total_batch_size": total_batch,
        "window": f"{data_args.window_size} frames subsampled to {data_args.num_frames}",
        "mask_ratio": config.mask_ratio,
        "masking_strategy": config.masking_strategy,
        "seed": training_args.seed,
    }


if __name__ == "__main__":
    main()

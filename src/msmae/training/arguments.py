"""Command-line parsing for the training scripts: `HfArgumentParser` with script-specific defaults.

The scripts change some `TrainingArguments` defaults (the paper's optimiser and schedule). `parse_arguments`
applies them only where the user gave no value, on the command line or in a single `.json`/`.yaml` file, and
`--help` shows them. On a machine with a CUDA GPU it also feeds the GPU by default (`loader_defaults`).
"""

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from transformers import HfArgumentParser, TrainingArguments


@dataclass
class RunArguments:
    """Options every training script has besides transformers' `TrainingArguments` (set on that object)."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train from the start even if --output_dir holds a run: removes that run's checkpoint-N "
                  "folders and trainer_state.json (nothing else). Without it a run resumes from its newest "
                  "complete checkpoint, and a finished run is reported, not trained again."},
    )


def parse_arguments(dataclass_types, defaults=None, args=None):
    """Parse `args` (default: `sys.argv[1:]`) into instances of `dataclass_types`.

    A single argument ending in `.json`, `.yaml` or `.yml` is read as a file of `{argument: value}`. `defaults`
    (`{argument: value}`) override the dataclasses' own defaults.
    """
    parser = HfArgumentParser((*dataclass_types, RunArguments))
    args = sys.argv[1:] if args is None else [str(a) for a in args]
    defaults = dict(defaults or {})
    if len(args) == 1 and args[0].endswith((".json", ".yaml", ".yml")):
        path = Path(os.path.abspath(args[0]))
        if not path.exists():
            raise FileNotFoundError(f"No such arguments file: {path}")
        if path.suffix == ".json":
            values = json.loads(path.read_text())
        else:
            import yaml

            values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of argument names to values.")
        outputs = parser.parse_dict({**defaults, **values})
    else:
        parser.set_defaults(**defaults)
        outputs = parser.parse_args_into_dataclasses(args=args)
    *outputs, run = outputs
    for output in outputs:
        if isinstance(output, TrainingArguments) and not output.use_cpu:
            for name, value in loader_defaults().items():
                if name not in defaults and not given(name, args):
                    setattr(output, name, value)
            if output.dataloader_num_workers == 0 and not given("dataloader_persistent_workers", args):
                output.dataloader_persistent_workers = False  # torch refuses persistent workers without workers
    for output in outputs:
        if isinstance(output, TrainingArguments):
            output.overwrite_output_dir = run.overwrite_output_dir  # read by msmae.training.resume
    return tuple(outputs)


def loader_defaults() -> dict:
    """Data-loader defaults that keep a GPU fed: with CUDA, `min(8, usable CPUs)` worker processes (the clips are
    processed on the CPU while the GPU steps), kept alive across epochs, and pinned host memory for faster
    copies to the GPU. Without CUDA (or with `--use_cpu`): none, the `TrainingArguments` defaults (the main process
    loads the data). `parse_arguments` applies them where neither the user nor the script's defaults set them."""
    if not torch.cuda.is_available():
        return {}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(8, cpus)
    return {"dataloader_num_workers": workers, "dataloader_persistent_workers": workers > 0,
            "dataloader_pin_memory": True}


def check_num_frames(num_frames, config) -> None:
    """Raise `ValueError` naming `--num_frames` when it is more frames than the model's positions cover
    (`max_position_embeddings` cubelets of `cubelet_size` frames): checked before any clip is processed, since every
    clip is stretched (or subsampled) to `num_frames` frames, and a huge value would allocate that many frames per
    clip (`--num_frames 100000000`: 36 GiB) before failing."""
    if num_frames is None:
        return
    limit = config.max_position_embeddings * config.cubelet_size
    if num_frames > limit:
        raise ValueError(
            f"--num_frames {num_frames} is more frames than the model covers: at most {limit} "
            f"(max_position_embeddings {config.max_position_embeddings} x cubelet_size {config.cubelet_size}). "
            "Give a smaller --num_frames (the paper: 32 for recognition, 300 for pretraining)."
        )


def given(name: str, args=None) -> bool:
    """Whether the command line (or arguments file) sets `--name`; for defaults that depend on other values."""
    args = sys.argv[1:] if args is None else [str(a) for a in args]
    if len(args) == 1 and args[0].endswith(".json"):
        return name in json.loads(Path(args[0]).read_text())
    if len(args) == 1 and args[0].endswith((".yaml", ".yml")):
        import yaml

        return name in (yaml.safe_load(Path(args[0]).read_text()) or {})
    flags = {f"--{name}", f"--{name.replace('_', '-')}", f"--no_{name}", f"--no-{name.replace('_', '-')}"}
    return any(a.split("=", 1)[0] in flags for a in args)


def setup_logging(training_args, logger: logging.Logger) -> None:
    """Per-process logging as in transformers' examples: the main process at info, the others at warning."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    logging.getLogger("msmae").setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank: {training_args.process_index}, device: {training_args.device}, "
        f"distributed: {training_args.parallel_mode.value == 'distributed'}, bf16: {training_args.bf16}"
    )
    logger.info(f"Training/evaluation parameters {training_args}")


def inherited_normalization(requested: str | None, checkpoint: str | None, **load_kwargs) -> str:
    """The keypoint normalisation a script uses: the pose checkpoint's (its encoder learned in that coordinate
    frame), read from the processor saved beside it. `requested` (`--normalization`, None when not given) must agree
    with it; without a checkpoint processor it is `requested`, else "shoulder"."""
    saved = None
    if checkpoint:
        from msmae.processing_msmae import MSMAEPoseProcessor

        try:
            saved = MSMAEPoseProcessor.from_pretrained(checkpoint, **load_kwargs).normalization
        except OSError:  # a checkpoint saved without its processor
            saved = None
    if requested and saved and requested != saved:
        raise ValueError(
            f"--normalization {requested!r} differs from the normalization {saved!r} that the checkpoint {checkpoint} "
            "was trained with (its preprocessor_config.json); the encoder only knows that coordinate frame. Leave "
            "--normalization out to inherit it, or use a checkpoint trained with the normalization you want."
        )
    return requested or saved or "shoulder"

"""Where a training run in `--output_dir` starts: the one place the recipes and `msmae demo` decide it.

transformers' Trainer writes a checkpoint in place, in this order: the model (weights, config, processor), then
`optimizer.pt`, `scheduler.pt`, `rng_state.pth`, and `trainer_state.json` last; the recipes' final save ends with
the output folder's own `trainer_state.json`. A run killed, or out of disk, part way leaves a `checkpoint-N` without
its state, or with a torn one. So:

- a checkpoint is complete when its `trainer_state.json` reads, its weights are whole and match the checksum saved
  in them (`hub_packaging.weights_checksum_problem`; weights without one are checked by length only) and its
  optimizer and scheduler states are there; automatic resume takes the newest complete one and names the incomplete
  or damaged ones it skips;
- a run is finished when the output folder's `trainer_state.json` (written after the final model) has reached the
  asked `--max_steps` / `--num_train_epochs`: it is reported, not trained again (Trainer would take one more step);
- a finished checkpoint without the final save (killed in between) is not resumed either, for the same reason: the
  run goes on from the checkpoint before it, or from the start; training is seeded, so the result is the same;
- `--overwrite_output_dir` trains from the start: it removes the folder's `checkpoint-N` folders and its
  `trainer_state.json` (what the Trainer wrote) and nothing else.
"""

import errno
import json
import logging
import os
import re
import shutil
import struct
import sys
from pathlib import Path

from ..hub_packaging import weights_checksum_problem

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE = "trainer_state.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "pytorch_model.bin")
# Errors of the machine, not of the run: the message says what to fix, and a re-run resumes.
ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


class TrainingFinished(SystemExit):
    """Raised (exit status 0) when `--output_dir` holds a finished run of the asked length."""

    def __init__(self, message: str):
        super().__init__(0)
        self.message = message


def read_state(folder: Path) -> dict | None:
    """`folder/trainer_state.json`, or None when it is missing or torn."""
    try:
        state = json.loads((Path(folder) / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("global_step"), int) else None


def safetensors_whole(path: Path) -> bool:
    """Whether a safetensors file is as long as its header says (a torn write is shorter)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size == 8 + length + end
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return False


# How `checkpoint_problem` starts when the weights are whole but changed after saving.
DAMAGED = "damaged weights"


def weights_problem(folder: Path) -> str | None:
    """Why the model weights in `folder` are not whole or fail their checksum, or None."""
    present = [name for name in WEIGHTS if (folder / name).is_file()]
    if not present:
        return "no model weights"
    if "model.safetensors.index.json" in present:
        try:
            shards = set(json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError):
            return "a torn model.safetensors.index.json"
        torn = [s for s in sorted(shards) if not safetensors_whole(folder / s)]
        if torn:
            return f"a missing or torn {torn[0]}"
        files = sorted(shards)
    else:
        for name in present:
            if name.endswith(".safetensors") and not safetensors_whole(folder / name):
                return f"a torn {name}"
        files = [name for name in present if name.endswith(".safetensors")]
    for name in files:
        if weights_checksum_problem(folder / name):
            return f"{DAMAGED}: {name} does not match the checksum written when it was saved"
    return None


def checkpoint_problem(folder: Path, needs_optimizer: bool = True) -> str | None:
    """Why `folder` cannot be resumed from, or None when it is a complete checkpoint."""
    if read_state(folder) is None:
        return f"no readable {STATE}"
    problem = weights_problem(folder)
    if problem:
        return problem
    if needs_optimizer:
        for kind in ("optimizer", "scheduler"):
            if not any(folder.glob(f"{kind}*")):
                return f"no {kind} state"
    return None


def checkpoints(output_dir: Path) -> list[Path]:
    """The `checkpoint-N` folders in `output_dir`, newest (highest N) first."""
    found = [p for p in output_dir.iterdir() if p.is_dir() and CHECKPOINT.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT.match(p.name).group(1)), reverse=True)


def reached_end(state: dict, training_args) -> bool:
    """Whether a run in `state` has trained as long as `training_args` asks."""
    if training_args.max_steps and training_args.max_steps > 0:
        return state["global_step"] >= training_args.max_steps
    return float(state.get("epoch") or 0) >= float(training_args.num_train_epochs) - 1e-6


def find_last_checkpoint(training_args, logger: logging.Logger) -> str | None:
    """The checkpoint to resume training from (None: from the start); see the module docstring.

    Raises `TrainingFinished` when `output_dir` holds a finished run, and ValueError for an incomplete
    `--resume_from_checkpoint`."""
    output_dir = Path(training_args.output_dir)
    needs_optimizer = not training_args.save_only_model
    if not training_args.do_train:
        return None
    if training_args.resume_from_checkpoint:
        problem = checkpoint_problem(Path(training_args.resume_from_checkpoint), needs_optimizer)
        if problem:
            what = (f"is damaged ({problem}: it changed after it was saved)" if problem.startswith(DAMAGED) else
                    f"is not a complete checkpoint ({problem}: its writing was cut off)")
            raise ValueError(
                f"--resume_from_checkpoint {training_args.resume_from_checkpoint} {what}. Give an earlier "
                "checkpoint, or leave the option out to resume from the newest complete one."
            )
        return training_args.resume_from_checkpoint
    if not output_dir.is_dir():
        return None
    if getattr(training_args, "overwrite_output_dir", False):
        with training_args.main_process_first(desc="removing the earlier run's checkpoints"):
            remove_earlier_run(output_dir, logger)
        return None

    final = read_state(output_dir)
    if final is not None and reached_end(final, training_args) and weights_problem(output_dir) is None:
        message = (
            f"{output_dir} holds a finished training run (step {final['global_step']}, epoch "
            f"{float(final.get('epoch') or 0):g}; final model saved): nothing to train. To train it longer, raise "
            "--max_steps / --num_train_epochs; to train again from the start, add --overwrite_output_dir; to "
            "evaluate it, run --do_eval without --do_train and with --model_name_or_path set to this folder."
        )
        logger.warning(message)
        if not logger.isEnabledFor(logging.WARNING):  # --log_level error must not make it a silent exit
            print(message, file=sys.stderr, flush=True)
        raise TrainingFinished(message)

    skipped, chosen = [], None
    for folder in checkpoints(output_dir):
        problem = checkpoint_problem(folder, needs_optimizer)
        if problem is None and reached_end(read_state(folder), training_args):
            # Resuming here would take one more step; the final save is what is missing.
            problem = "the end of training, but the final model was not saved after it"
        if problem is None:
            chosen = folder
            break
        skipped.append(f"{folder.name} ({problem})")
    if skipped:
        start = f"resuming from {chosen.name}" if chosen else "training from the start"
        logger.warning(f"Skipping incomplete or damaged checkpoint(s) in {output_dir}: {'; '.join(skipped)}; {start}.")
    if chosen is not None:
        logger.warning(f"Checkpoint found: resuming from {chosen} (the newest complete checkpoint). "
                       "Use --overwrite_output_dir or another --output_dir to start afresh.")
    return str(chosen) if chosen else None


def remove_earlier_run(output_dir: Path, logger: logging.Logger) -> None:
    """Remove what the Trainer wrote that would make this run resume or count as finished; keep all else."""
    removed = []
    for folder in checkpoints(output_dir):
        shutil.rmtree(folder)
        removed.append(folder.name)
    if (output_dir / STATE).is_file():
        (output_dir / STATE).unlink()
        removed.append(STATE)
    if removed:
        logger.warning(f"--overwrite_output_dir: removed {', '.join(removed)} from {output_dir}; training from the "
                       "start.")


def train_and_save(trainer, checkpoint: str | None):
    """`trainer.train(resume_from_checkpoint=checkpoint)`, then `trainer.save_model()` (the final model); a full
    disk or a permission error on the way says what to fix instead of ending in a writer's traceback."""
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        return result
    except Exception as error:
        cause = environment_error(error)
        if cause is None:
            raise
        raise OSError(
            cause.errno,
            f"Training stopped: could not write {cause.filename or 'in ' + str(trainer.args.output_dir)} "
            f"({cause.strerror}). Free disk space or make {trainer.args.output_dir} writable, then run the same "
            "command again: it resumes from the newest complete checkpoint.",
        ) from error


# How the writers report an OSError: safetensors "I/O error: File too large (os error 27)"; torch.save (its C++
# writer) "file write failed", "basic_ios::clear: iostream error", "[enforce fail at inline_container.cc] unexpected
# pos", without the errno.
OS_ERROR_TEXT = re.compile(r"os error (\d+)")
TORCH_WRITE_FAILED = re.compile(r"file write failed|iostream error|inline_container\.cc.*unexpected pos")


def environment_error(error: BaseException) -> OSError | None:
    """The disk or permission error behind `error` (or a chained cause), as an OSError; None for other errors."""
    while error is not None:
        if isinstance(error, OSError):
            if error.errno in ENVIRONMENT_ERRORS:
                return error
        elif (match := OS_ERROR_TEXT.search(str(error))) and int(match.group(1)) in ENVIRONMENT_ERRORS:
            return OSError(int(match.group(1)), os.strerror(int(match.group(1))))
        elif TORCH_WRITE_FAILED.search(str(error)):
            return OSError(errno.EIO, "a file write failed, most likely on a full disk")
        error = error.__cause__ or error.__context__
    return None

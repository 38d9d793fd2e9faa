"""Uploading a training run's output folder to the Hub, with msmae's model card.

`Trainer.push_to_hub` would write transformers' generic card over ours, so the final upload goes through
`huggingface_hub.upload_folder` directly. Which files go up is `hub_packaging`'s rule (`UPLOAD_IGNORE_PATTERNS`:
`Trainer.push_to_hub`'s ignore patterns plus pickles and resume-only state; `files_to_upload` lists them, which is how
tests check an upload without making one).

During training, Trainer's own push on every save would upload `training_args.bin` (a pickle) and no code files, so
`enable_checkpoint_pushes` replaces it: one commit per save holding the checkpoint's weights, config, code files and
processor, and nothing else.
"""

from pathlib import Path

from huggingface_hub import HfApi
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, HubStrategy

from ..hub_packaging import UPLOAD_IGNORE_PATTERNS, files_to_upload


class CheckpointPushCallback(TrainerCallback):
    """On every save, one commit of the new checkpoint's model files (see `enable_checkpoint_pushes`)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.trainer.hub_model_id is None:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():
            return
        HfApi().upload_folder(
            repo_id=self.trainer.hub_model_id,
            folder_path=str(folder),
            commit_message=f"Training in progress, step {state.global_step}",
            token=args.hub_token,
            revision=args.hub_revision,
            allow_patterns=files_to_upload(folder),
        )


def enable_checkpoint_pushes(trainer) -> None:
    """With `--push_to_hub`: turn Trainer's own pushes off (per save, and in `save_model`) (`hub_strategy="end"`, which this package's
    recipes implement with `push_output_dir`) and push each checkpoint with `CheckpointPushCallback` instead."""
    if not trainer.args.push_to_hub:
        return
    trainer.args.hub_strategy = HubStrategy.END
    trainer.add_callback(CheckpointPushCallback(trainer))
    # `Trainer.save_model()` also pushes (transformers' generic card, training_args.bin); the run's final push is
    # `push_output_dir`, after the package's card is written.
    trainer.push_to_hub = _skip_generic_push


def _skip_generic_push(*args, **kwargs):
    return None


def push_output_dir(trainer, commit_message: str = "End of training"):
    """Upload `trainer.args.output_dir` (model, config with auto_map, code files, processor, README.md) to
    `trainer.args.hub_model_id` (created if needed). Call after `save_model` and writing the card; only the main
    process uploads."""
    if not trainer.is_world_process_zero():
        return None
    args = trainer.args
    if trainer.hub_model_id is None:
        trainer.init_hf_repo(token=args.hub_token)
    return HfApi().upload_folder(
        repo_id=trainer.hub_model_id,
        folder_path=args.output_dir,
        commit_message=commit_message,
        token=args.hub_token,
        revision=args.hub_revision,
        ignore_patterns=UPLOAD_IGNORE_PATTERNS,
    )

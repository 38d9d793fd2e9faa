"""Uploading a training run's output folder to the Hub, with msmae's model card.

`Trainer.push_to_hub` would write transformers' generic card over ours, so the final upload goes through
`huggingface_hub.upload_folder` directly, with `Trainer.push_to_hub`'s ignore patterns plus training_args.bin
(`files_to_upload` lists what goes up, which is how tests check an upload without making one).
"""

from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

# As Trainer.push_to_hub: no private files (`_*`) and no intermediate checkpoints. Also no training_args.bin, a
# pickle (loading it runs code); the card and trainer_state.json record the hyperparameters instead.
UPLOAD_IGNORE_PATTERNS = [
    "_*",
    f"{PREFIX_CHECKPOINT_DIR}-*",
    f"{PREFIX_CHECKPOINT_DIR}-*/**",
    "**/__pycache__/**",
    "training_args.bin",
]


def files_to_upload(folder) -> list[str]:
    """Paths (relative to `folder`, sorted) that `push_output_dir` uploads."""
    folder = Path(folder)
    paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return sorted(filter_repo_objects(paths, ignore_patterns=UPLOAD_IGNORE_PATTERNS))


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

"""`msmae push FOLDER REPO_ID`: publish a finished training run to the Hub in one commit.

What goes up is the chosen checkpoint (the run's final model, or `--checkpoint checkpoint-N`) as a model repository:
weights, config, processor, code, `handler.py`, `requirements.txt` and a model card whose model-index holds the run's
metrics. Never the other `checkpoint-*` folders, optimizer or scheduler states, `training_args.bin` or any pickle
(`hub_packaging.UPLOAD_IGNORE_PATTERNS`). Missing serving files are filled in from the installed msmae; nothing in
FOLDER is changed (the upload is staged in a temporary folder).

Exit codes: 0 pushed; 2 bad arguments or input; 1 the Hub refused or could not be reached (the message says why).
"""

import json
import logging
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger("msmae")

PUSH_HELP = "publish a finished training run folder (its final model or one checkpoint) to the Hub in one commit"

# Model-card task of each pipeline task.
CARD_TASKS = {"sign-language-recognition": "sign-classification", "sign-language-embedding": "pretraining",
              "sign-language-translation": "translation"}
# Result files Trainer.save_metrics writes, merged (all_results.json) and per split.
RESULT_FILES = ("all_results.json", "eval_results.json", "test_results.json", "predict_results.json")
# Key prefix of each split in those files.
SPLITS = {"eval_": "validation", "test_": "test", "predict_": "test"}


def add_push_arguments(parser):
    parser.add_argument("folder", metavar="FOLDER", help="the output folder of a training run (--output_dir)")
    parser.add_argument("repo_id", metavar="REPO_ID", help="the Hub model repository, owner/name (created if needed)")
    parser.add_argument("--checkpoint", default=None,
                        help="publish this checkpoint folder of the run (e.g. checkpoint-500) instead of its final model")
    parser.add_argument("--revision", default=None, help="the branch to commit to (created if needed; default main)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--dataset", default=None,
                        help="Hub dataset id the metrics were measured on, for the card's model-index (default: the "
                             "one the run's card names)")
    parser.add_argument("--commit_message", default=None, help="default: 'Upload <checkpoint> of <run>'")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one)")


def run_push(args, parser) -> int:
    try:
        chosen = chosen_checkpoint(Path(args.folder), args.checkpoint)
        with tempfile.TemporaryDirectory() as staging:
            files = stage(Path(args.folder), chosen, Path(staging), args.repo_id, args.dataset)
            message = args.commit_message or f"Upload {chosen.name if args.checkpoint else 'the final model'} of {Path(args.folder).resolve().name}"
            commit = publish(staging, args.repo_id, message, args)
    except (FileNotFoundError, ValueError) as error:
        logger.error("%s", error)
        return 2
    except OSError as error:  # huggingface_hub's HTTP and connection errors are OSErrors
        logger.error("msmae push: the Hub did not take the upload to %s: %s", args.repo_id, error)
        return 1
    logger.info("Pushed %d files to https://huggingface.co/%s (%s)", len(files), args.repo_id,
                getattr(commit, "commit_url", commit))
    return 0


def publish(staging, repo_id, message, args):
    from ..hub_packaging import upload_checkpoint

    return upload_checkpoint(staging, repo_id, commit_message=message, private=args.private or None,
                             token=args.hub_token, revision=args.revision)


def chosen_checkpoint(folder: Path, checkpoint=None) -> Path:
    """The folder holding the model to publish: `folder` (the run's final model) or its subfolder `checkpoint`."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; give the output folder of a training run (--output_dir).")
    checkpoints = sorted(p.name for p in folder.glob("checkpoint-*") if p.is_dir())
    chosen = folder / checkpoint if checkpoint else folder
    if checkpoint and (Path(checkpoint).name != checkpoint or not chosen.is_dir()):
        raise FileNotFoundError(f"{folder} has no checkpoint folder {checkpoint!r}; it has: "
                                f"{', '.join(checkpoints) or 'none'}.")
    weights = list(chosen.glob("*.safetensors"))
    if not (chosen / "config.json").is_file() or not weights:
        hint = (f" The run saved checkpoints ({', '.join(checkpoints)}): choose one with --checkpoint."
                if checkpoints and not checkpoint else " Train to the end (save_model) or choose another checkpoint.")
        raise FileNotFoundError(f"{chosen} holds no saved model (config.json and *.safetensors weights).{hint}")
    return chosen


def stage(run: Path, chosen: Path, staging: Path, repo_id: str, dataset=None) -> list[str]:
    """Copies what a model repository needs from `chosen` into `staging` and completes it: the processor (from the
    run folder when a checkpoint lacks it), code, handler and requirements, the card. Returns the files."""
    from ..hub_packaging import (PROCESSOR_FILE, REQUIREMENTS_FILE, add_pipeline_to_checkpoint, files_to_upload,
                                 write_requirements)

    for name in files_to_upload(chosen):
        if "/" not in name and name != "README.md":  # the checkpoint's files, not logs in subfolders
            shutil.copy2(chosen / name, staging / name)
    if not (staging / PROCESSOR_FILE).is_file():
        if not (run / PROCESSOR_FILE).is_file():
            raise FileNotFoundError(f"{chosen} has no {PROCESSOR_FILE} (the pose processor); save the processor "
                                    "used in training there (processor.save_pretrained) and push again.")
        shutil.copy2(run / PROCESSOR_FILE, staging / PROCESSOR_FILE)
    config = json.loads((staging / "config.json").read_text(encoding="utf-8"))
    if not (staging / "handler.py").is_file() or not config.get("custom_pipelines"):
        add_pipeline_to_checkpoint(staging)  # a folder saved without them (older msmae, other tools)
    if not (staging / REQUIREMENTS_FILE).is_file():
        write_requirements(staging)
    write_card(run, chosen, staging, repo_id, dataset)
    return files_to_upload(staging)


def run_metrics(run: Path, chosen: Path) -> dict:
    """The run's metrics for the chosen model, keyed as Trainer writes them (`eval_top1`, `test_top1`, ...): the
    result files of the run for its final model, the evaluation logged at a checkpoint's step for a checkpoint."""
    if chosen != run:
        state_path = chosen / "trainer_state.json"
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
        step = state.get("global_step")
        logged = [entry for entry in state.get("log_history", []) if entry.get("step") == step]
        return {key: value for entry in logged for key, value in entry.items() if key.startswith("eval_")}
    metrics = {}
    for name in RESULT_FILES:
        if (run / name).is_file():
            metrics.update(json.loads((run / name).read_text(encoding="utf-8")))
    return metrics


def card_results(metrics: dict, task: str, dataset: str) -> list[dict]:
    """Model-card evaluation entries (`build_model_card`'s `eval_results`) of the metrics the task reports."""
    from ..recipes.sign_classification import METRIC_NAMES
    from ..recipes.sign_translation import CARD_METRICS

    known = {"sign-classification": {name: (label, "accuracy" if name in ("top1", "top5") else "recall")
                                     for name, label in METRIC_NAMES.items()},
             "translation": {name: (label, kind) for name, label, kind in CARD_METRICS},
             "pretraining": {"loss": ("Masked keypoint MSE", "mse")}}[task]
    results = []
    for key, value in sorted(metrics.items()):
        prefix = next((p for p in SPLITS if key.startswith(p)), None)
        name = key[len(prefix):] if prefix else None
        if name in known and isinstance(value, (int, float)):
            label, kind = known[name]
            results.append({"metric": name, "name": label, "type": kind, "value": float(value), "dataset": dataset,
                            "split": SPLITS[prefix]})
    return results


def write_card(run: Path, chosen: Path, staging: Path, repo_id: str, dataset=None) -> None:
    """The card of the published model, with the run's metrics as results (in the card's model-index where the
    dataset is a Hub id): the run's own card for its final model, with the repository filled in, or a new card."""
    from huggingface_hub import EvalResult, ModelCard

    from ..hub_packaging import ARCHITECTURE_TASKS, tasks_for_checkpoint
    from ..training.model_card import build_model_card, is_hub_id

    config = json.loads((staging / "config.json").read_text(encoding="utf-8"))
    task = CARD_TASKS[tasks_for_checkpoint(config)[0]] if any(a in ARCHITECTURE_TASKS for a in config.get(
        "architectures") or []) else "pretraining"
    own_card = run / "README.md" if chosen == run and (run / "README.md").is_file() else None
    card = ModelCard.load(own_card) if own_card else None
    named = [d for d in ((card.data.datasets or []) if card else []) if is_hub_id(d)]
    dataset = dataset or (named[0] if named else None)
    results = card_results(run_metrics(run, chosen), task, dataset or run.resolve().name)
    name = repo_id.split("/")[-1]
    if card is None:
        card = build_model_card(staging, task=task, model_name=name, repo_id=repo_id, eval_results=results,
                                datasets=[dataset] if dataset else None)
    else:
        card.text = card.text.replace(f"<your-username>/{run.resolve().name}", repo_id)
        card.data.model_name = name
        if dataset and is_hub_id(dataset):
            card.data.eval_results = [
                EvalResult(task_type=card.data.pipeline_tag, dataset_type=dataset, dataset_name=dataset,
                           dataset_split=r["split"], metric_type=r["type"], metric_name=r["name"],
                           metric_value=r["value"]) for r in results
            ] or card.data.eval_results
    if results and not (dataset and is_hub_id(dataset)):
        logger.warning("The card lists the run's results in its text only: a model-index needs the Hub dataset they "
                       "were measured on (--dataset owner/name).")
    card.save(staging / "README.md")

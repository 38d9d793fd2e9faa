"""`msmae demo`: pretraining -> fine-tuning -> evaluation -> prediction, end to end, offline, in a few minutes on CPU.

It runs the training recipes behind the example scripts (`msmae.recipes.pretraining` and
`msmae.recipes.sign_classification`, their `main` functions, with command-line arguments as a user would give
them) on a small MS-MAE, then loads the fine-tuned model the way its model card says and predicts the test clips.
Everything it needs is in the installed package: it runs from a wheel, without a checkout.

Data (`--data`):
- `shared`: the real data in `--data_dir` (default: $MSMAE_SHARED_DATA, else `../shared/data` from the current
  folder or the source checkout): pretraining on the SignSuisse (DSGS) and ASL-App (ASL) poses, recognition on
  MSL-150 (Mexican Sign Language, 5 signs, one signer, so the split is stratified by sign, not by signer);
- `packaged`: the real signing shipped inside msmae (`msmae.sample_data`, MIT-licensed): pretraining on the
  ASL-App and MSL-150 poses (labels unused; MSL-150's test clips are among them, unlabelled, as in continual
  pretraining on a target set), recognition on MSL-150 as above;
- `auto` (the default): `shared` when that folder exists, else `packaged`;
- `synthetic`: clips the package generates (`msmae.training.synthetic`), stick figures whose hands move along
  class-specific paths. They are not sign language; they show that the pipeline trains and predicts, and their
  accuracy says nothing about real signing.

`--output_dir` must be new or empty: the demo deletes nothing it did not write. It records the files it writes
(`msmae-demo-files.json`); `--overwrite_output_dir` replaces an earlier demo's output by removing those files only.
"""

import argparse
import importlib
import json
import logging
import os
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# A small MS-MAE that trains in minutes on two CPU cores (the paper's is 8 x 512).
DEMO_CONFIG = (
    "hidden_size=64,num_hidden_layers=3,num_attention_heads=4,intermediate_size=128,"
    "decoder_hidden_size=64,decoder_num_hidden_layers=1,decoder_num_attention_heads=4,decoder_intermediate_size=128"
)
QUICK_CONFIG = (
    "hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64,"
    "decoder_hidden_size=32,decoder_num_hidden_layers=1,decoder_num_attention_heads=4,decoder_intermediate_size=64"
)
DATA_CHOICES = ("auto", "shared", "packaged", "synthetic")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--output_dir", default="msmae-demo-output", help="where everything is written (default: %(default)s)")
    parser.add_argument("--data", choices=DATA_CHOICES, default="auto",
                        help="shared: the real data in --data_dir; packaged: the real signing shipped with msmae "
                             "(ASL-App, MSL-150); auto: shared if found, else packaged; synthetic: generated "
                             "stick figures, not sign language (default: %(default)s)")
    parser.add_argument("--data_dir", default=None,
                        help="for --data shared/auto: folder holding signsuisse/, asl-app-100/ and msl150/ "
                             "(default: $MSMAE_SHARED_DATA or ../shared/data)")
    parser.add_argument("--pretraining_steps", type=int, default=None, help="default 400 (quick: 4)")
    parser.add_argument("--finetuning_epochs", type=float, default=None, help="default 40 (quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model, a few steps and few clips: checks the pipeline in well under a minute")
    parser.add_argument("--cache_dir", default=None,
                        help="datasets cache for the clips read from files (default: OUTPUT_DIR/cache)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="replace an earlier demo's output in --output_dir: removes only the files that demo "
                             "wrote (listed in its msmae-demo-files.json); without it, a non-empty --output_dir is "
                             "refused")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msmae demo",
        description="Pretrain a small MS-MAE, fine-tune it for sign recognition, evaluate and predict, offline.",
    )
    return add_arguments(parser)


def find_data_dir(data_dir=None):
    """The real-data folder to use, or None: `data_dir`, $MSMAE_SHARED_DATA, ../shared/data (from the current
    folder, then from the source checkout)."""
    candidates = [data_dir] if data_dir else [
        os.environ.get("MSMAE_SHARED_DATA"),
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3].parent / "shared" / "data",
    ]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_dir() for name in ("signsuisse", "asl-app-100", "msl150")):
            return Path(candidate)
    if data_dir:
        raise FileNotFoundError(f"{data_dir} does not hold signsuisse/, asl-app-100/ and msl150/.")
    return None


def load_example(name: str):
    """The recipe module behind examples/<name>.py: "run_pretraining" -> `msmae.recipes.pretraining`."""
    return importlib.import_module(f"msmae.recipes.{name.removeprefix('run_')}")


def prepare_data(args, output_dir: Path):
    """(kind, description, pretraining sources, recognition source) for the recipes' --dataset_name."""
    data_dir = find_data_dir(args.data_dir) if args.data in ("auto", "shared") else None
    if args.data == "shared" and data_dir is None:
        raise FileNotFoundError(
            "--data shared: no real-data folder found (give --data_dir or set MSMAE_SHARED_DATA; it must hold "
            "signsuisse/, asl-app-100/ and msl150/). --data packaged uses the real signing shipped with msmae."
        )
    if data_dir is not None:
        return (
            "shared",
            f"real: SignSuisse + ASL-App poses for pretraining, MSL-150 for recognition (from {data_dir})",
            [str(data_dir / "signsuisse"), str(data_dir / "asl-app-100")],
            str(data_dir / "msl150"),
        )
    data = output_dir / "data"
    if args.data != "synthetic":
        return ("packaged", *packaged_data(args, data))
    from ..training.synthetic import synthetic_pretraining_dataset, synthetic_sign_dataset

    cache = str(cache_dir(args, output_dir))
    pretraining, recognition = data / "synthetic-pretraining", data / "synthetic-signs"
    if not pretraining.exists():
        count = 12 if args.quick else 80
        synthetic_pretraining_dataset(num_clips=count, seed=args.seed, cache_dir=cache).save_to_disk(str(pretraining))
    if not recognition.exists():
        per_class = 4 if args.quick else 16
        synthetic_sign_dataset(clips_per_class=per_class, seed=args.seed, cache_dir=cache).save_to_disk(str(recognition))
    return (
        "synthetic",
        "synthetic (--data synthetic): generated stick-figure clips, not sign language",
        [str(pretraining)],
        str(recognition),
    )


def packaged_data(args, data: Path):
    """The real signing shipped with msmae, saved as datasets the recipes read: (description, pretraining sources,
    recognition source). Rebuilt on every run (a second), so a newer msmae's data is never shadowed (an earlier
    demo's copy was removed with its output, see `claim_output_dir`)."""
    from .. import sample_data

    folders = {}
    for name in sample_data.DATASETS:
        folder = data / f"packaged-{name}"
        sample_data.sample_dataset(name, cache_dir=str(cache_dir(args, data.parent))).save_to_disk(str(folder))
        folders[name] = str(folder)
    return (
        "real, packaged with msmae (msmae.sample_data): ASL-App + MSL-150 poses for pretraining (labels unused), "
        "MSL-150 for recognition; MIT-licensed, MSL-150: cite doi:10.5281/zenodo.17783312",
        [folders["asl-app-100"], folders["msl150"]],
        folders["msl150"],
    )


def cache_dir(args, output_dir: Path) -> Path:
    return Path(args.cache_dir).resolve() if args.cache_dir else output_dir / "cache"


def pretraining_arguments(args, sources, output_dir: Path) -> list[str]:
    steps = args.pretraining_steps or (4 if args.quick else 400)
    return [
        "--dataset_name", *sources,
        "--output_dir", str(output_dir / "pretraining"),
        "--config_overrides", QUICK_CONFIG if args.quick else DEMO_CONFIG,
        "--do_train", "--do_eval",
        "--max_steps", str(steps),
        "--warmup_steps", str(max(1, steps // 10)),
        "--eval_strategy", "steps", "--eval_steps", str(max(1, steps // 2)),
        "--save_strategy", "steps", "--save_steps", str(steps), "--save_total_limit", "1",
        "--per_device_train_batch_size", "8" if args.quick else "16",
        "--per_device_eval_batch_size", "16",
        # Short windows keep the demo fast (the paper cuts 600 frames and keeps 300).
        "--window_size", "64" if args.quick else "128", "--num_frames", "32" if args.quick else "64",
        "--validation_split_percentage", "0.05",
        "--max_eval_samples", "8" if args.quick else "32",
        "--logging_steps", str(max(1, steps // 10)),
        "--cache_dir", str(cache_dir(args, output_dir)),
        "--seed", str(args.seed),
        "--use_cpu", "--report_to", "none", "--log_level", "warning", "--disable_tqdm", "true",
    ]


def finetuning_arguments(args, source, output_dir: Path) -> list[str]:
    epochs = args.finetuning_epochs or (2 if args.quick else 40)
    return [
        "--model_name_or_path", str(output_dir / "pretraining"),
        "--dataset_name", source,
        "--output_dir", str(output_dir / "sign-classification"),
        "--do_train", "--do_eval", "--do_predict",
        "--num_train_epochs", str(epochs),
        # A small model on a small set: a higher peak rate and a shorter warmup than the paper's 5e-5 / 10 epochs.
        "--learning_rate", "1e-3", "--warmup_epochs", str(max(1, int(epochs) // 10)),
        "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32",
        "--validation_split_percentage", "0.2", "--test_split_percentage", "0.2",
        "--eval_strategy", "epoch", "--save_strategy", "epoch", "--save_total_limit", "1",
        "--logging_strategy", "epoch",
        "--cache_dir", str(cache_dir(args, output_dir)),
        "--seed", str(args.seed),
        "--use_cpu", "--report_to", "none", "--log_level", "warning", "--disable_tqdm", "true",
    ]


def predict_test_clips(model_dir: Path, recognition_source: str, cache: Path, seed: int, limit: int = 8):
    """Load the fine-tuned model as its model card does and classify test clips: [(source, true, predicted, p)]."""
    import torch
    from transformers import AutoModelForVideoClassification

    from ..processing_msmae import MSMAEPoseProcessor
    from ..data.loading import load_sign_dataset, split_dataset
    from .sign_classification import portable_sources

    model = AutoModelForVideoClassification.from_pretrained(model_dir).eval()
    processor = MSMAEPoseProcessor.from_pretrained(model_dir)
    data = load_sign_dataset(recognition_source, cache_dir=str(cache))
    if not hasattr(data, "keys"):
        # The same split as the fine-tuning script's (same fractions and seed).
        data = split_dataset(data, validation_size=0.2, test_size=0.2, seed=seed)
    test = data["test"].select(range(min(limit, len(data["test"])))).with_format("numpy")
    names = data["test"].features["label"].names
    sources = portable_sources(data["test"]["source"])  # named as in the script's predictions_test.csv
    rows = [test[i] for i in range(len(test))]
    with torch.no_grad():
        probabilities = model(**processor(rows, return_tensors="pt")).logits.softmax(-1)
    return [
        (source, names[int(row["label"])], model.config.id2label[int(p.argmax())], float(p.max()))
        for source, row, p in zip(sources, rows, probabilities)
    ]


def run(args) -> int:
    # No network: everything below is local. Set before the scripts build their Trainer.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    logging.basicConfig(format="%(message)s", level=logging.INFO, handlers=[logging.StreamHandler(sys.stdout)])
    import datasets
    import torch

    datasets.disable_progress_bars()
    threads = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        # The demo's model is tiny: its operations are too small to gain from several threads, and on a busy
        # machine threads that wait for each other make training many times slower (measured: 20x on 2 cores).
        torch.set_num_threads(1)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args) -> int:
    output_dir = Path(args.output_dir).resolve()
    problem = claim_output_dir(output_dir, args.overwrite_output_dir)
    if problem:
        print(f"msmae demo: {problem}", file=sys.stderr, flush=True)
        return 2

    started = time.time()
    started_ns = time.time_ns() - 50_000_000  # file times come from a coarser clock, up to a tick behind
    try:
        return _run_steps(args, output_dir, started, started_ns)
    finally:  # an error or Ctrl-C part way: what was written is recorded all the same (kill -9 escapes this)
        record_written(output_dir, started_ns)


def _run_steps(args, output_dir: Path, started: float, started_ns: int) -> int:
    from . import pretraining as pretraining_recipe
    from . import sign_classification as classification_recipe

    record_written(output_dir, started_ns, running=True)  # a kill -9 from here on leaves a record saying so
    kind, description, pretraining_sources, recognition_source = prepare_data(args, output_dir)
    record_written(output_dir, started_ns, running=True)
    print(f"[msmae demo] data: {description}", flush=True)

    print("[msmae demo] 1/3 pretraining (msmae.recipes.pretraining = examples/run_pretraining.py) ...", flush=True)
    pretraining = pretraining_recipe.main(pretraining_arguments(args, pretraining_sources, output_dir))
    record_written(output_dir, started_ns, running=True)
    print("[msmae demo] 2/3 fine-tuning and evaluation (msmae.recipes.sign_classification = "
          "examples/run_sign_classification.py) ...", flush=True)
    finetuning = classification_recipe.main(finetuning_arguments(args, recognition_source, output_dir))
    record_written(output_dir, started_ns, running=True)
    print("[msmae demo] 3/3 prediction with the saved model ...", flush=True)
    predictions = predict_test_clips(
        output_dir / "sign-classification", recognition_source, cache_dir(args, output_dir), args.seed
    )

    summary = summarize(kind, description, pretraining, finetuning, predictions, output_dir, time.time() - started)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    record_written(output_dir, started_ns, running=True)
    print(format_summary(summary), flush=True)
    return 0


# The demo's list of the files it wrote in --output_dir: --overwrite_output_dir removes these and nothing else.
WRITTEN = "msmae-demo-files.json"
# The folders only the demo writes in: a demo killed part way (its record says it was running) owns what was written
# in them since it started, though it could not record those files.
DEMO_FOLDERS = ("data", "cache", "pretraining", "sign-classification")


def claim_output_dir(output_dir: Path, overwrite: bool) -> str | None:
    """Make `output_dir` ready for the demo: new or empty, or (with `overwrite`) an earlier demo's output with the
    files that demo wrote removed. Returns why it cannot be used (nothing is removed then), or None."""
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output_dir {output_dir} is a file, not a folder: give a new or empty folder."
    if not output_dir.exists() or not any(output_dir.iterdir()):
        output_dir.mkdir(parents=True, exist_ok=True)
        return None
    if not overwrite:
        return (f"--output_dir {output_dir} is not empty. The demo writes into a new or empty folder and deletes "
                "nothing it did not write: give another --output_dir, or add --overwrite_output_dir to replace an "
                "earlier demo's output there (only the files that demo wrote are removed).")
    listed = read_written(output_dir)
    if listed is None:
        return (f"--output_dir {output_dir} holds no earlier msmae demo output (no readable {WRITTEN}), so "
                "--overwrite_output_dir removes nothing there: give a new or empty --output_dir.")
    running = read_running(output_dir)
    if running is not None:
        if process_alive(running["pid"]):
            return (f"another msmae demo (pid {running['pid']}) is still writing into {output_dir}: wait for it to "
                    "finish (or stop it), or give another --output_dir. Nothing was removed.")
        listed += written_since(output_dir, running["started_ns"])  # that demo was killed before recording them
    # A checkpoint the record does not cover would be resumed by the recipes: refuse before removing anything.
    kept = set(listed)
    foreign = [folder for stage in ("pretraining", "sign-classification") if (output_dir / stage).is_dir()
               for folder in sorted((output_dir / stage).glob("checkpoint-*"))
               if any(p.is_file() and str(p.relative_to(output_dir)) not in kept for p in folder.rglob("*"))]
    if foreign:
        return (f"{', '.join(map(str, foreign))} holds files the earlier demo did not record writing (a checkpoint of "
                "another run, or of a demo killed part way), and the training recipes would resume from it. Nothing "
                "was removed: move it away (or delete it if it is the demo's), or give another --output_dir.")
    for relative in listed:
        path = output_dir / relative
        if path.is_file() or path.is_symlink():
            path.unlink()
    # Folders the removals emptied, deepest first; folders that still hold anything stay.
    for folder in sorted((p for p in output_dir.rglob("*") if p.is_dir() and not p.is_symlink()),
                         key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    (output_dir / WRITTEN).unlink(missing_ok=True)
    (output_dir / (WRITTEN + ".tmp")).unlink(missing_ok=True)  # a record being written when a demo was killed
    return None


def read_written(output_dir: Path) -> list[str] | None:
    """The files (relative to `output_dir`) an earlier demo recorded as written there, or None without a record."""
    try:
        listed = json.loads((output_dir / WRITTEN).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    root = output_dir.resolve()
    # Only plain relative paths inside the folder: a hand-edited record can not reach elsewhere.
    return [p for p in listed if isinstance(p, str) and not Path(p).is_absolute()
            and ".." not in Path(p).parts and (root / p).resolve().is_relative_to(root)]


def read_running(output_dir: Path) -> dict | None:
    """`{"pid", "started_ns"}` of the demo whose record says it is still running (or was killed), else None."""
    try:
        running = json.loads((output_dir / WRITTEN).read_text()).get("running")
        return {"pid": int(running["pid"]), "started_ns": int(running["started_ns"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def written_since(output_dir: Path, since_ns: int) -> list[str]:
    """The files in the demo's own folders (`DEMO_FOLDERS`) written since `since_ns`, relative to `output_dir`."""
    return [str(path.relative_to(output_dir)) for folder in DEMO_FOLDERS for path in (output_dir / folder).rglob("*")
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime_ns >= since_ns]


def record_written(output_dir: Path, since_ns: int, running=False) -> None:
    """Add to the record the files under `output_dir` written since `since_ns` (this run's), after each step, so
    that a run stopped part way still has a record of what it completed. `running`: the record also says this demo
    (its pid, `since_ns`) is still writing, so that one killed with -9 can be told from another run's files."""
    listed = set(read_written(output_dir) or [])
    for path in output_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mtime_ns >= since_ns:
            listed.add(str(path.relative_to(output_dir)))
    listed.add(WRITTEN)
    record = output_dir / WRITTEN
    temporary = record.with_name(WRITTEN + ".tmp")
    values = {"written_by": "msmae demo", "files": sorted(listed)}
    if running:
        values["running"] = {"pid": os.getpid(), "started_ns": since_ns}
    temporary.write_text(json.dumps(values, indent=0))
    os.replace(temporary, record)  # a kill leaves the old record or the new one, never half of one


def summarize(kind, description, pretraining, finetuning, predictions, output_dir: Path, seconds: float) -> dict:
    losses = [entry["loss"] for entry in pretraining["train"] if "loss" in entry]
    results = finetuning["results"]
    pictures = sorted(str(p) for p in (output_dir / "pretraining" / "reconstructions").glob("*.png"))
    return {
        "data_source": kind,
        "data": description,
        "pretraining": {
            "first_logged_loss": losses[0] if losses else None,
            "last_logged_loss": losses[-1] if losses else None,
            "eval_masked_keypoint_mse": pretraining["eval"].get("eval_loss"),
            "model": str(output_dir / "pretraining"),
            "reconstruction_pictures": pictures,
        },
        "sign_classification": {
            "num_signs": len(finetuning["label_names"]),
            "validation": {k: v for k, v in results.get("validation", {}).items() if "top" in k},
            "test": {k: v for k, v in results.get("test", {}).items() if "top" in k},
            "model": str(output_dir / "sign-classification"),
            "predictions_file": str(output_dir / "sign-classification" / "predictions_test.csv"),
            "confusion_matrix": str(output_dir / "sign-classification" / "confusion_matrix_test.png"),
            "model_card": str(output_dir / "sign-classification" / "README.md"),
        },
        "predictions": [
            {"source": source, "label": label, "prediction": prediction, "probability": round(p, 4)}
            for source, label, prediction, p in predictions
        ],
        "seconds": round(seconds, 1),
    }


def format_summary(summary: dict) -> str:
    pre, cls = summary["pretraining"], summary["sign_classification"]
    test, validation = cls["test"], cls["validation"]
    fmt = lambda value: "n/a" if value is None else f"{value:.4f}"  # noqa: E731
    lines = [
        "",
        "=" * 78,
        f"MS-MAE demo finished in {summary['seconds']:.0f} s",
        f"data: {summary['data']}",
        f"pretraining: training loss {fmt(pre['first_logged_loss'])} -> {fmt(pre['last_logged_loss'])}; "
        f"held-out masked-keypoint MSE {fmt(pre['eval_masked_keypoint_mse'])}",
        f"recognition ({cls['num_signs']} signs): validation top-1 {fmt(validation.get('eval_top1'))}; "
        f"test top-1 {fmt(test.get('test_top1'))}, top-5 {fmt(test.get('test_top5'))}"
        + (" (top-5 is 1 by definition with 5 or fewer signs)" if cls["num_signs"] <= 5 else ""),
        "predictions on test clips (loaded back from the saved model):",
    ]
    for p in summary["predictions"]:
        mark = "ok " if p["label"] == p["prediction"] else "ERR"
        lines.append(f"  {mark} {p['label']:>12} -> {p['prediction']:<12} p={p['probability']:.2f}  {p['source']}")
    lines += [
        "written:",
        f"  pretrained model, processor, model card: {pre['model']}",
        *(f"  reconstruction picture: {path}" for path in pre["reconstruction_pictures"][-1:]),
        f"  fine-tuned model, processor, model card: {cls['model']}",
        f"  test predictions: {cls['predictions_file']}",
        f"  confusion matrix: {cls['confusion_matrix']}",
        f"  this summary: {Path(cls['model']).parent / 'summary.json'}",
        "=" * 78,
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

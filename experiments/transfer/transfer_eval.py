"""Real-data transfer evaluation of MS-MAE pretraining (issue 4, point 7).

Pretrains with `examples/run_pretraining.py` on SignSuisse (DSGS, minus 10% of its files held out) + ASL-App (ASL),
then measures:

1. masked-reconstruction error on the held-out SignSuisse clips against linear interpolation (hidden cubelets filled
   from the visible neighbours in time) and the training corpus's mean pose, on the model's own loss;
2. few-shot recognition on MSL-150 (Mexican Sign Language, unseen in pretraining): k = 1 and 3 clips per class,
   a linear probe and 1-nearest-neighbour on frozen encoder features, against the same model at random init (the
   weights pretraining started from) and against raw keypoints; and fine-tuning, against random init.

    python experiments/transfer/transfer_eval.py --steps 1000 --seeds 0 --variants diff-0.5

Variants are `<diff|same>-<mask ratio>`, with `-hands` appended for the learned stream-type embedding
(`stream_type_embedding=True`, hand identity in the encoder; off in the paper), e.g. `diff-0.5-hands`; `-norm`
(`norm_target_loss=True`) and `-velocity` (`reconstruction_target="velocity"`) choose the reconstruction target
(issue 27). `--model-overrides` sets the model size (default: the issue's 4 x 256 prototype). Pretraining runs go to `--work-dir/runs/<variant>-seed<seed>`; a finished
run is reused and an interrupted one resumes (the script's own checkpointing). Prints a table and writes JSON.

`--jobs N` runs N of the (variant, seed) runs at once, each in its own process, and merges their reports; reports of
separate invocations (e.g. made on other machines) are merged, with a per-variant summary over seeds, by

    python experiments/transfer/transfer_eval.py --combine a.json b.json ... --output experiments/transfer/results/transfer.json

The full grid, as run for BENCHMARKS.md on one GPU:

    python experiments/transfer/transfer_eval.py --steps 1000 --save-steps 1000 --seeds 0 1 2 \
        --variants diff-0.5 same-0.5 diff-0.3 diff-0.7 --episodes 100 --ft-episodes 50 --device cuda --jobs 12
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import set_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))

from msmae import MSMAEConfig, MSMAEForPreTraining, MSMAEForSignClassification  # noqa: E402
from transfer_data import clip_paths, msl150, normalised_clips, split_signsuisse  # noqa: E402
from transfer_fewshot import (  # noqa: E402
    encoder_features,
    episodes,
    layer_features,
    fine_tune_accuracy,
    linear_probe_accuracy,
    nearest_neighbour_accuracy,
    paired_difference,
    summarize,
)
from transfer_recon import mean_pose_of, reconstruction_errors, windows  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# The prototype size: 4 x 256 encoder, 2 x 256 decoder, cubelets of 2 frames.
MODEL_OVERRIDES = (
    "hidden_size=256,num_hidden_layers=4,num_attention_heads=4,intermediate_size=1024,"
    "decoder_hidden_size=256,decoder_num_hidden_layers=2,decoder_num_attention_heads=4,decoder_intermediate_size=1024,"
    "cubelet_size=2"
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"), help="the shared data folder")
    p.add_argument("--work-dir", default="/tmp/msmae-transfer", help="split symlinks and pretraining runs (outside the repo)")
    p.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "transfer.json"))
    p.add_argument("--variants", nargs="+", default=["diff-0.5"], help="e.g. diff-0.5 same-0.5 diff-0.3 diff-0.7")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, default=1000, help="pretraining steps")
    p.add_argument("--model-overrides", default=MODEL_OVERRIDES,
                   help="the model size as config overrides (default: the issue's 4 x 256 prototype); variants add theirs")
    p.add_argument("--no-layers", action="store_true",
                   help="skip the per-layer few-shot figures (the slowest part of the evaluation on a CPU)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--window", type=int, default=64, help="frames per pretraining window (not subsampled)")
    p.add_argument("--learning-rate", type=float, default=8e-4)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--save-steps", type=int, default=100, help="checkpoint interval (for resuming and --curve-steps)")
    p.add_argument("--curve", action="store_true",
                   help="also score reconstruction and frozen-feature few-shot at every saved checkpoint")
    p.add_argument("--heldout-fraction", type=float, default=0.1)
    p.add_argument("--mask-repeats", type=int, default=4, help="seeded masks per held-out window")
    p.add_argument("--episodes", type=int, default=100, help="few-shot episodes per k for the probe and 1-NN")
    p.add_argument("--ft-episodes", type=int, default=50, help="few-shot episodes per k for fine-tuning (0: skip)")
    p.add_argument("--ft-steps", type=int, default=30)
    p.add_argument("--finetune-models", nargs="+", default=["pretrained", "random_init"],
                   choices=["pretrained", "random_init"])
    p.add_argument("--ft-learning-rate", type=float, default=1e-3)
    p.add_argument("--shots", nargs="+", type=int, default=[1, 3])
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs (variant x seed) pretrained and evaluated at once, each by its own process; then merged")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where pretraining and evaluation run; float32 on either, so figures stay comparable")
    p.add_argument("--no-pretrain", action="store_true", help="evaluate existing runs, never start pretraining")
    p.add_argument("--combine", nargs="+", metavar="[LABEL=]JSON",
                   help="merge these reports (later files win for the same run; LABEL= prefixes their run names) "
                        "into --output; no training is run")
    p.add_argument("--common-masking", nargs="+", default=["diff-0.5", "same-0.5"], metavar="VARIANT",
                   help="with --combine: also score every run's reconstruction on these variants' masks, so that runs "
                        "pretrained with different mask ratios or strategies are compared on the same hidden cubelets "
                        "('none' to skip)")
    p.add_argument("--cross-signer", metavar="FOLDER",
                   help="also score recognition on unseen signers: a dataset prepared with --split_by signer (probe "
                        "and 1-NN fitted on its train split, scored on its test split; transfer_cross_signer.py)")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="with --no-pretrain: evaluate a run's latest checkpoint when it has not finished (recorded)")
    return p.parse_args(argv)


# Variant suffixes and the config overrides they add (issue 27: the reconstruction targets).
SUFFIXES = {
    "hands": "stream_type_embedding=true",
    "norm": "norm_target_loss=true",
    "velocity": "reconstruction_target=velocity",
}


def parse_variant(variant: str, model_overrides: str = MODEL_OVERRIDES) -> tuple[str, str, str]:
    """`diff-0.5`, `diff-0.5-hands` or `diff-0.5-norm-velocity` -> (masking strategy, mask ratio, config overrides)."""
    strategy, _, rest = variant.partition("-")
    ratio, *suffixes = rest.split("-")
    try:
        float(ratio)
    except ValueError:
        suffixes = None
    if strategy not in ("diff", "same") or suffixes is None or any(x not in SUFFIXES for x in suffixes):
        raise SystemExit(f"Unknown variant {variant!r}: use <diff|same>-<mask ratio>[-hands][-norm][-velocity], "
                         "e.g. diff-0.5-hands or diff-0.5-norm.")
    return strategy, ratio, ",".join([model_overrides, *(SUFFIXES[x] for x in suffixes)])


def run_dir(args, variant, seed) -> Path:
    return Path(args.work_dir) / "runs" / f"{variant}-seed{seed}"


def pretrain_command(args, train_folder, variant, seed) -> list[str]:
    strategy, ratio, overrides = parse_variant(variant, args.model_overrides)
    return [
        sys.executable, "examples/run_pretraining.py",
        "--dataset_name", str(train_folder), str(Path(args.data_root) / "asl-app-100"),
        "--validation_split_percentage", "0",
        "--config_overrides", overrides,
        "--masking_strategy", strategy, "--mask_ratio", ratio,
        "--window_size", str(args.window), "--num_frames", str(args.window),
        "--per_device_train_batch_size", str(args.batch_size),
        "--max_steps", str(args.steps), "--warmup_steps", str(args.warmup_steps),
        "--learning_rate", str(args.learning_rate),
        "--output_dir", str(run_dir(args, variant, seed)),
        "--do_train", *(["--use_cpu"] if args.device == "cpu" else ["--bf16", "false", "--tf32", "false"]),
        "--save_strategy", "steps", "--save_steps", str(args.save_steps),
        "--logging_steps", "10", "--report_to", "none", "--seed", str(seed), "--disable_tqdm", "true",
    ]


def finished(path: Path, steps: int) -> bool:
    state = path / "trainer_state.json"
    return (path / "model.safetensors").exists() and state.exists() and json.loads(state.read_text())["global_step"] >= steps


def pretrain(args, train_folder, variant, seed) -> dict:
    out = run_dir(args, variant, seed)
    command = pretrain_command(args, train_folder, variant, seed)
    if not finished(out, args.steps):
        if args.no_pretrain and args.allow_unfinished:
            checkpoint = latest_checkpoint(out)
            if checkpoint is None:
                raise SystemExit(f"{out} has no checkpoint yet.")
            return {"command": " ".join(command), "evaluated": str(checkpoint), "finished": False,
                    **training_summary(checkpoint)}
        if args.no_pretrain:
            raise SystemExit(f"{out} has not finished {args.steps} steps; run without --no-pretrain.")
        out.parent.mkdir(parents=True, exist_ok=True)
        start = time.time()
        with open(str(out) + ".log", "a") as log:
            subprocess.run(command, cwd=REPO, check=True, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        print(f"pretrained {variant} seed {seed} in {time.time() - start:.0f} s")
    return {"command": " ".join(command), "evaluated": str(out), "finished": True, **training_summary(out)}


def latest_checkpoint(path: Path):
    checkpoints = sorted(path.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def training_summary(path: Path) -> dict:
    state = json.loads((path / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    runtime = next((e["train_runtime"] for e in state["log_history"] if "train_runtime" in e), None)
    return {"step": state["global_step"], "final_train_loss": losses[-1] if losses else None, "train_runtime_s": runtime}


def random_init(config: MSMAEConfig, seed: int) -> MSMAEForPreTraining:
    """The weights `run_pretraining.py` starts from with this seed (it seeds before building the model, on the CPU)."""
    set_seed(seed)
    return MSMAEForPreTraining(config)


def load(path, device) -> MSMAEForPreTraining:
    return MSMAEForPreTraining.from_pretrained(path).to(device)


def evaluate_run(args, path, seed, data, pieces, mean_pose, run_root):
    """Reconstruction and few-shot figures of one pretraining run against its own random init."""
    pretrained = load(path, args.device)
    config = pretrained.config
    initial = random_init(config, seed).to(args.device)
    result = {"config": {"masking_strategy": config.masking_strategy, "mask_ratio": config.mask_ratio,
                         "reconstruction_target": config.reconstruction_target,
                         "norm_target_loss": config.norm_target_loss}}
    result["reconstruction"] = reconstruction_errors(pretrained, pieces, mean_pose, repeats=args.mask_repeats)
    result["reconstruction_random_init"] = reconstruction_errors(initial, pieces, mean_pose, repeats=args.mask_repeats)["model"]
    curve = {}
    if args.curve:
        for checkpoint in sorted(Path(run_root).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            model = load(checkpoint, args.device)
            # A lighter trend than the final figures: one mask per window, the first 50 episodes.
            errors = reconstruction_errors(model, pieces, mean_pose, repeats=1)
            point = {"reconstruction": errors["model"], "interpolation": errors["interpolation"]}
            x = encoder_features(model.msmae, data[0], data[1])
            for k in args.shots:
                eps = episodes(data[2], k, min(args.episodes, 50))
                point[f"probe k={k}"] = summarize([linear_probe_accuracy(x, data[2], s, q) for s, q in eps])["mean"]
                point[f"1nn k={k}"] = summarize([nearest_neighbour_accuracy(x, data[2], s, q) for s, q in eps])["mean"]
            curve[int(checkpoint.name.split("-")[1])] = point
    result["curve"] = curve

    values, mask, labels, names = data
    features = {
        "pretrained": encoder_features(pretrained.msmae, values, mask),
        "random_init": encoder_features(initial.msmae, values, mask),
    }
    result["fewshot"] = fewshot(args, features, data, path, config, seed)
    # Where in the encoder the few-shot information sits (MAE's last layer is tuned for reconstruction).
    by_layer = {}
    for name, model in () if getattr(args, "no_layers", False) else (("pretrained", pretrained), ("random_init", initial)):
        for layer, x in enumerate(layer_features(model.msmae, values, mask)):
            for k in args.shots:
                eps = episodes(labels, k, min(args.episodes, 50))
                by_layer[f"{name}/layer{layer}/probe k={k}"] = summarize(
                    [linear_probe_accuracy(x, labels, s, q) for s, q in eps])["mean"]
                by_layer[f"{name}/layer{layer}/1nn k={k}"] = summarize(
                    [nearest_neighbour_accuracy(x, labels, s, q) for s, q in eps])["mean"]
    result["fewshot_by_layer"] = by_layer
    if getattr(args, "cross_signer", None):
        from transfer_cross_signer import cross_signer

        result["cross_signer"] = cross_signer(args.cross_signer, pretrained, initial)
    return result


def load_cache(args) -> dict:
    path = Path(args.work_dir) / "finetune_cache.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_cache(args, cache):
    # --jobs runs share this file: merge with what the others wrote, and write through a temp file of our own.
    cache.update({**load_cache(args), **cache})
    path = Path(args.work_dir) / "finetune_cache.json"
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    temp.write_text(json.dumps(cache))
    temp.replace(path)


def fewshot(args, features, data, path, config, seed):
    values, mask, labels, names = data
    cache = load_cache(args)
    # Raw keypoints: every frame flattened, and the clip's time-averaged pose (a diagnostic: how static the task is).
    features = {**features, "raw_keypoints": values.reshape(len(values), -1),
                "raw_time_mean": values.mean(1).reshape(len(values), -1)}
    out = {}
    for k in args.shots:
        eps = episodes(labels, k, args.episodes)
        acc = {f"{method}/{name}": [] for method in ("probe", "1nn") for name in features}
        for support, query in eps:
            for name, x in features.items():
                acc[f"probe/{name}"].append(linear_probe_accuracy(x, labels, support, query))
                acc[f"1nn/{name}"].append(nearest_neighbour_accuracy(x, labels, support, query))
        if args.ft_episodes:
            label_kwargs = {"num_labels": len(names), "id2label": dict(enumerate(names)),
                            "label2id": {n: i for i, n in enumerate(names)}}
            cls_config = MSMAEConfig.from_pretrained(path, **label_kwargs)
            makers = {
                "pretrained": lambda: MSMAEForSignClassification.from_pretrained(path, **label_kwargs),
                "random_init": lambda: MSMAEForSignClassification(cls_config),
            }
            # Fine-tuning is the slow part: results are cached per model, episode and recipe, so the random-init
            # runs (which do not depend on pretraining) can be computed while pretraining is still going.
            identity = {"pretrained": str(Path(path).resolve()), "random_init": f"random_init-seed{seed}"}
            for name in args.finetune_models:
                accuracies = []
                for e, (support, query) in enumerate(eps[: args.ft_episodes]):
                    key = (f"{identity[name]}|k={k}|episode={e}|steps={args.ft_steps}|lr={args.ft_learning_rate}"
                           f"|device={args.device}")
                    if key not in cache:
                        cache[key] = fine_tune_accuracy(makers[name], values, mask, labels, support, query,
                                                        steps=args.ft_steps, learning_rate=args.ft_learning_rate,
                                                        seed=seed * 1000 + e, device=args.device)
                        save_cache(args, cache)
                    accuracies.append(cache[key])
                acc[f"finetune/{name}"] = accuracies
        out[f"k={k}"] = {
            "accuracy": {key: summarize(a) for key, a in acc.items()},
            "pretrained_minus_random_init": {
                method: paired_difference(acc[f"{method}/pretrained"], acc[f"{method}/random_init"])
                for method in ("probe", "1nn", "finetune") if f"{method}/pretrained" in acc
            },
            "per_episode": acc,
        }
    return out


def table(results) -> str:
    lines = ["| run (step) | held-out MSE model / interp / mean pose (all) | hands | model vs interp |"
             " probe k=1 (pre / rand / raw) | 1-NN k=1 | probe k=3 | 1-NN k=3 | fine-tune k=1 (pre / rand) | k=3 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rec = r["reconstruction"]
        f = r["fewshot"]

        def acc(k, method, names=("pretrained", "random_init", "raw_keypoints")):
            a = f.get(f"k={k}", {}).get("accuracy", {})
            return " / ".join(f"{a[f'{method}/{n}']['mean']:.1f}" for n in names if f"{method}/{n}" in a) or "-"

        lines.append(
            f"| {name} ({r['step']}) | {rec['model']['all']:.4f} / {rec['interpolation']['all']:.4f} / {rec['mean_pose']['all']:.4f}"
            f" | {rec['model']['hands']:.4f} / {rec['interpolation']['hands']:.4f}"
            f" | {rec['interpolation']['all'] / rec['model']['all']:.2f}x"
            f" | {acc(1, 'probe')} | {acc(1, '1nn')} | {acc(3, 'probe')} | {acc(3, '1nn')}"
            f" | {acc(1, 'finetune', ('pretrained', 'random_init'))} | {acc(3, 'finetune', ('pretrained', 'random_init'))} |"
        )
    return "\n".join(lines)


def curve_table(results) -> str:
    lines = []
    for name, r in results.items():
        if not r.get("curve"):
            continue
        interp = next(iter(r["curve"].values()))["interpolation"]  # the same single mask at every checkpoint
        lines += [f"{name}: held-out MSE along pretraining, one mask per window (linear interpolation on the same "
                  f"masks: all {interp['all']:.4f}, hands {interp['hands']:.4f}), and frozen-feature few-shot accuracy "
                  "(%), first 50 episodes",
                  "| step | MSE all | MSE hands | probe k=1 | 1-NN k=1 | probe k=3 | 1-NN k=3 |", "|---|---|---|---|---|---|---|"]
        for step, point in sorted(r["curve"].items(), key=lambda item: int(item[0])):
            rec = point["reconstruction"]
            lines.append(f"| {step} | {rec['all']:.4f} | {rec['hands']:.4f} | "
                         + " | ".join(f"{point.get(key, float('nan')):.1f}" for key in ("probe k=1", "1nn k=1", "probe k=3", "1nn k=3"))
                         + " |")
    for name, r in results.items():
        by_layer = r.get("fewshot_by_layer")
        if not by_layer:
            continue
        layers = sorted({int(key.split("/")[1][5:]) for key in by_layer})
        lines += [f"{name}: frozen-feature few-shot accuracy (%) by encoder layer (0 = cubelet embeddings), first 50 episodes",
                  "| layer | probe k=1 pre / rand | 1-NN k=1 pre / rand | probe k=3 pre / rand | 1-NN k=3 pre / rand |",
                  "|---|---|---|---|---|"]
        for layer in layers:
            cells = [" / ".join(f"{by_layer[f'{m}/layer{layer}/{key}']:.1f}" for m in ("pretrained", "random_init"))
                     for key in ("probe k=1", "1nn k=1", "probe k=3", "1nn k=3")]
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variant_table(results) -> str:
    """Each variant's figures over its seeds: mean, and the spread (min..max) when there are several."""
    by_variant = {}
    for name, r in results.items():
        by_variant.setdefault(name.rsplit("-seed", 1)[0], []).append(r)

    def cell(values, fmt):
        if any(np.isnan(values)):  # e.g. a run evaluated without fine-tuning (--ft-episodes 0)
            return "-"
        if len(values) == 1:
            return format(values[0], fmt)
        return f"{format(float(np.mean(values)), fmt)} ({format(min(values), fmt)}..{format(max(values), fmt)})"

    def gain(r, k, method):
        return r["fewshot"][f"k={k}"]["pretrained_minus_random_init"].get(method, {}).get("mean", float("nan"))

    lines = ["| variant | seeds | held-out MSE all | hands | body | interp / model (all) |"
             " MSE all on DiffMask-0.5 masks | on SameMask-0.5 masks | pre - rand: probe k=1 | 1-NN k=1 | probe k=3 | 1-NN k=3 | fine-tune k=1 | fine-tune k=3 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant, runs in by_variant.items():
        rec = [r["reconstruction"] for r in runs]
        cells = [cell([x["model"][part] for x in rec], ".4f") for part in ("all", "hands", "body")]
        cells.append(cell([x["interpolation"]["all"] / x["model"]["all"] for x in rec], ".2f") + "x")
        for masking in ("diff-0.5", "same-0.5"):
            common = [r[f"reconstruction_at_{masking}"]["model"]["all"] for r in runs if f"reconstruction_at_{masking}" in r]
            cells.append(cell(common, ".4f") if len(common) == len(runs) else "-")
        for k, method in ((1, "probe"), (1, "1nn"), (3, "probe"), (3, "1nn"), (1, "finetune"), (3, "finetune")):
            cells.append(cell([gain(r, k, method) for r in runs], "+.1f"))
        lines.append(f"| {variant} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def combine(args):
    # `LABEL=path` names that report's runs `LABEL/<variant>-seed<seed>` (e.g. runs made by another commit).
    sources = [entry.split("=", 1) if "=" in entry else ("", entry) for entry in args.combine]
    reports = [json.loads(Path(path).read_text()) for _, path in sources]
    results = {}
    for (label, _), report in zip(sources, reports):
        for name, result in report["results"].items():
            name = f"{label}/{name}" if label else name
            # A result merged by an earlier --combine keeps its own command, date and environment (such a report
            # has no environment of its own).
            results[name] = {"environment": report.get("environment"), "report_command": report["command"],
                             "report_date": report["date"], **result}
    held_out = {tuple(r["heldout_signsuisse_files"]) for r in reports}
    if len(held_out) > 1:
        raise SystemExit("The reports used different held-out SignSuisse files; they cannot be compared.")
    combined = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "combined_from": list(args.combine),
        **{key: reports[0][key] for key in ("heldout_signsuisse_files", "heldout_windows", "msl150_clips")},
        "results": dict(sorted(results.items())),
    }
    common = [variant for variant in args.common_masking if variant != "none"]
    # Runs scored by an earlier --combine keep their scores (their models may be gone).
    pending = [(result, [v for v in common if f"reconstruction_at_{v}" not in result]) for result in results.values()]
    pending = [(result, missing) for result, missing in pending if missing]
    if pending:
        pieces, mean_pose = heldout_pieces(args)
        for result, missing in pending:
            model = load(result["evaluated"], args.device)
            for variant in missing:
                strategy, ratio, _ = parse_variant(variant)
                # `random_masking` reads the config when called, so this swaps the masking rule and nothing else.
                model.config.masking_strategy, model.config.mask_ratio = strategy, float(ratio)
                result[f"reconstruction_at_{variant}"] = reconstruction_errors(
                    model, pieces, mean_pose, repeats=args.mask_repeats)
    Path(args.output).write_text(json.dumps(combined, indent=1))
    print(table(combined["results"]))
    print(variant_table(combined["results"]))
    print(curve_table(combined["results"]))
    print(f"wrote {args.output}")
    return combined


def heldout_pieces(args):
    """The held-out SignSuisse windows and the pretraining corpus's mean pose."""
    train_folder, heldout_folder, _ = split_signsuisse(args.data_root, args.work_dir, args.heldout_fraction)
    train_clips = normalised_clips(clip_paths(train_folder) + clip_paths(Path(args.data_root) / "asl-app-100" / "signs"))
    mean_pose = mean_pose_of(train_clips, train_clips[0][0].shape[1])
    return windows(normalised_clips(clip_paths(heldout_folder)), args.window), mean_pose


def run_in_parallel(args, argv) -> dict:
    """One child process per (variant, seed), `--jobs` at a time, each writing its own report under
    `--work-dir/reports`; then `--combine` of those that finished. A failed run does not stop the others."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split_signsuisse(args.data_root, args.work_dir, args.heldout_fraction)  # once, before children race on symlinks
    reports = Path(args.work_dir) / "reports"
    reports.mkdir(parents=True, exist_ok=True)

    def one(variant, seed):
        output = reports / f"{variant}-seed{seed}.json"
        # argparse keeps an option's last value, so these override the parent's.
        command = [sys.executable, __file__, *argv, "--variants", variant, "--seeds", str(seed),
                   "--output", str(output), "--jobs", "1"]
        with open(reports / f"{variant}-seed{seed}.log", "w") as log:
            code = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        print(f"{variant} seed {seed}: {'done' if code == 0 else f'FAILED (exit {code}), see {log.name}'}", flush=True)
        return output if code == 0 else None

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        # Seed-major, so that a grid cut short still has every variant at the same seeds.
        outputs = list(pool.map(lambda run: one(*run), [(v, s) for s in args.seeds for v in args.variants]))
    done = [str(o) for o in outputs if o is not None]
    if not done:
        raise SystemExit(f"every run failed; see the logs in {reports}")
    combined = combine(parse_args([*argv, "--combine", *done]))
    if len(done) < len(outputs):
        raise SystemExit(f"{len(outputs) - len(done)} of {len(outputs)} runs failed; see the logs in {reports}")
    return combined


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return combine(args)
    if args.jobs > 1 and len(args.variants) * len(args.seeds) > 1:
        return run_in_parallel(args, argv)
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()
    train_folder, _, heldout_files = split_signsuisse(args.data_root, args.work_dir, args.heldout_fraction)

    runs = {}
    for variant in args.variants:
        for seed in args.seeds:
            runs[(variant, seed)] = pretrain(args, train_folder, variant, seed)

    start = time.time()
    pieces, mean_pose = heldout_pieces(args)
    data = msl150(args.data_root)
    print(f"held-out: {len(heldout_files)} files, {len(pieces)} windows; MSL-150: {len(data[2])} clips")

    results = {}
    for (variant, seed), info in runs.items():
        t = time.time()
        result = evaluate_run(args, info["evaluated"], seed, data, pieces, mean_pose, run_dir(args, variant, seed))
        results[f"{variant}-seed{seed}"] = {**info, **result, "eval_seconds": time.time() - t}
        print(f"evaluated {variant} seed {seed} in {time.time() - t:.0f} s")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "arguments": vars(args),
        "heldout_signsuisse_files": heldout_files,
        "heldout_windows": len(pieces),
        "msl150_clips": int(len(data[2])),
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "transformers": transformers.__version__, "threads": args.threads,
                        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"},
        "eval_seconds": time.time() - start,
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))
    print(table(results))
    print(variant_table(results))
    print(curve_table(results))
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()

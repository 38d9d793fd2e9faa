"""The reconstruction-target comparison of BENCHMARKS.md section 5 (issue 27) from a transfer report: per variant,
mean ± standard deviation over seeds of held-out reconstruction and frozen-feature few-shot accuracy, and the
paired differences (pretrained minus the same seed's random init; each target minus the position target at the
same seed, which shares its random init, data order, masks and episodes).

    python experiments/transfer/targets_table.py experiments/transfer/results/transfer_targets.json \
        [--token-mean --work-dir /tmp/msmae27 --window 32 --mask-repeats 2]

`--token-mean` (then `transfer_eval.py` arguments as the runs had them) also scores the held-out error of predicting
each hidden keypoint as its own token's mean: the information a normalised target's de-normalisation gives away.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

FEWSHOT = [(k, method) for k in (1, 3) for method in ("probe", "1nn")]


def by_variant(results) -> dict:
    """{variant: {seed: result}}."""
    out = {}
    for name, result in results.items():
        variant, seed = name.rsplit("-seed", 1)
        out.setdefault(variant, {})[int(seed)] = result
    return out


def accuracy(result, k, method, model):
    return result["fewshot"][f"k={k}"]["accuracy"][f"{method}/{model}"]["mean"]


def cell(values, fmt=".1f", sign=False):
    values = np.asarray(values, float)
    spec = ("+" if sign else "") + fmt
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(values.mean(), spec)} ± {format(values.std(ddof=1), fmt)}"


def tables(report, baseline="diff-0.5") -> str:
    variants = by_variant(report["results"])
    seeds = sorted(set.intersection(*(set(runs) for runs in variants.values())))
    lines = [f"Seeds {seeds}; mean ± standard deviation over seeds.", "",
             "| target | held-out MSE all | hands | body | interp / model | random init MSE |",
             "|---|---|---|---|---|---|"]
    for variant, runs in variants.items():
        rec = [runs[s]["reconstruction"] for s in seeds]
        lines.append(f"| {variant} | " + " | ".join(
            [cell([r["model"][part] for r in rec], ".4f") for part in ("all", "hands", "body")]
            + [cell([r["interpolation"]["all"] / r["model"]["all"] for r in rec], ".2f") + "x",
               cell([runs[s]["reconstruction_random_init"]["all"] for s in seeds], ".3f")]) + " |")
    lines += ["", "| target | " + " | ".join(f"{m} k={k} pre / rand" for k, m in FEWSHOT) + " |",
              "|---|" + "---|" * len(FEWSHOT)]
    for variant, runs in variants.items():
        lines.append(f"| {variant} | " + " | ".join(
            f"{cell([accuracy(runs[s], k, m, 'pretrained') for s in seeds])} / "
            f"{cell([accuracy(runs[s], k, m, 'random_init') for s in seeds])}" for k, m in FEWSHOT) + " |")
    any_run = next(iter(variants.values()))[seeds[0]]
    lines.append("| raw keypoints | " + " | ".join(f"{accuracy(any_run, k, m, 'raw_keypoints'):.1f}" for k, m in FEWSHOT) + " |")
    lines += ["", "Pretraining helps frozen features? Pretrained minus random init, paired by seed (points):", "",
              "| target | " + " | ".join(f"{m} k={k}" for k, m in FEWSHOT) + " | seeds > 0 |",
              "|---|" + "---|" * (len(FEWSHOT) + 1)]
    for variant, runs in variants.items():
        gains = {(k, m): [accuracy(runs[s], k, m, "pretrained") - accuracy(runs[s], k, m, "random_init") for s in seeds]
                 for k, m in FEWSHOT}
        positive = sum(g > 0 for values in gains.values() for g in values)
        lines.append(f"| {variant} | " + " | ".join(cell(gains[key], sign=True) for key in FEWSHOT)
                     + f" | {positive} of {len(FEWSHOT) * len(seeds)} |")
    if baseline in variants:
        lines += ["", f"Each target minus {baseline} (the position target), paired by seed:", "",
                  "| target | held-out MSE all | " + " | ".join(f"{m} k={k}" for k, m in FEWSHOT) + " |",
                  "|---|---|" + "---|" * len(FEWSHOT)]
        base = variants[baseline]
        for variant, runs in variants.items():
            if variant == baseline:
                continue
            mse = [runs[s]["reconstruction"]["model"]["all"] - base[s]["reconstruction"]["model"]["all"] for s in seeds]
            lines.append(f"| {variant} | {cell(mse, '.4f', sign=True)} | " + " | ".join(
                cell([accuracy(runs[s], k, m, "pretrained") - accuracy(base[s], k, m, "pretrained") for s in seeds], sign=True)
                for k, m in FEWSHOT) + " |")
    return "\n".join(lines)


def token_mean_baseline(report, argv) -> dict:
    """`token_mean_errors` on the held-out windows (`transfer_eval.py` arguments `argv`: --data-root, --work-dir,
    --window, --mask-repeats as the runs had them) and the report's masking rule (seeded: the same for every run)."""
    import transformers

    from msmae import MSMAEConfig, MSMAEForPreTraining
    from transfer_eval import heldout_pieces, parse_args
    from transfer_recon import token_mean_errors

    args = parse_args(argv)
    pieces, _ = heldout_pieces(args)
    transformers.utils.logging.set_verbosity_error()
    first = next(iter(report["results"].values()))
    errors = token_mean_errors(MSMAEForPreTraining(MSMAEConfig.from_pretrained(first["evaluated"])), pieces,
                               repeats=args.mask_repeats)
    if report.get("heldout_windows") not in (None, len(pieces)):
        raise SystemExit(f"{len(pieces)} held-out windows, the report has {report['heldout_windows']}: pass its --window.")
    return errors


if __name__ == "__main__":
    report = json.loads(open(sys.argv[1]).read())
    print(tables(report))
    if "--token-mean" in sys.argv:
        errors = token_mean_baseline(report, sys.argv[sys.argv.index("--token-mean") + 1 :])
        print("\nEach hidden keypoint predicted as its own token's mean (held-out MSE all / hands / body): "
              + " / ".join(f"{errors[part]:.4f}" for part in ("all", "hands", "body")))

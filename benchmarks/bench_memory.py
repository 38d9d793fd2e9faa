"""Memory benchmark: peak RSS of a pretraining step, and the data loader's memory and throughput at 1x and 10x data.

Each measurement runs in a fresh subprocess, so its peak RSS is its own. Memory is read from /proc (sampled every
10 ms by a thread, plus `ru_maxrss`) and split into anonymous memory (what the process allocated: the real cost)
and file-backed pages (memory-mapped Arrow pages the kernel can drop at any time).

The data-loader part builds a pose dataset from real SignSuisse `.pose` files with msmae's dataset builder (Arrow on
disk), and a copy 10 times larger (the same clips repeated, written as its own Arrow files), then draws the same
number of random clips from each through the pretraining pipeline: `MSMAEPoseProcessor` ("pretraining" preset),
`ClipSampler` with masking noise, `PoseCollator` and a `torch.utils.data.DataLoader` (window-level reads: a clip
reads its window's frames, `msmae.data.windows`). Memory must not grow with the dataset, and throughput is compared
with what the model consumes (clips/s of the pretraining benchmark). `bench_data.py` compares long and short
recordings and 1x/100x corpora.

    python benchmarks/bench_memory.py                            # both parts
    python benchmarks/bench_memory.py --part loader --num_workers 0,2
    python benchmarks/bench_memory.py --quick                    # tiny model, 1x/2x data
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "signsuisse"


# ---------------------------------------------------------------------------------------------------------------
# Memory readings (Linux /proc; ru_maxrss elsewhere)


def read_status(pid="self") -> dict:
    """VmRSS, RssAnon, RssFile, RssShmem in bytes (empty off Linux)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class MemorySampler(threading.Thread):
    """Samples this process's and its children's memory every `interval` seconds; keeps the peaks."""

    def __init__(self, interval=0.01):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = {"rss": 0, "anon": 0, "file": 0, "rss_with_children": 0, "anon_with_children": 0}
        self._done = threading.Event()

    def sample(self):
        own = read_status()
        rss, anon, file = own.get("VmRSS", 0), own.get("RssAnon", 0), own.get("RssFile", 0)
        total_rss, total_anon = rss, anon
        for child in _children(os.getpid()):
            status = read_status(child)
            total_rss += status.get("VmRSS", 0)
            total_anon += status.get("RssAnon", 0)
        for key, value in (("rss", rss), ("anon", anon), ("file", file), ("rss_with_children", total_rss),
                           ("anon_with_children", total_anon)):
            self.peak[key] = max(self.peak[key], value)

    def run(self):
        while not self._done.is_set():
            self.sample()
            time.sleep(self.interval)

    def stop(self) -> dict:
        self._done.set()
        self.join()
        self.sample()
        return dict(self.peak)


def max_rss_bytes() -> dict:
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        "ru_maxrss_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale,
    }


# ---------------------------------------------------------------------------------------------------------------
# Child processes


def child_step(args) -> dict:
    """Peak memory of pretraining steps (forward + backward + AdamW) at the given size."""
    import torch

    from bench_pretraining import make_batch, make_optimizer
    from msmae import MSMAEConfig, MSMAEForPreTraining

    if args.threads:
        torch.set_num_threads(args.threads)
    sampler = MemorySampler()
    sampler.start()
    after_import = read_status()
    config = MSMAEConfig(**json.loads(args.config_json))
    config._attn_implementation = args.attn_implementation
    model = MSMAEForPreTraining(config)
    model.train()
    optimizer, kind = make_optimizer(model.parameters(), "auto", "cpu")
    after_model = read_status()
    batch = make_batch(config, args.batch_size, args.frames, "cpu", 0)
    dtype = common.resolve_dtype(args.dtype)
    start = time.perf_counter()
    for _ in range(args.steps):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    peak = sampler.stop()
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "rss_after_import": after_import.get("VmRSS"),
        "rss_after_model_and_optimizer": after_model.get("VmRSS"),
        "peak": peak,
        **max_rss_bytes(),
        "parameters": parameters,
        "optimizer": kind,
        "steps": args.steps,
        "seconds": seconds,
    }


def child_loader(args) -> dict:
    """Peak memory and throughput of the pretraining data pipeline over a dataset saved with `save_to_disk`."""
    import torch
    from datasets import load_from_disk

    from msmae import MSMAEConfig
    from msmae.processing_msmae import MSMAEPoseProcessor
    from msmae.training.collator import ClipSampler, PoseCollator, clip_dataset

    torch.set_num_threads(1)
    sampler = MemorySampler()
    sampler.start()
    before = read_status()
    dataset = load_from_disk(args.dataset_dir)
    config = MSMAEConfig()
    processor = MSMAEPoseProcessor.from_preset("pretraining", streams=config.streams)
    clips = clip_dataset(dataset, ClipSampler(processor, training=True, masking=config), seed=0)
    collator = PoseCollator(processor, masking=config)
    num_clips = args.batches * args.batch_size
    # Random access over the whole dataset, the same number of clips whatever its size.
    random_sampler = torch.utils.data.RandomSampler(clips, replacement=True, num_samples=num_clips,
                                                    generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(clips, batch_size=args.batch_size, sampler=random_sampler, collate_fn=collator,
                                         num_workers=args.num_workers, persistent_workers=False)
    after_open = read_status()
    load = common.LoadSampler()
    frames = 0
    first_batch_at = None
    with load.measure() as timing:
        start = time.perf_counter()
        for batch in loader:
            if first_batch_at is None:
                first_batch_at = time.perf_counter()
            frames += int(batch["attention_mask"].sum())
        end = time.perf_counter()
    peak = sampler.stop()
    return {
        "rows": len(dataset),
        "dataset_bytes_on_disk": sum(f.stat().st_size for f in Path(args.dataset_dir).glob("*.arrow")),
        "num_workers": args.num_workers,
        "clips": num_clips,
        "frames": frames,
        "seconds": timing["seconds"],
        "first_batch_s": first_batch_at - start,
        "clips_per_s": num_clips / timing["seconds"],
        # Without worker start-up and the first batch: the rate a long training run sees.
        "steady_clips_per_s": (num_clips - args.batch_size) / (end - first_batch_at) if end > first_batch_at else None,
        # Workers' CPU time is not in this process's; with 0 workers it is the pipeline's cost per clip.
        "main_process_cpu_s": timing["cpu_s"],
        "background_cores": timing["background_cores"],
        "rss_before_open": before.get("VmRSS"),
        "rss_after_open": after_open.get("VmRSS"),
        "peak": peak,
        **max_rss_bytes(),
    }


def run_child(kind: str, extra: list[str], timeout: float) -> dict:
    command = [sys.executable, __file__, "--_child", kind, *extra]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# Datasets


def build_datasets(data_dir: Path, cache_dir: Path, scale: int) -> dict:
    """Saves the 1x dataset (msmae's folder builder over `data_dir`) and a `scale`x copy; returns their folders."""
    import datasets
    from datasets import concatenate_datasets, load_from_disk

    from msmae.data.loading import dataset_from_folder

    datasets.disable_progress_bars()
    one = cache_dir / "1x"
    big = cache_dir / f"{scale}x"
    if not (one / "dataset_info.json").exists():
        start = time.perf_counter()
        dataset = dataset_from_folder(data_dir, cache_dir=str(cache_dir / "hf-cache"))
        dataset.save_to_disk(str(one))
        print(f"built {one}: {len(dataset)} clips in {time.perf_counter() - start:.0f}s", flush=True)
    if not (big / "dataset_info.json").exists():
        dataset = load_from_disk(str(one))
        # Its own Arrow files, `scale` times the bytes: no page is shared with the 1x dataset.
        concatenate_datasets([dataset] * scale).save_to_disk(str(big))
        print(f"built {big}", flush=True)
    return {"1x": one, f"{scale}x": big}


# ---------------------------------------------------------------------------------------------------------------


def mib(value):
    return None if value is None else value / 2**20


def model_clips_per_s(path: Path | None):
    """clips/s of the first ms-mae row of a bench_pretraining JSON, or None."""
    if path is None or not path.exists():
        return None
    rows = json.loads(path.read_text()).get("rows", [])
    row = next((r for r in rows if r["variant"].startswith("ms-mae")), None)
    return None if row is None else {"clips_per_s": row["clips_per_s"], "clips_per_cpu_s": row["clips_per_s"] * row["step_s"] / row["step_cpu_s"], "file": str(path)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser, default_steps=2, default_batch_size=8)
    parser.add_argument("--part", default="all", choices=["all", "step", "loader"])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--attn_implementation", default="sdpa")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA, help="Folder of pose files (SignSuisse).")
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/msmae-bench-data"), help="Where the datasets are built.")
    parser.add_argument("--scale", type=int, default=10, help="Size of the large dataset, in copies of the small one.")
    parser.add_argument("--num_workers", default="0,2", help="Comma-separated DataLoader worker counts.")
    parser.add_argument("--batches", type=int, default=40, help="Batches drawn per loader measurement.")
    parser.add_argument("--pretraining_json", type=Path, default=common.default_output("pretraining_float32"),
                        help="bench_pretraining result giving the model's clips/s.")
    # internal: run one measurement in this (child) process and print JSON
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config_json", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--dataset_dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        if args._child == "step":
            result = child_step(args)
        else:
            args.num_workers = int(args.num_workers)
            result = child_loader(args)
        print(json.dumps(result))
        return result

    if args.quick:
        args.frames, args.batch_size, args.batches, args.scale = 64, 2, 5, 2
        config_overrides = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
                            "decoder_hidden_size": 64, "decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 4,
                            "decoder_intermediate_size": 256}
    else:
        config_overrides = {}
    result = {"benchmark": "memory", "environment": common.environment("cpu"),
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}

    if args.part in ("all", "step"):
        extra = ["--config_json", json.dumps(config_overrides), "--batch_size", str(args.batch_size), "--frames", str(args.frames),
                 "--steps", str(args.steps), "--dtype", args.dtype, "--attn_implementation", args.attn_implementation]
        if args.threads:
            extra += ["--threads", str(args.threads)]
        step = run_child("step", extra, timeout=1800)
        result["pretraining_step"] = step
        common.print_table([{
            "what": f"pretraining step, batch {args.batch_size} x {args.frames} frames, {args.dtype}",
            "parameters_M": step["parameters"] / 1e6,
            "rss_after_import_MiB": mib(step["rss_after_import"]),
            "rss_model_optimizer_MiB": mib(step["rss_after_model_and_optimizer"]),
            "peak_rss_MiB": mib(step["ru_maxrss"]),
            "peak_anon_MiB": mib(step["peak"]["anon"]),
        }], ["what", "parameters_M", "rss_after_import_MiB", "rss_model_optimizer_MiB", "peak_rss_MiB", "peak_anon_MiB"],
            title="Peak memory of a pretraining step")

    if args.part in ("all", "loader"):
        if not args.data_dir.is_dir():
            raise SystemExit(f"--data_dir {args.data_dir} is not a folder: point it at a folder of .pose files "
                             "(e.g. ../shared/data/signsuisse).")
        folders = build_datasets(args.data_dir, args.cache_dir / ("quick" if args.quick else "full"), args.scale)
        rows = []
        for workers in [int(w) for w in args.num_workers.split(",")]:
            for size, folder in folders.items():
                extra = ["--dataset_dir", str(folder), "--num_workers", str(workers), "--batch_size", str(args.batch_size),
                         "--batches", str(args.batches)]
                measured = run_child("loader", extra, timeout=1800)
                rows.append({"dataset": size, **measured})
                print(f"loader {size} workers={workers}: {measured['steady_clips_per_s']:.1f} clips/s, "
                      f"peak anon {mib(measured['peak']['anon_with_children']):.0f} MiB", flush=True)
        model = model_clips_per_s(args.pretraining_json)
        for row in rows:
            row["dataset_MiB"] = mib(row["dataset_bytes_on_disk"])
            row["peak_rss_MiB"] = mib(row["peak"]["rss_with_children"])
            row["peak_anon_MiB"] = mib(row["peak"]["anon_with_children"])
            row["peak_file_MiB"] = mib(row["peak"]["file"])
            row["clips_per_main_cpu_s"] = row["clips"] / row["main_process_cpu_s"] if row["num_workers"] == 0 else None
            if model:
                row["x_model_clips_per_s"] = row["steady_clips_per_s"] / model["clips_per_s"]
                if row["clips_per_main_cpu_s"]:
                    # Per CPU-second of each: the comparison that other processes on the machine do not skew.
                    row["x_model_clips_per_cpu_s"] = row["clips_per_main_cpu_s"] / model["clips_per_cpu_s"]
        result["loader"] = rows
        result["model_consumption"] = model
        common.print_table(rows, ["dataset", "rows", "dataset_MiB", "num_workers", "clips", "clips_per_s", "steady_clips_per_s", "clips_per_main_cpu_s",
                                  "x_model_clips_per_s", "x_model_clips_per_cpu_s", "peak_rss_MiB", "peak_anon_MiB", "peak_file_MiB", "background_cores"],
                           title=f"Data loader (pretraining preset, batch {args.batch_size}, {args.batches} random batches)")
        if model:
            print(f"model consumes {model['clips_per_s']:.2f} clips/s ({model['file']})")
    common.write_json(args.output or common.default_output(f"memory{'_quick' if args.quick else ''}"), result)
    return result


if __name__ == "__main__":
    main()

"""The prepared GPU check (run through benchmarks/gpu_check.sh): one JSON with what a GPU session must measure.

1. peak: the best bf16 matmul FLOP/s of this run (square matmuls, three layouts), the MFU denominator;
2. step: the paper-size pretraining step (forward + backward + fused AdamW) in bf16 autocast at batch 64 x 300
   frames, eager SDPA and `torch.compile(fullgraph=True)`: clips/s, MFU (analytic FLOPs, bench_pretraining.py),
   peak GPU memory, compile seconds;
3. loop: the real training loop (the pretraining recipe: Trainer, clip dataset, collator, default loader workers)
   on synthetic clips, clips/s after its warm-up, against the eager bare step's;
4. latency: recognition of one 64-frame clip (MSMAEForSignClassification forward, batch 1, bf16);
5. ddp: with two or more GPUs, the bare step under DDP on 2 GPUs (torchrun), clips/s and scaling vs 1 GPU.

Targets (issue 22): MFU >= 0.55 at batch 64 (bf16), loop >= 0.9 x step. `--device cpu --smoke` runs the same code
paths on a tiny model in under a minute (compiling with the "eager" backend: dynamo's tracing without inductor's
minutes of code generation; DDP over gloo with 2 CPU processes); its figures mean nothing.

    benchmarks/gpu_check.sh --output gpu_check.json
    benchmarks/gpu_check.sh --device cpu --smoke --output /tmp/gpu_check_smoke.json
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_pretraining as bench  # noqa: E402
import common  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"mfu_bf16_batch64": 0.55, "loop_vs_step": 0.9}
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32,
            decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64)


def settings(args) -> dict:
    if args.smoke:
        return {"batch": 2, "frames": 24, "window": 48, "steps": 3, "warmup": 1, "peak_size": 256, "clips": 16,
                "latency_repeats": 3, "config": TINY}
    return {"batch": args.batch_size, "frames": 300, "window": 600, "steps": args.steps, "warmup": 2,
            "peak_size": 8192, "clips": 4 * args.batch_size, "latency_repeats": 30, "config": {}}


def matmul_peak(device, size) -> dict:
    samples = common.matmul_flops_per_second(torch.bfloat16, device, size=size, repeats=3)
    return {"bf16_flops_per_s": max(s["flops_per_s"] for s in samples), "size": size}


def make_variant(config, device, batch, frames, compiled, smoke):
    namespace = argparse.Namespace(seed=0, dtype_value=torch.bfloat16, batch_size=batch, frames=frames)
    variant = bench.Variant("sdpa" + (" compiled" if compiled else ""), config, namespace, device, "sdpa",
                            naive=False, compile_model=False, fused="auto")
    if compiled:
        variant.forward = torch.compile(variant.module, fullgraph=True, backend="eager" if smoke else "inductor")
    return variant


def time_step(variant, batch, steps, warmup) -> dict:
    """Median seconds of `steps` bare steps after `warmup` (the first includes compiling)."""
    start = time.perf_counter()
    variant.step(batch)
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        variant.step(batch)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        variant.step(batch)
        times.append(time.perf_counter() - start)
    return {"first_step_s": first, "step_s": statistics.median(times), "all_step_s": times}


def step_part(config, device, s, smoke, peak) -> dict:
    results = {}
    batch = bench.make_batch(config, s["batch"], s["frames"], device, seed=0)
    for compiled in (False, True):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        variant = make_variant(config, device, s["batch"], s["frames"], compiled, smoke)
        timing = time_step(variant, batch, s["steps"], s["warmup"])
        row = {
            "batch": s["batch"], "frames": s["frames"], "dtype": "bfloat16", "attention": "sdpa", **timing,
            "clips_per_s": s["batch"] / timing["step_s"], "tflop_per_step": variant.flops / 1e12,
            "mfu": variant.flops / timing["step_s"] / peak["bf16_flops_per_s"],
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        }
        if compiled:
            row["compile_s"] = timing["first_step_s"]
        results["compiled" if compiled else "eager"] = row
        del variant
    return results


class StepClock:
    """A Trainer callback timing the optimizer steps after the warm-up ones (the device synchronised)."""

    def __init__(self, device, warmup):
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                common.synchronize(device)
                if state.global_step == warmup:
                    clock.start = time.perf_counter()
                clock.end, clock.last = time.perf_counter(), state.global_step

        self.callback, self.start, self.end, self.last, self.warmup = Callback(), None, None, 0, warmup

    def steps_per_s(self):
        return (self.last - self.warmup) / (self.end - self.start)


def loop_part(config_values, device, s, smoke, workdir: Path) -> dict:
    """The pretraining recipe itself on synthetic clips; clips/s measured by a callback after the warm-up."""
    import msmae.recipes.pretraining as recipe
    from msmae.training.synthetic import synthetic_pretraining_dataset

    data = workdir / "clips"
    # Clips of 12-14 signs (about 550-900 frames): nearly every window is full, and each batch has the bare step's shape.
    synthetic_pretraining_dataset(num_clips=s["clips"], signs_per_clip=(12, 14), seed=0,
                                  cache_dir=str(workdir / "cache")).save_to_disk(str(data))
    clock = StepClock(device, s["warmup"])
    base = recipe.GlobalMeanTrainer

    class TimedTrainer(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(clock.callback)

    overrides = ",".join(f"{k}={v}" for k, v in config_values.items())
    arguments = ["--dataset_name", str(data), "--output_dir", str(workdir / "run"), "--do_train",
                 "--max_steps", str(s["warmup"] + s["steps"]), "--per_device_train_batch_size", str(s["batch"]),
                 "--window_size", str(s["window"]), "--num_frames", str(s["frames"]), "--warmup_steps", "1",
                 "--validation_split_percentage", "0", "--save_strategy", "no", "--report_to", "none",
                 "--disable_tqdm", "true", "--logging_steps", "1000", "--dataloader_drop_last", "true", "--bf16", "true"]
    arguments += ["--config_overrides", overrides] if overrides else []
    arguments += ["--use_cpu"] if device.type == "cpu" else []
    recipe.GlobalMeanTrainer = TimedTrainer
    try:
        recipe.main(arguments)
    finally:
        recipe.GlobalMeanTrainer = base
    from msmae.training.arguments import loader_defaults

    workers = loader_defaults().get("dataloader_num_workers", 0) if device.type == "cuda" else 0
    return {"clips_per_s": clock.steps_per_s() * s["batch"], "timed_steps": clock.last - s["warmup"],
            "dataloader_num_workers": workers, "clips_in_dataset": s["clips"]}


def latency_part(config_values, device, s) -> dict:
    from msmae import MSMAEConfig, MSMAEForSignClassification

    config = MSMAEConfig(**config_values, num_labels=1000)
    model = MSMAEForSignClassification(config).to(device).eval()
    clip = bench.make_batch(config, 1, 64, device, seed=1)
    times = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        for i in range(s["latency_repeats"] + 3):
            common.synchronize(device)
            start = time.perf_counter()
            model(**clip).logits.argmax(-1)
            common.synchronize(device)
            if i >= 3:  # warm-up: kernels chosen, memory pooled
                times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * sorted(times)[int(0.9 * (len(times) - 1))],
            "frames": 64, "batch": 1, "dtype": "bfloat16", "what": "MSMAEForSignClassification forward + argmax"}


def ddp_worker(args):
    """One process of the DDP measurement (started by torchrun): the bare eager step, DDP-wrapped."""
    import torch.distributed as dist

    s = settings(args)
    backend = "nccl" if args.device == "cuda" else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if args.device == "cuda" else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    config = bench.MSMAEConfig(**s["config"])
    variant = make_variant(config, device, s["batch"], s["frames"], compiled=False, smoke=args.smoke)
    variant.forward = torch.nn.parallel.DistributedDataParallel(
        variant.module, device_ids=[device.index] if device.type == "cuda" else None)
    batch = bench.make_batch(config, s["batch"], s["frames"], device, seed=rank)
    timing = time_step(variant, batch, s["steps"], s["warmup"])
    step = torch.tensor([timing["step_s"]], device=device)
    dist.all_reduce(step, op=dist.ReduceOp.MAX)  # the slowest process sets the pace
    if rank == 0:
        Path(args.ddp_output).write_text(json.dumps({
            "processes": dist.get_world_size(), "step_s": step.item(),
            "clips_per_s": dist.get_world_size() * s["batch"] / step.item()}))
    dist.destroy_process_group()


def ddp_part(args, device, single_clips_per_s, workdir: Path, timeout) -> dict:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and gpus < 2:
        return {"skipped": f"{gpus} GPU: DDP scaling needs two"}
    if device.type != "cuda" and not args.smoke:
        return {"skipped": "DDP scaling is measured on GPUs (or exercised with --smoke)"}
    output = workdir / "ddp.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), __file__, "--ddp_worker", "--ddp_output", str(output),
               "--device", device.type, "--batch_size", str(args.batch_size), "--steps", str(args.steps)]
    command += ["--smoke"] if args.smoke else []
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if result.returncode != 0:
        return {"error": (result.stdout + result.stderr)[-2000:]}
    measured = json.loads(output.read_text())
    measured["scaling_vs_one"] = measured["clips_per_s"] / single_clips_per_s
    measured["efficiency"] = measured["scaling_vs_one"] / measured["processes"]
    return measured


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--smoke", action="store_true", help="Tiny model and batch: the code paths, no figures.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per measurement.")
    parser.add_argument("--output", default=str(common.default_output("gpu_check")))
    parser.add_argument("--ddp_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ddp_output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("No CUDA GPU here: run with --device cpu --smoke to check the code paths.")
    started = time.perf_counter()
    device = torch.device(args.device)
    s = settings(args)
    config = bench.MSMAEConfig(**s["config"])
    report = {"environment": common.environment(device), "smoke": args.smoke, "targets": TARGETS}
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        report["peak"] = matmul_peak(device, s["peak_size"])
        report["step"] = step_part(config, device, s, args.smoke, report["peak"])
        report["loop"] = loop_part(s["config"], device, s, args.smoke, workdir)
        report["loop"]["vs_eager_step"] = report["loop"]["clips_per_s"] / report["step"]["eager"]["clips_per_s"]
        report["latency"] = latency_part(s["config"], device, s)
        report["ddp"] = ddp_part(args, device, report["step"]["eager"]["clips_per_s"], workdir, timeout=180)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best_mfu = max(report["step"][k]["mfu"] for k in ("eager", "compiled"))
    report["verdict"] = {
        "mfu_bf16_batch64": best_mfu, "mfu_target_met": best_mfu >= TARGETS["mfu_bf16_batch64"],
        "loop_vs_step": report["loop"]["vs_eager_step"],
        "loop_target_met": report["loop"]["vs_eager_step"] >= TARGETS["loop_vs_step"],
    }
    report["wall_s"] = time.perf_counter() - started
    common.write_json(args.output, report)
    print(json.dumps(report["verdict"]))


if __name__ == "__main__":
    main()

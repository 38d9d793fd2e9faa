"""Helpers shared by the benchmark scripts: background-load sampling, matmul peak, timing, JSON and tables.

Benchmarks on a shared machine are noisy, so every timed region records how much CPU other processes used
while it ran (from /proc/stat minus this process's own ticks). Regions where that background load exceeds a
threshold are marked contaminated and left out of the summary figures, and figures are reported as ratios
measured in the same run.
"""

import datetime
import json
import os
import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import torch


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _system_busy_ticks() -> int | None:
    """Busy ticks of all CPUs (everything but idle and iowait), or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already included in user/nice
    return sum(fields[:8]) - idle


def _own_ticks() -> int:
    """CPU ticks used by this process (all threads) and its reaped children."""
    times = os.times()
    return round((times.user + times.system + times.children_user + times.children_system) * CLOCK_TICKS)


class LoadSampler:
    """Measures a region's wall time, its own CPU use and the other processes' CPU use (in cores)."""

    def __init__(self, extra_pids=()):
        self.extra_pids = list(extra_pids)

    def _pid_ticks(self) -> int:
        total = 0
        for pid in self.extra_pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                total += int(parts[11]) + int(parts[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total

    @contextmanager
    def measure(self):
        result = {}
        busy0, own0, pid0 = _system_busy_ticks(), _own_ticks(), self._pid_ticks()
        cpu0 = time.process_time()
        start = time.perf_counter()
        try:
            yield result
        finally:
            wall = time.perf_counter() - start
            # CPU time of this process (all its threads): with one thread it is the compute time whatever
            # else runs, which makes it the contention-robust measure on a shared machine.
            result["cpu_s"] = time.process_time() - cpu0
            busy1, own1, pid1 = _system_busy_ticks(), _own_ticks(), self._pid_ticks()
            result["seconds"] = wall
            own = (own1 - own0) + (pid1 - pid0)
            result["own_cores"] = own / CLOCK_TICKS / wall if wall > 0 else 0.0
            if busy0 is None or busy1 is None:
                result["background_cores"] = None
            else:
                other = max((busy1 - busy0) - own, 0)
                result["background_cores"] = other / CLOCK_TICKS / wall if wall > 0 else 0.0


def is_clean(sample: dict, max_background: float) -> bool:
    load = sample.get("background_cores")
    return load is None or load <= max_background


def summarize(samples: list[dict], max_background: float) -> dict:
    """Median time over clean samples (all samples, flagged, when none is clean)."""
    clean = [s for s in samples if is_clean(s, max_background)]
    used = clean or samples
    times = [s["seconds"] for s in used]
    cpu_times = [s["cpu_s"] for s in samples if "cpu_s" in s]
    loads = [s["background_cores"] for s in samples if s.get("background_cores") is not None]
    return {
        "median_s": statistics.median(times) if times else None,
        "min_s": min(times) if times else None,
        "median_cpu_s": statistics.median(cpu_times) if cpu_times else None,
        "samples": len(samples),
        "clean_samples": len(clean),
        "contaminated": not clean,
        "background_cores_mean": statistics.fmean(loads) if loads else None,
        "background_cores_max": max(loads) if loads else None,
        "all_seconds": [round(s["seconds"], 4) for s in samples],
        "all_background_cores": [None if s.get("background_cores") is None else round(s["background_cores"], 3) for s in samples],
    }


def synchronize(device: torch.device | str):
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


MATMUL_LAYOUTS = {
    "nn": lambda a, b: a @ b,
    "nt": lambda a, b: a @ b.T,
    "tn": lambda a, b: a.T @ b,
}


def matmul_flops_per_second(dtype: torch.dtype, device="cpu", size: int = 2048, repeats: int = 1, sampler=None,
                            layouts=("nn", "nt", "tn")) -> list[dict]:
    """Times square matmuls of `size` in each operand layout; each sample gets its FLOP/s and background load.

    Layouts matter where a dtype has no native kernel: on CPUs without AVX512-BF16/AMX, PyTorch's bf16 GEMM speed
    differs by an order of magnitude between layouts, so the peak is the best layout's.
    """
    sampler = sampler or LoadSampler()
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    samples = []
    for layout in layouts:
        matmul = MATMUL_LAYOUTS[layout]
        matmul(a, b)  # warm-up
        synchronize(device)
        for _ in range(repeats):
            with sampler.measure() as sample:
                matmul(a, b)
                synchronize(device)
            sample["layout"] = layout
            sample["flops_per_s"] = 2 * size**3 / sample["seconds"]
            sample["flops_per_cpu_s"] = 2 * size**3 / max(sample["cpu_s"], 1e-9)
            samples.append(sample)
    return samples


def peak_from_samples(samples: list[dict], max_background: float) -> dict:
    """Best FLOP/s of the clean matmul samples (of all, flagged, when none is clean)."""
    clean = [s for s in samples if is_clean(s, max_background)]
    used = clean or samples
    by_layout = {}
    for s in used:
        by_layout[s.get("layout", "nn")] = max(by_layout.get(s.get("layout", "nn"), 0.0), s["flops_per_s"])
    return {
        "flops_per_s": max(s["flops_per_s"] for s in used),
        "flops_per_s_by_layout": by_layout,
        # CPU time needs no clean samples: it counts only the time this process ran.
        "flops_per_cpu_s": max(s["flops_per_cpu_s"] for s in samples),
        "samples": len(samples),
        "clean_samples": len(clean),
        "contaminated": not clean,
    }


def environment(device) -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["loadavg"] = os.getloadavg()
    except OSError:
        pass
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    return torch.device(name)


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"--dtype must be one of {sorted(DTYPES)}, got {name!r}.")
    return DTYPES[name]


def write_json(path: str | os.PathLike, payload: dict):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    print(f"wrote {path}")


def _jsonable(value):
    if isinstance(value, (torch.dtype, torch.device, Path)):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_table(rows: list[dict], columns: list[str], title: str | None = None):
    """Prints rows as a Markdown table (pasteable into BENCHMARKS.md)."""
    if title:
        print(f"\n{title}")
    cells = [[_format(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def add_common_arguments(parser, default_steps: int, default_batch_size: int):
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, mps or auto (cuda when available).")
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16 (autocast) or float16 (autocast, GPU).")
    parser.add_argument("--steps", type=int, default=default_steps, help="Timed iterations per variant.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed iterations per variant first.")
    parser.add_argument("--batch_size", type=int, default=default_batch_size)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice).")
    parser.add_argument(
        "--max_background", type=float, default=0.25,
        help="A timed step is contaminated, and left out of the medians, when other processes used more than "
        "this many CPU cores on average during it.",
    )
    parser.add_argument("--quick", action="store_true", help="A small configuration that runs in seconds (smoke test).")
    parser.add_argument("--output", default=None, help="JSON file to write (default: benchmarks/results/<name>.json).")
    parser.add_argument("--seed", type=int, default=0)


def default_output(name: str) -> Path:
    return Path(__file__).resolve().parent / "results" / f"{name}.json"

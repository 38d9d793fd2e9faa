"""Import cost: CPU seconds of a fresh process that runs `msmae --help`, `import msmae`, `import msmae.pose_io`, or
builds the first model (the paper-size `MSMAEForPreTraining`, imports included), against a bare interpreter.

CPU is the process's user + system time (`resource.getrusage(RUSAGE_CHILDREN)`, all threads), which a busy machine
inflates far less than wall time; each command runs `--repeats` times and the median is reported. `--ref COMMIT`
measures the same commands on another commit too (a temporary git worktree put first on PYTHONPATH), for a before/after
comparison in one run.

    python benchmarks/bench_import.py                        # this checkout
    python benchmarks/bench_import.py --ref df4b751          # and the commit before the lazy package
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS = {
    "python (bare interpreter)": "pass",
    "msmae --help": None,  # the console script
    "import msmae": "import msmae",
    "import msmae.pose_io": "import msmae.pose_io",
    "first model construction": "import msmae; msmae.MSMAEForPreTraining(msmae.MSMAEConfig())",
}


def _command(code):
    if code is not None:
        return [sys.executable, "-c", code]
    script = Path(sys.executable).with_name("msmae")  # what `pip install msmae` puts on PATH
    return [str(script), "--help"] if script.exists() else [sys.executable, "-m", "msmae.cli", "--help"]


def measure(command, env, repeats):
    """[(cpu seconds, wall seconds)] of `repeats` fresh runs of `command`."""
    runs = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
        runs.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall))
    return runs


def run_all(src, repeats):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    check = subprocess.run([sys.executable, "-c", "import msmae; print(msmae.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not check.startswith(str(src)):
        raise RuntimeError(f"msmae resolved to {check}, not under {src}")
    results = {}
    for name, code in COMMANDS.items():
        runs = measure(_command(code), env, repeats)
        results[name] = {"cpu_seconds_median": statistics.median(c for c, _ in runs),
                         "cpu_seconds_min": min(c for c, _ in runs),
                         "wall_seconds_median": statistics.median(w for _, w in runs), "runs": runs}
        print(f"  {name:28s} CPU {results[name]['cpu_seconds_median']:6.2f} s (min {results[name]['cpu_seconds_min']:.2f})"
              f"   wall {results[name]['wall_seconds_median']:6.2f} s", flush=True)
    return results


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref", default=None, help="also measure this git commit (e.g. the one before a change)")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "import.json"))
    args = parser.parse_args()
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_name(),
              "cpus": os.cpu_count(), "python": platform.python_version(), "repeats": args.repeats, "results": {}}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    print(f"this checkout ({commit.strip()}, working tree):")
    report["results"]["current"] = run_all(REPO / "src", args.repeats)
    if args.ref:
        worktree = Path(tempfile.mkdtemp(prefix="msmae-ref-"))
        try:
            subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.ref], cwd=REPO, check=True,
                           capture_output=True)
            print(f"{args.ref}:")
            report["results"][args.ref] = run_all(worktree / "src", args.repeats)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, capture_output=True)
            shutil.rmtree(worktree, ignore_errors=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

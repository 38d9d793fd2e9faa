"""Pose-extraction throughput: `msmae extract` (1 and 2 workers) against a bare MediaPipe loop over the same videos.

The bare loop is the canonical MediaPipe recipe: for each video, `with Holistic(model_complexity=1) as h:` and
`h.process(rgb)` for every decoded frame, nothing kept. It runs with PyAV decoding (the decoder `msmae` uses) and
with OpenCV's `VideoCapture` + `cvtColor`; the target compares ours with the faster of the two. "2 workers" is
`run_extraction(num_workers=2)` against two bare processes side by side, each given half the videos.

Every variant runs in a fresh interpreter. Throughput = frames / (first video's start .. last video's end, over
all processes), so interpreter start-up and imports are left out for both sides (`msmae` imports torch and
transformers, the bare loop only MediaPipe); end-to-end seconds (process start to exit) are reported beside it.
Ours includes everything per video: decoding, Holistic, the landmark copy and the atomic Parquet write.
Variants are interleaved round by round; each run records other processes' CPU use from /proc/stat. On a shared
machine, wall-clock throughput follows the background load; frames per CPU-second (CPU time of all threads of the
processes doing the work, over the same span) is the steadier figure of the work done per frame.

    python benchmarks/bench_extraction.py                               # the 5 MSL-150 videos (1280x720), 2 rounds
    python benchmarks/bench_extraction.py --videos ../shared/data/pose-format-samples/test_video.mp4 --repeat 4
    python benchmarks/bench_extraction.py --quick                       # one short video, one round
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

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("MSMAE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


# ---- child processes (kept free of heavy imports so that bare start-up stays bare) -------------------------------


def bare_child(videos, decoder, report):
    import mediapipe as mp

    if decoder == "av":
        import av

        def frames(path):
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")
    else:
        import cv2

        def frames(path):
            capture = cv2.VideoCapture(path)
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            capture.release()

    count, start, cpu = 0, time.time(), time.process_time()
    for path in videos:
        with mp.solutions.holistic.Holistic(model_complexity=1) as holistic:
            for image in frames(path):
                holistic.process(image)
                count += 1
    Path(report).write_text(json.dumps({"frames": count, "start": start, "end": time.time(),
                                        "cpu_seconds": time.process_time() - cpu}))


def ours_child(videos, num_workers, output_dir, report):
    from msmae.data.extract import run_extraction

    summary = run_extraction(videos, output_dir, num_workers=num_workers, progress=False, quiet=True)
    if summary.num_extracted != len(videos):
        raise SystemExit(f"only {summary.num_extracted} of {len(videos)} videos extracted: {summary.failures}")
    Path(report).write_text(json.dumps({"frames": summary.num_frames, "processing_seconds": summary.processing_seconds,
                                        "cpu_seconds": summary.cpu_seconds, "run_seconds": summary.seconds}))


# ---- the parent ---------------------------------------------------------------------------------------------------


def _child(*args):
    # A session of its own: its processes (fork-server workers included) are found by session id.
    return subprocess.Popen([sys.executable, __file__, "--_child", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


class RunLoad:
    """Wall time of a run and the CPU use of everything else on the machine meanwhile, in cores.

    Other processes' CPU = all CPUs' busy ticks (/proc/stat) minus this script's and the run's processes' ticks.
    The run's processes are found by session id and sampled while they live, since fork-server workers are
    grandchildren that are never reaped here (their CPU would otherwise count as background)."""

    def __init__(self, interval=0.2):
        self.interval = interval

    def _scan(self, sessions, ticks):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) in sessions:  # fields after "(comm)": state ppid pgrp session ... utime stime
                ticks[entry.name] = int(fields[11]) + int(fields[12])

    def run(self, launch):
        import threading

        import common

        ticks, done = {}, threading.Event()
        busy0, own0 = common._system_busy_ticks(), os.times()
        start = time.perf_counter()
        children = launch()
        sessions = {child.pid for child in children}

        def sample():
            while not done.wait(self.interval):
                self._scan(sessions, ticks)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _wait(children)
        finally:
            done.set()
            sampler.join()
        wall = time.perf_counter() - start
        busy1, own1 = common._system_busy_ticks(), os.times()
        own = (own1.user + own1.system - own0.user - own0.system) * common.CLOCK_TICKS + sum(ticks.values())
        background = max(busy1 - busy0 - own, 0) / common.CLOCK_TICKS / wall
        return {"seconds": wall, "own_cores": own / common.CLOCK_TICKS / wall, "background_cores": background}


def _wait(processes):
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"benchmark child failed ({process.returncode}):\n{err[-3000:]}")


def run_bare(videos, processes, decoder, workdir, load):
    reports = [workdir / f"bare-{decoder}-{i}.json" for i in range(processes)]
    sample = load.run(lambda: [_child("bare", decoder, r, *videos[i::processes]) for i, r in enumerate(reports)])
    parts = [json.loads(r.read_text()) for r in reports]
    frames = sum(p["frames"] for p in parts)
    span = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    cpu = sum(p["cpu_seconds"] for p in parts)
    return {"frames": frames, "frames_per_s": frames / span, "frames_per_cpu_s": frames / cpu, "processing_s": span,
            **sample}


def run_ours(videos, workers, workdir, load):
    report, output_dir = workdir / f"ours-{workers}.json", workdir / f"out-{workers}"
    shutil.rmtree(output_dir, ignore_errors=True)
    sample = load.run(lambda: [_child("ours", workers, output_dir, report, *videos)])
    part = json.loads(report.read_text())
    return {"frames": part["frames"], "frames_per_s": part["frames"] / part["processing_seconds"],
            "frames_per_cpu_s": part["frames"] / part["cpu_seconds"], "processing_s": part["processing_seconds"],
            **sample}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        kind, *rest = sys.argv[2:]
        if kind == "bare":
            decoder, report, *videos = rest
            return bare_child(videos, decoder, report)
        workers, output_dir, report, *videos = rest
        return ours_child(videos, int(workers), output_dir, report)

    sys.path.insert(0, str(HERE))
    import common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="+", default=None,
                        help="videos to extract (default: the 5 MSL-150 source videos, 1280x720)")
    parser.add_argument("--repeat", type=int, default=1, help="copies of each video (more frames per run)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every variant")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--decoders", default="av,cv2", help="bare-loop decoders: av (PyAV), cv2 (OpenCV)")
    parser.add_argument("--max_background", type=float, default=0.25,
                        help="runs where other processes used more CPU cores than this are flagged contaminated")
    parser.add_argument("--quick", action="store_true", help="one short video, one round (smoke test)")
    parser.add_argument("--output", default=None, help="JSON file (default: benchmarks/results/extraction.json)")
    args = parser.parse_args()

    if args.quick:
        args.videos = args.videos or [str(SHARED / "pose-format-samples" / "test_video.mp4")]
        args.rounds, args.decoders = 1, "av"
    sources = [Path(v) for v in (args.videos or sorted((SHARED / "msl150" / "data" / "original_source").glob("*.mp4")))]
    missing = [str(v) for v in sources if not v.is_file()]
    if not sources or missing:
        parser.error(f"videos not found: {missing or 'none given'} (set MSMAE_SHARED_DATA or pass --videos)")
    workers = [int(w) for w in args.workers.split(",")]
    decoders = args.decoders.split(",")

    workdir = Path(tempfile.mkdtemp(prefix="msmae-bench-extraction-"))
    videos = []  # distinct files, so that msmae extracts every copy
    for copy in range(args.repeat):
        for source in sources:
            target = workdir / "videos" / f"{copy}-{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            videos.append(str(target))

    load = RunLoad()
    results = {f"bare-{d}-{n}": [] for n in workers for d in decoders} | {f"ours-{n}": [] for n in workers}
    try:
        for round_ in range(args.rounds):
            for n in workers:
                order = [f"bare-{d}-{n}" for d in decoders] + [f"ours-{n}"]
                for name in order if round_ % 2 == 0 else order[::-1]:  # alternate to even out drift
                    if name.startswith("ours"):
                        sample = run_ours(videos, n, workdir, load)
                    else:
                        sample = run_bare(videos, n, name.split("-")[1], workdir, load)
                    results[name].append(sample)
                    print(f"round {round_ + 1} {name}: {sample['frames']} frames, {sample['frames_per_s']:.2f} "
                          f"frames/s, {sample['frames_per_cpu_s']:.2f} frames/CPU-s, end to end "
                          f"{sample['seconds']:.1f} s, background {sample['background_cores']:.2f} cores", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows, summary = [], {}
    for name, samples in results.items():
        clean = [s for s in samples if common.is_clean(s, args.max_background)]
        used = clean or samples
        summary[name] = {
            "frames_per_s": statistics.median(s["frames_per_s"] for s in used),
            "frames_per_cpu_s": statistics.median(s["frames_per_cpu_s"] for s in used),
            "end_to_end_s": statistics.median(s["seconds"] for s in used),
            "frames": samples[0]["frames"],
            "clean_runs": len(clean), "runs": len(samples),
            "background_cores_mean": statistics.fmean(s["background_cores"] or 0 for s in samples),
            "samples": samples,
        }
    for n in workers:
        bare = [f"bare-{d}-{n}" for d in decoders]
        ours = summary[f"ours-{n}"]
        for metric in ("frames_per_s", "frames_per_cpu_s"):
            # Paired by round (ours against the best bare loop of the same round): background load drifts slowly,
            # so neighbours in time share it.
            ratios = [results[f"ours-{n}"][r][metric] / max(results[b][r][metric] for b in bare)
                      for r in range(args.rounds)]
            ours[f"{metric}_vs_best_bare"] = statistics.median(ratios)
            ours[f"{metric}_vs_best_bare_per_round"] = ratios
        for name in bare + [f"ours-{n}"]:
            entry = summary[name]
            rows.append({"variant": name, "processes": n, "frames": entry["frames"],
                         "frames/s": entry["frames_per_s"], "vs best bare": entry.get("frames_per_s_vs_best_bare"),
                         "frames/CPU-s": entry["frames_per_cpu_s"],
                         "CPU vs best bare": entry.get("frames_per_cpu_s_vs_best_bare"),
                         "end-to-end s": entry["end_to_end_s"], "clean runs": f"{entry['clean_runs']}/{entry['runs']}",
                         "background cores": entry["background_cores_mean"]})
    common.print_table(rows, list(rows[0]), title=f"Extraction throughput ({len(videos)} videos, "
                                                   f"{summary[f'ours-{workers[0]}']['frames']} frames per run; "
                                                   "ratios: median over rounds of ours / best bare of the round)")
    for n in workers:
        ours = summary[f"ours-{n}"]
        ratio = ours["frames_per_s_vs_best_bare"]
        noisy = "" if ours["clean_runs"] else " (every run had background load: see frames/CPU-s)"
        rounds = ", ".join(f"{r:.2f}" for r in ours["frames_per_s_vs_best_bare_per_round"])
        print(f"{n} worker(s): {ratio:.3f}x the best bare loop's frames/s (rounds: {rounds}), "
              f"{'meets' if ratio >= 0.95 else 'misses'} the 0.95x target{noisy}; CPU efficiency "
              f"{ours['frames_per_cpu_s_vs_best_bare']:.3f}x")
    if len(workers) > 1 and 1 in workers:
        scale = summary[f"ours-{max(workers)}"]["frames_per_s"] / summary["ours-1"]["frames_per_s"]
        print(f"scaling ours 1 -> {max(workers)} workers: {scale:.2f}x on {os.cpu_count()} logical CPUs")

    import mediapipe

    common.write_json(args.output or common.default_output("extraction"), {
        "benchmark": "extraction", "command": " ".join(sys.argv),
        "environment": {**common.environment("cpu"), "mediapipe": mediapipe.__version__},
        "videos": [str(s) for s in sources], "repeat": args.repeat, "rounds": args.rounds,
        "max_background": args.max_background, "results": summary,
    })


if __name__ == "__main__":
    main()

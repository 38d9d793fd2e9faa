"""Extraction engines side by side: `run_extraction(engine="local")` (the process pool) against `engine="ray"` (a
local Ray started by the run, on 127.0.0.1) with the same number of workers on the same videos, and the cost of a
corpus projected from what was measured.

Each run is a fresh interpreter writing a fresh folder; rounds interleave the engines (order alternating). Clips/s
is clips over the processing span (first video's start to the last one's end, in any worker), as in
bench_extraction.py; end-to-end clips/s also counts start-up (the pool's fork server and graphs, Ray's GCS, raylet
and workers). `busy_cores` is the whole machine's CPU use while the run lasted (ours and everyone else's).

    python benchmarks/bench_engines.py                    # the 6 sample videos, 2 workers, 3 rounds
    python benchmarks/bench_engines.py --rounds 1 --workers 2 --videos a.mp4 b.mp4

The projection: frames = hours x 3600 x fps; CPU-hours = frames / (frames per CPU-s); wall hours on N nodes of C
cores = CPU-hours / (N x C x efficiency), one MediaPipe graph per core; storage = frames x the stored bytes per frame
(Parquet parts as written, and the raw float32 keypoints + bool mask).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("MSMAE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
RAW_BYTES_PER_FRAME = 160 * 4 * 4 + 160  # keypoints (160, 4) float32 + keypoint_mask (160,) bool


def child(engine, workers, output_dir, report, videos):
    from msmae.data.extract import run_extraction

    started = time.perf_counter()
    summary = run_extraction(videos, output_dir, engine=engine, num_workers=workers, progress=False, quiet=True)
    if summary.num_extracted != len(videos):
        raise SystemExit(f"only {summary.num_extracted} of {len(videos)} videos extracted: {summary.failures}")
    part_bytes = sum(p.stat().st_size for p in Path(output_dir, "data").glob("*.parquet"))
    Path(report).write_text(json.dumps({
        "clips": summary.num_extracted, "frames": summary.num_frames, "processing_seconds": summary.processing_seconds,
        "run_seconds": time.perf_counter() - started, "cpu_seconds": summary.cpu_seconds, "part_bytes": part_bytes}))


def busy_ticks():
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)


def run_once(engine, workers, videos, workdir):
    output, report = Path(workdir, f"{engine}-out"), Path(workdir, f"{engine}.json")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ADDRESS": ""}
    busy, start = busy_ticks(), time.perf_counter()
    subprocess.run([sys.executable, __file__, "--child", engine, str(workers), str(output), str(report), *videos],
                   env=env, check=True, timeout=1800)
    wall = time.perf_counter() - start
    result = json.loads(report.read_text())
    result.update(end_to_end_s=wall, busy_cores=(busy_ticks() - busy) / os.sysconf("SC_CLK_TCK") / wall,
                  clips_per_s=result["clips"] / result["processing_seconds"],
                  end_to_end_clips_per_s=result["clips"] / wall,
                  frames_per_cpu_s=result["frames"] / result["cpu_seconds"])
    return result


def projection(frames_per_cpu_s, bytes_per_frame, hours=1000, fps=30, cores=32, nodes=(1, 4, 16, 64), efficiency=1.0):
    frames = hours * 3600 * fps
    cpu_hours = frames / frames_per_cpu_s / 3600
    return {"hours": hours, "fps": fps, "frames": frames, "frames_per_cpu_s": frames_per_cpu_s,
            "cpu_hours": cpu_hours, "cores_per_node": cores, "efficiency": efficiency,
            "wall_hours": {n: cpu_hours / (n * cores * efficiency) for n in nodes},
            "parquet_gb": frames * bytes_per_frame / 1e9, "raw_gb": frames * RAW_BYTES_PER_FRAME / 1e9}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, workers, output, report, *videos = sys.argv[2:]
        return child(engine, int(workers), output, report, videos)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", nargs="+", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=str(HERE / "results" / "engines.json"))
    args = parser.parse_args()
    videos = args.videos or [str(SHARED / "pose-format-samples" / "test_video.mp4"),
                             *map(str, sorted((SHARED / "msl150" / "data" / "original_source").glob("*.mp4")))]
    rounds = []
    for number in range(args.rounds):
        order = ("local", "ray") if number % 2 == 0 else ("ray", "local")
        with tempfile.TemporaryDirectory(prefix="bench-engines-") as workdir:
            result = {engine: run_once(engine, args.workers, videos, workdir) for engine in order}
        result["ray_vs_local"] = result["ray"]["clips_per_s"] / result["local"]["clips_per_s"]
        rounds.append(result)
        print(f"round {number + 1}: " + ", ".join(
            f"{e} {result[e]['clips_per_s']:.3f} clips/s ({result[e]['end_to_end_clips_per_s']:.3f} end to end, "
            f"busy {result[e]['busy_cores']:.2f} cores)" for e in order) + f"; ray/local {result['ray_vs_local']:.2f}")
    summary = {engine: {key: statistics.median(r[engine][key] for r in rounds)
                        for key in ("clips_per_s", "end_to_end_clips_per_s", "frames_per_cpu_s", "busy_cores",
                                    "end_to_end_s")} for engine in ("local", "ray")}
    summary["ray_vs_local"] = statistics.median(r["ray_vs_local"] for r in rounds)
    frames_per_cpu_s = statistics.median(r[e]["frames_per_cpu_s"] for r in rounds for e in ("local", "ray"))
    bytes_per_frame = rounds[0]["local"]["part_bytes"] / rounds[0]["local"]["frames"]
    payload = {"benchmark": "engines", "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                           time.gmtime()),
               "logical_cpus": os.cpu_count(), "videos": videos, "workers": args.workers, "rounds": rounds,
               "summary": summary, "parquet_bytes_per_frame": bytes_per_frame,
               "projection_1000h_720p_30fps": projection(frames_per_cpu_s, bytes_per_frame)}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps({"summary": summary, "projection": payload["projection_1000h_720p_30fps"]}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

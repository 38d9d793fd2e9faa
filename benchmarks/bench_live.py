"""Live recognition benchmark (`msmae live`): latency from a frame to the updated prediction, and the sustained frame
rate, on one CPU core.

The stream is the real sample video (`pose-format-samples/test_video.mp4`, 58 frames, 29.9 fps) played `--loops`
times back to back through `msmae.serving.live.LiveRecognizer` (MediaPipe Holistic in streaming mode, a sliding window, the
recognition pipeline). The process is pinned to one core (`os.sched_setaffinity`, so MediaPipe's threads too) with
one torch thread. Variants:

- as fast as possible, an answer after every frame (`--every 1`) and every 4 frames (the default of `msmae live`):
  sustained frames/s (wall, and per CPU-second, which other processes on the core cannot inflate), per-frame
  MediaPipe time, per-answer model time (processor + model), latency = frame decoded -> answer (and its CPU-time
  form, MediaPipe + model, what an otherwise idle core would take);
- real time (`--realtime`): frames arrive at the video's pace and late ones are skipped, as from a camera: latency
  then includes waiting for the previous frame, and the skipped fraction shows whether one core keeps up.

The model is `--model` or, by default, a classifier at the paper's size (8 x 512 encoder, 150 MSL-150 classes) with
random weights saved to a temporary folder: timing does not depend on the weights.

    python benchmarks/bench_live.py
    python benchmarks/bench_live.py --model msmae-demo-output/sign-classification --loops 2
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_VIDEO = SHARED / "pose-format-samples" / "test_video.mp4"


def paper_size_classifier(folder: Path) -> Path:
    from msmae import MSMAEConfig, MSMAEForSignClassification
    from msmae.processing_msmae import MSMAEPoseProcessor

    labels = [f"sign_{i}" for i in range(150)]
    config = MSMAEConfig(num_labels=len(labels), id2label=dict(enumerate(labels)),
                         label2id={name: i for i, name in enumerate(labels)})
    torch.manual_seed(0)
    MSMAEForSignClassification(config).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("recognition", streams=list(config.streams)).save_pretrained(folder)
    return folder


class Timed:
    """Wraps a callable, recording the wall and process-CPU seconds of every call."""

    def __init__(self, function):
        self.function, self.wall, self.cpu = function, [], []

    def __call__(self, *args, **kwargs):
        cpu, start = time.process_time(), time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.wall.append(time.perf_counter() - start)
            self.cpu.append(time.process_time() - cpu)


def looped_frames(video, loops, realtime, stats):
    """The video `loops` times as one stream, timestamps continuing."""
    from msmae.serving.live import video_frames

    offset, last = 0.0, 0.0
    for _ in range(loops):
        for frame, timestamp, arrival in video_frames(video, realtime=realtime, stats=stats):
            last = offset + timestamp
            yield frame, last, arrival
        offset = last + 1.0 / 29.97


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else None


def run_variant(name, pipe, args, every, realtime):
    from msmae.serving.live import LiveRecognizer, run_live

    recognizer = LiveRecognizer(pipe, window=args.window, every=every, top_k=5)
    extraction = Timed(recognizer.holistic.process)
    model = Timed(recognizer.pipeline)
    recognizer.holistic.process, recognizer.pipeline = extraction, model
    stats = {}
    with common.LoadSampler().measure() as sample:
        updates = run_live(recognizer, looped_frames(args.video, args.loops, realtime, stats), on_update=lambda u: None)
    recognizer.close()
    frames = recognizer.count
    latencies = [1000 * u.latency for u in updates]
    return {
        "variant": name,
        "frames": frames,
        "skipped": stats.get("dropped", 0),
        "answers": len(updates),
        "latency_median_ms": statistics.median(latencies),
        "latency_p95_ms": percentile(latencies, 0.95),
        "frames_per_s": frames / sample["seconds"],
        "frames_per_cpu_s": frames / sample["cpu_s"],
        "mediapipe_ms": 1000 * statistics.median(extraction.wall),
        "mediapipe_cpu_ms": 1000 * statistics.median(extraction.cpu),
        "model_ms": 1000 * statistics.median(model.wall),
        "model_cpu_ms": 1000 * statistics.median(model.cpu),
        # frame -> answer on an otherwise idle core: this frame's MediaPipe plus one answer, in CPU time
        "latency_cpu_ms": 1000 * (statistics.median(extraction.cpu) + statistics.median(model.cpu)),
        "background_cores": sample["background_cores"],
        "seconds": sample["seconds"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a recognition checkpoint (default: paper size, random weights)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--loops", type=int, default=3, help="plays of the video in one stream")
    parser.add_argument("--window", type=float, default=2.0, help="seconds per answer, as msmae live --window")
    parser.add_argument("--cpu", type=int, default=None, help="the core to pin to (default: the first allowed)")
    parser.add_argument("--output", default=str(common.default_output("live")))
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"{args.video} not found; pass --video (any video with a signer)")

    core = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})  # before MediaPipe starts its threads: they inherit it
    torch.set_num_threads(1)
    from transformers import pipeline

    from msmae.pipeline_msmae import RECOGNITION_TASK

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or paper_size_classifier(Path(tmp) / "paper-size-classifier")
        pipe = pipeline(RECOGNITION_TASK, model=str(model), device="cpu")
        rows = [
            run_variant("as fast as possible, answer every frame", pipe, args, every=1, realtime=False),
            run_variant("as fast as possible, answer every 4 frames", pipe, args, every=4, realtime=False),
            run_variant("real time (29.9 fps), answer every 4 frames", pipe, args, every=4, realtime=True),
        ]
    environment = common.environment("cpu")
    environment["pinned_core"] = core
    common.print_table(
        rows,
        ["variant", "frames", "skipped", "answers", "latency_median_ms", "latency_p95_ms", "frames_per_s",
         "frames_per_cpu_s", "mediapipe_ms", "mediapipe_cpu_ms", "model_ms", "model_cpu_ms", "latency_cpu_ms",
         "background_cores"],
        title=f"msmae live on one core of {environment['cpu']} ({args.model or 'paper-size classifier'}, "
              f"window {args.window:g} s)",
    )
    common.write_json(args.output, {"environment": environment, "model": str(args.model or "paper size, random"),
                                    "video": str(args.video), "loops": args.loops, "window_s": args.window,
                                    "results": rows})


if __name__ == "__main__":
    main()

"""Inference benchmark: sign recognition at the paper's size, with and without pose extraction.

- Model only: `MSMAEForSignClassification` (paper encoder, [CLS] head) on 64-frame clips: latency of one clip
  (batch 1) and throughput at batch 32, in `torch.inference_mode()`.
- Processor: `MSMAEPoseProcessor` ("recognition" preset at 64 frames) on a real pose clip.
- Extraction: MediaPipe Holistic through `msmae.holistic.HolisticExtractor` on a real video
  (`pose-format-samples/test_video.mp4`), frames/s with the graph warm; the first video's start-up is reported apart.
- End to end: video file -> extraction -> processor -> model, timed on the real video, and the same for one
  64-frame clip computed from the measured rates (the sample video has 58 frames).

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --no_extraction --batch_size 32
    python benchmarks/bench_inference.py --quick
    python benchmarks/bench_inference.py --no_extraction --compile --threads 1   # torch.compile vs eager

With `--compile` the model is also timed through `torch.compile(model, fullgraph=True, dynamic=False)` (one graph
per batch size); the first call's time, compilation included, is reported as `compile_s`.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from msmae import MSMAEConfig, MSMAEForSignClassification  # noqa: E402
from msmae.processing_msmae import MSMAEPoseProcessor  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_VIDEO = SHARED / "pose-format-samples" / "test_video.mp4"
DEFAULT_POSE = SHARED / "pose-format-samples" / "mediapipe_long.pose"


def encoder_forward_flops(config: MSMAEConfig, batch: int, frames: int) -> float:
    """Forward FLOPs of the classifier's encoder over full clips ([CLS] + every cubelet), matrix products only."""
    from bench_pretraining import transformer_layer_flops

    S, H = config.cubelet_size, config.hidden_size
    padded = -(-frames // S) * S
    cubelets = padded // S
    tokens = 1 + config.num_streams * cubelets
    flops = sum(2 * padded * k * config.num_coordinates * H for k in config.stream_num_keypoints)
    flops += config.num_streams * 2 * cubelets * S * H * H
    flops += config.num_hidden_layers * sum(transformer_layer_flops(tokens, H, config.intermediate_size).values())
    flops += 2 * H * config.num_labels
    return flops * batch


def time_calls(function, repeats: int, warmup: int, sampler, max_background: float) -> dict:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        with sampler.measure() as sample:
            function()
        samples.append(sample)
    return common.summarize(samples, max_background)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser, default_steps=5, default_batch_size=32)
    parser.add_argument("--frames", type=int, default=64, help="Frames per clip.")
    parser.add_argument("--num_labels", type=int, default=2000, help="Classifier size (WLASL2000-like).")
    parser.add_argument("--attn_implementation", default="sdpa")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="Video for extraction timing.")
    parser.add_argument("--pose", type=Path, default=DEFAULT_POSE, help="Pose file for processor timing.")
    parser.add_argument("--no_extraction", action="store_true", help="Skip MediaPipe (model and processor only).")
    parser.add_argument("--compile", action="store_true", help="Also time the torch.compile'd model.")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = common.resolve_device(args.device)
    dtype = common.resolve_dtype(args.dtype)
    if args.quick:
        config = MSMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, num_labels=10)
        args.batch_size, args.steps = min(args.batch_size, 4), 2
    else:
        config = MSMAEConfig(num_labels=args.num_labels)
    config._attn_implementation = args.attn_implementation
    torch.manual_seed(args.seed)
    model = MSMAEForSignClassification(config).to(device).eval()
    sampler = common.LoadSampler()
    rows = []

    def model_call(batch_size, forward=model):
        generator = torch.Generator().manual_seed(args.seed)
        shape = (batch_size, args.frames, config.num_keypoints, config.num_coordinates)
        inputs = {
            "pose_values": torch.rand(shape, generator=generator).to(device),
            "keypoint_mask": torch.ones(shape[:3], dtype=torch.bool, device=device),
            "attention_mask": torch.ones(shape[:2], dtype=torch.long, device=device),
        }

        def call():
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                logits = forward(**inputs).logits
            common.synchronize(device)
            return logits

        return call

    forwards = {"model": model}
    if args.compile:
        forwards["model+compile"] = torch.compile(model, fullgraph=True, dynamic=False)
    for name, forward in forwards.items():
        for batch_size in dict.fromkeys([1, args.batch_size]):
            call = model_call(batch_size, forward)
            start = time.perf_counter()
            call()  # compiles a compiled model for this shape
            first_call_s = time.perf_counter() - start
            summary = time_calls(call, args.steps, args.warmup, sampler, args.max_background)
            flops = encoder_forward_flops(config, batch_size, args.frames)
            rows.append({"stage": f"{name}, batch {batch_size}", "batch": batch_size, "latency_ms": summary["median_s"] * 1e3,
                         "cpu_ms": summary["median_cpu_s"] * 1e3, "clips_per_s": batch_size / summary["median_s"],
                         "gflop_s": flops / summary["median_s"] / 1e9, "first_call_s": first_call_s,
                         "clean": f"{summary['clean_samples']}/{summary['samples']}", "bg_cores": summary["background_cores_mean"],
                         "summary": summary})
            print(f"{rows[-1]['stage']}: {rows[-1]['latency_ms']:.1f} ms (first call {first_call_s:.1f} s)", flush=True)

    processor = MSMAEPoseProcessor.from_preset("recognition", streams=config.streams, num_frames=args.frames)
    processor_ms = None
    if args.pose.exists():
        from msmae.clips import load_pose

        pose = load_pose(args.pose)
        summary = time_calls(lambda: processor([pose], return_tensors="pt"), max(args.steps, 5), 1, sampler, args.max_background)
        processor_ms = summary["median_s"] * 1e3
        rows.append({"stage": f"processor ({pose.num_frames}-frame pose -> {args.frames} frames)", "batch": 1,
                     "latency_ms": processor_ms, "cpu_ms": summary["median_cpu_s"] * 1e3,
                     "clips_per_s": 1e3 / processor_ms, "clean": f"{summary['clean_samples']}/{summary['samples']}",
                     "bg_cores": summary["background_cores_mean"], "summary": summary})
    else:
        print(f"no pose file at {args.pose}: processor not timed")

    extraction = None
    if not args.no_extraction:
        if not args.video.exists():
            print(f"no video at {args.video}: extraction not timed (pass --video)")
        else:
            extraction = time_extraction(args, config, model, processor, dtype, device, sampler, rows, processor_ms)

    common.print_table(rows, ["stage", "batch", "latency_ms", "cpu_ms", "clips_per_s", "gflop_s", "first_call_s", "frames_per_s",
                              "clean", "bg_cores"],
                       title=f"Inference ({args.dtype}, {args.frames}-frame clips, device {device}, threads {torch.get_num_threads()})")
    result = {"benchmark": "inference", "environment": common.environment(device),
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "config": {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")},
              "rows": rows, "extraction": extraction}
    common.write_json(args.output or common.default_output(f"inference_{args.dtype}{'_quick' if args.quick else ''}"), result)
    return result


def time_extraction(args, config, model, processor, dtype, device, sampler, rows, processor_ms):
    from msmae.holistic import HolisticExtractor

    start = time.perf_counter()
    extractor = HolisticExtractor()
    with sampler.measure() as first:
        pose = extractor.extract_video(args.video)
    startup_s = time.perf_counter() - start
    frames = pose.num_frames
    runs = []
    for _ in range(max(args.steps // 2, 2)):
        with sampler.measure() as sample:
            extractor.extract_video(args.video)
        runs.append(sample)
    summary = common.summarize(runs, args.max_background)
    fps = frames / summary["median_s"]
    rows.append({"stage": f"extraction (MediaPipe Holistic, {frames}-frame video)", "batch": 1,
                 "latency_ms": summary["median_s"] * 1e3, "cpu_ms": summary["median_cpu_s"] * 1e3, "frames_per_s": fps,
                 "clean": f"{summary['clean_samples']}/{summary['samples']}", "bg_cores": summary["background_cores_mean"],
                 "summary": summary})

    def end_to_end():
        clip = extractor.extract_video(args.video)
        inputs = processor([clip], return_tensors="pt")
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
        return int(np.argmax(logits.float().cpu().numpy()))

    e2e = time_calls(end_to_end, max(args.steps // 2, 2), 0, sampler, args.max_background)
    rows.append({"stage": f"end to end: video ({frames} frames) -> label", "batch": 1, "latency_ms": e2e["median_s"] * 1e3,
                 "cpu_ms": e2e["median_cpu_s"] * 1e3, "clean": f"{e2e['clean_samples']}/{e2e['samples']}",
                 "bg_cores": e2e["background_cores_mean"], "summary": e2e})
    extractor.close()

    model_1 = next(r for r in rows if r["batch"] == 1 and r["stage"].startswith("model,"))
    model_b = next((r for r in rows if r["batch"] == args.batch_size and r["stage"].startswith("model,")), model_1)
    processor_row = next((r for r in rows if r["stage"].startswith("processor")), None)
    processor_cpu_ms = processor_row["cpu_ms"] if processor_row else 0.0
    # Wall-clock sums, and CPU-time sums (what the stages cost on an otherwise idle core).
    per_clip_extract_ms = args.frames / fps * 1e3
    per_clip_extract_cpu_ms = args.frames * summary["median_cpu_s"] / frames * 1e3
    latency_64 = per_clip_extract_ms + (processor_ms or 0.0) + model_1["latency_ms"]
    cpu_64 = per_clip_extract_cpu_ms + processor_cpu_ms + model_1["cpu_ms"]
    rows.append({"stage": f"derived: one {args.frames}-frame clip from video", "batch": 1, "latency_ms": latency_64,
                 "cpu_ms": cpu_64, "clips_per_s": 1e3 / latency_64})
    per_clip_batched_ms = per_clip_extract_ms + (processor_ms or 0.0) + model_b["latency_ms"] / model_b["batch"]
    per_clip_batched_cpu_ms = per_clip_extract_cpu_ms + processor_cpu_ms + model_b["cpu_ms"] / model_b["batch"]
    rows.append({"stage": f"derived: batch {model_b['batch']} from video, one extraction process", "batch": model_b["batch"],
                 "clips_per_s": 1e3 / per_clip_batched_ms, "latency_ms": per_clip_batched_ms * model_b["batch"],
                 "cpu_ms": per_clip_batched_cpu_ms * model_b["batch"]})
    return {"first_video_s_with_graph_startup": startup_s, "frames": frames, "frames_per_s": fps,
            "frames_per_cpu_s": frames / summary["median_cpu_s"],
            "real_time_factor_at_video_fps": fps / pose.fps if pose.fps else None, "video": str(args.video),
            "video_fps": pose.fps, "extraction_share_of_64_frame_latency": per_clip_extract_ms / latency_64}


if __name__ == "__main__":
    main()

"""Pretraining step benchmark at the paper's size: time per step, achieved FLOP/s, MFU, and the naive baseline.

One step = forward + backward + AdamW step of MSMAEForPreTraining on a batch of `--frames`-frame clips with the
config's masking (50% of each stream's cubelets by default). FLOPs are counted analytically from the config and
the actual token counts (matrix products only: projections, Conv1D, attention QK^T and AV, MLPs, decoder and
heads; backward = 2x forward), and MFU divides the achieved FLOP/s by this machine's matmul peak measured in the
same run. The naive baseline runs the same encoder over all tokens, with masked cubelets replaced by a mask token
(BERT-style), then the same decoder and loss.

Variants and matmul-peak samples are interleaved round by round, so load changes on a shared machine hit them
alike; each timed step records the other processes' CPU use, and contaminated steps are left out.

    python benchmarks/bench_pretraining.py                      # fp32, paper size, batch 8
    python benchmarks/bench_pretraining.py --dtype bfloat16     # bf16 autocast
    python benchmarks/bench_pretraining.py --attn_implementation eager,sdpa --no_baseline
    python benchmarks/bench_pretraining.py --compile            # adds torch.compile(fullgraph=True) variants
    python benchmarks/bench_pretraining.py --threads 1 --compile --no_baseline   # CPU MFU, compiled vs eager
    python benchmarks/bench_pretraining.py --profile            # torch.profiler summary of one step
    python benchmarks/bench_pretraining.py --quick              # tiny smoke run
"""

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from msmae import MSMAEConfig, MSMAEForPreTraining  # noqa: E402
from msmae.modeling_msmae import prepare_inputs  # noqa: E402


# ---------------------------------------------------------------------------------------------------------------
# Analytic FLOP count (a multiply-add is 2 FLOPs)


def transformer_layer_flops(tokens: int, hidden: int, intermediate: int) -> dict:
    """Forward FLOPs of one pre-norm layer over a sequence of `tokens` tokens (one sample)."""
    return {
        "attention_projections": 2 * tokens * hidden * hidden * 4,  # q, k, v, o
        "attention_scores": 2 * tokens * tokens * hidden,  # Q K^T over all heads
        "attention_values": 2 * tokens * tokens * hidden,  # A V
        "mlp": 2 * tokens * hidden * intermediate * 2,
    }


def _add(total: dict, part: dict, times: float = 1):
    for key, value in part.items():
        total[key] = total.get(key, 0) + value * times


def pretraining_forward_flops(config: MSMAEConfig, batch: int, frames: int, visible_per_stream: int, naive: bool = False) -> dict:
    """Forward FLOPs of MSMAEForPreTraining (or of the naive baseline) per component, for the whole batch.

    `visible_per_stream` is the number of cubelets per stream the encoder sees (the padded maximum of the batch);
    the naive baseline's encoder sees all of them.
    """
    S, H, Hd, D = config.cubelet_size, config.hidden_size, config.decoder_hidden_size, config.num_coordinates
    padded_frames = math.ceil(frames / S) * S
    cubelets = padded_frames // S
    streams = config.num_streams
    encoder_tokens = streams * (cubelets if naive else visible_per_stream)
    decoder_tokens = streams * cubelets
    flops = {}
    flops["embedding_projection"] = sum(2 * padded_frames * k * D * H for k in config.stream_num_keypoints)
    flops["embedding_conv"] = streams * 2 * cubelets * (S * H) * H
    _add(flops, transformer_layer_flops(encoder_tokens, H, config.intermediate_size), config.num_hidden_layers)
    flops["decoder_embed"] = 2 * encoder_tokens * H * Hd
    decoder = {f"decoder_{k}": v for k, v in transformer_layer_flops(decoder_tokens, Hd, config.decoder_intermediate_size).items()}
    _add(flops, decoder, config.decoder_num_hidden_layers)
    flops["prediction_heads"] = sum(2 * cubelets * Hd * S * k * D for k in config.stream_num_keypoints)
    return {key: value * batch for key, value in flops.items()}


def step_flops(forward: dict) -> float:
    """Forward + backward: backward costs two matrix products (input and weight gradients) per forward one, except
    the first projection, whose input (`pose_values`) needs no gradient."""
    return 3 * sum(forward.values()) - forward.get("embedding_projection", 0)


def visible_per_stream(config: MSMAEConfig, frames: int) -> int:
    """Cubelets per stream the encoder sees for a batch of `frames` frames (the model's own static count)."""
    return config.num_visible_cubelets(config.num_cubelets(frames))


# ---------------------------------------------------------------------------------------------------------------
# The naive baseline


class NaiveMaskTokenPretraining(nn.Module):
    """BERT-style masked pose modelling built from an MSMAEForPreTraining's modules.

    The encoder runs over every cubelet, with the masked ones replaced by a learned mask token, instead of over the
    visible ones only; the decoder and the loss are MS-MAE's (the decoder then has nothing to fill in).
    """

    def __init__(self, model: MSMAEForPreTraining):
        super().__init__()
        self.model = model
        self.config = model.config
        self.mask_token = nn.Parameter(torch.randn(1, 1, 1, model.config.hidden_size) * model.config.initializer_range)

    def forward(self, pose_values, keypoint_mask=None, attention_mask=None):
        config, model = self.config, self.model
        values, kp_mask, frame_mask, cubelet_mask = prepare_inputs(config, pose_values, keypoint_mask, attention_mask)
        bool_masked_pos, _ = model.msmae.random_masking(cubelet_mask)
        tokens = model.msmae.embeddings(values, kp_mask, frame_mask)
        tokens = torch.where(bool_masked_pos.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        batch, streams, cubelets, _ = tokens.shape
        token_mask = cubelet_mask.unsqueeze(1).expand(-1, streams, -1)
        hidden, _, _ = model.msmae.encoder(tokens.flatten(1, 2), token_mask.flatten(1, 2))
        hidden = model.msmae.layernorm(hidden)
        # Every real cubelet reaches the decoder as "visible" (the masked ones as encoded mask tokens).
        indices = torch.arange(cubelets, device=hidden.device).expand(batch, streams, cubelets)
        logits = model.decoder(hidden, indices, token_mask, bool_masked_pos)
        return model.forward_loss(values, kp_mask, logits, bool_masked_pos)


# ---------------------------------------------------------------------------------------------------------------
# Benchmark


def make_batch(config: MSMAEConfig, batch: int, frames: int, device, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, frames, config.num_keypoints, config.num_coordinates)
    keypoint_mask = torch.rand(shape[:3], generator=generator) > 0.1
    pose_values = torch.rand(shape, generator=generator) * keypoint_mask.unsqueeze(-1)
    attention_mask = torch.ones(shape[:2], dtype=torch.long)
    return {
        "pose_values": pose_values.to(device),
        "keypoint_mask": keypoint_mask.to(device),
        "attention_mask": attention_mask.to(device),
    }


def make_optimizer(params, fused: str, device):
    kwargs = {"lr": 8e-4, "betas": (0.9, 0.95), "weight_decay": 0.05}
    if fused in ("on", "auto"):
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs), "fused"
        except (RuntimeError, ValueError):
            if fused == "on":
                raise
    if fused == "foreach":
        return torch.optim.AdamW(params, foreach=True, **kwargs), "foreach"
    return torch.optim.AdamW(params, foreach=False, **kwargs), "for-loop"


class Variant:
    def __init__(self, name, config, args, device, attn, naive, compile_model, fused):
        torch.manual_seed(args.seed)
        config = copy.deepcopy(config)  # every variant its own: the attention choice lives on the config
        config._attn_implementation = attn
        model = MSMAEForPreTraining(config).to(device)
        self.module = NaiveMaskTokenPretraining(model).to(device) if naive else model
        self.module.train()
        # fullgraph=True: the step is one graph (tests/test_compile.py); a graph break would be an error here.
        self.forward = torch.compile(self.module, fullgraph=True) if compile_model else self.module
        self.optimizer, self.optimizer_kind = make_optimizer(self.module.parameters(), fused, device)
        self.name, self.naive, self.attn, self.compiled = name, naive, attn, compile_model
        self.device, self.dtype = device, args.dtype_value
        self.samples = []
        visible = visible_per_stream(config, args.frames)
        self.forward_flops = pretraining_forward_flops(config, args.batch_size, args.frames, visible, naive=naive)
        self.flops = step_flops(self.forward_flops)

    def step(self, batch):
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = self.forward(**batch)
            loss = out if self.naive else out.loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        common.synchronize(self.device)
        return loss.detach()


def build_config(args) -> MSMAEConfig:
    if args.quick:
        return MSMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                           decoder_hidden_size=64, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
                           decoder_intermediate_size=256, cubelet_size=args.cubelet_size or 2)
    overrides = {"cubelet_size": args.cubelet_size} if args.cubelet_size else {}
    return MSMAEConfig(**overrides)


def check_flop_counter(config, args, device) -> dict:
    """Compares the analytic count with torch's FlopCounterMode on one eager step (small batch)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch_size = 1
    torch.manual_seed(args.seed)
    model = MSMAEForPreTraining(config).to(device)
    model.config._attn_implementation = "eager"
    batch = make_batch(config, batch_size, args.frames, device, args.seed)
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    counted = counter.get_total_flops()
    analytic = step_flops(pretraining_forward_flops(config, batch_size, args.frames, visible_per_stream(config, args.frames)))
    return {"analytic": analytic, "flop_counter_mode": counted, "ratio": counted / analytic}


def attention_microbenchmark(config, args, device, sampler) -> list[dict]:
    """Forward + backward of the attention core alone, fused SDPA vs explicit matmuls, at the step's shapes."""
    from msmae.modeling_msmae import eager_attention_forward

    heads, head_dim = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    cubelets = math.ceil(args.frames / config.cubelet_size)
    shapes = {"encoder": config.num_streams * visible_per_stream(config, args.frames), "decoder": config.num_streams * cubelets}
    module = nn.Module()  # eager_attention_forward reads only `.training`
    rows = []
    for part, tokens in shapes.items():
        for dtype in dict.fromkeys([torch.float32, args.dtype_value]):
            for impl in ("sdpa", "eager"):
                q, k, v = (torch.randn(args.batch_size, heads, tokens, head_dim, device=device, dtype=dtype, requires_grad=True) for _ in range(3))

                def run():
                    if impl == "sdpa":
                        out = nn.functional.scaled_dot_product_attention(q, k, v)
                    else:
                        out, _ = eager_attention_forward(module, q, k, v, None, scaling=head_dim**-0.5)
                    out.float().sum().backward()
                    common.synchronize(device)

                run()
                samples = []
                for _ in range(max(args.steps, 2)):
                    with sampler.measure() as sample:
                        run()
                    samples.append(sample)
                summary = common.summarize(samples, args.max_background)
                flops = 3 * 4 * args.batch_size * heads * tokens * tokens * head_dim
                rows.append({"part": part, "tokens": tokens, "dtype": str(dtype).replace("torch.", ""), "attention": impl,
                             "ms": summary["median_s"] * 1e3, "cpu_ms": summary["median_cpu_s"] * 1e3,
                             "gflop_per_cpu_s": flops / summary["median_cpu_s"] / 1e9,
                             "clean": f"{summary['clean_samples']}/{summary['samples']}"})
    return rows


PROFILE_CATEGORIES = [
    ("matmul (mm/addmm/bmm/linear)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::_addmm_activation")),
    ("conv1d", ("convolution",)),
    ("fused attention (SDPA kernels)", ("scaled_dot_product", "flash_attention", "efficient_attention")),
    ("softmax", ("softmax",)),
    ("optimizer (AdamW)", ("adam",)),
    ("layernorm", ("layer_norm",)),
    ("gelu", ("gelu",)),
    ("copies / layout (copy_, clone, contiguous, cat)", ("aten::copy_", "aten::clone", "aten::cat", "aten::contiguous", "aten::fill_", "aten::zero_")),
    ("reductions (sum: bias grads, loss)", ("aten::sum", "aten::mean")),
    ("elementwise (add/mul/where/...)", ("aten::add", "aten::mul", "aten::where", "aten::sub", "aten::div", "aten::pow", "aten::masked_fill", "aten::bitwise")),
    ("gather / scatter / sort (masking)", ("gather", "scatter", "sort", "index")),
]


def categorize_profile(events) -> dict:
    """Self time per category (seconds) of a profiler's key_averages()."""
    cuda = any(getattr(e, "self_device_time_total", 0) for e in events)
    totals = {}
    for event in events:
        self_time = (event.self_device_time_total if cuda else event.self_cpu_time_total) / 1e6
        name = event.key.lower()
        category = next((c for c, keys in PROFILE_CATEGORIES if any(k.lower() in name for k in keys)), "other")
        totals[category] = totals.get(category, 0.0) + self_time
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def gemm_microbenchmark(config, args, device, sampler, peak_per_cpu_s: float, peak_per_s: float) -> dict:
    """The step's linear-layer GEMMs alone, at its shapes (forward, input gradient, weight gradient), in the run's
    dtype: how close the model's own matrix shapes get to the square-matmul peak. Their FLOP-weighted efficiency
    caps the step's MFU whatever else is optimised."""
    dtype = args.dtype_value
    tokens = {"encoder": args.batch_size * config.num_streams * visible_per_stream(config, args.frames),
              "decoder": args.batch_size * config.num_streams * math.ceil(args.frames / config.cubelet_size)}
    shapes = {"encoder": [(config.hidden_size, config.hidden_size), (config.hidden_size, config.intermediate_size),
                          (config.intermediate_size, config.hidden_size)],
              "decoder": [(config.decoder_hidden_size, config.decoder_hidden_size),
                          (config.decoder_hidden_size, config.decoder_intermediate_size),
                          (config.decoder_intermediate_size, config.decoder_hidden_size)]}
    rows, total_flops, total_cpu, total_wall = [], 0.0, 0.0, 0.0
    for part, m in tokens.items():
        for k, n in shapes[part]:
            x = torch.randn(m, k, device=device).to(dtype)
            w = torch.randn(n, k, device=device).to(dtype)
            g = torch.randn(m, n, device=device).to(dtype)
            for role, fn in (("forward x W^T", lambda: x @ w.T), ("grad input g W", lambda: g @ w), ("grad weight g^T x", lambda: g.T @ x)):
                fn()
                samples = []
                for _ in range(3):
                    with sampler.measure() as sample:
                        fn()
                        common.synchronize(device)
                    samples.append(sample)
                summary = common.summarize(samples, args.max_background)
                flops = 2 * m * k * n
                total_flops, total_cpu, total_wall = total_flops + flops, total_cpu + summary["median_cpu_s"], total_wall + summary["median_s"]
                rows.append({"part": part, "m_k_n": f"{m}x{k}x{n}", "role": role,
                             "gflop_per_cpu_s": flops / summary["median_cpu_s"] / 1e9,
                             "of_peak_cpu_time": flops / summary["median_cpu_s"] / peak_per_cpu_s})
    return {"rows": rows, "weighted_of_peak_cpu_time": total_flops / total_cpu / peak_per_cpu_s,
            "weighted_of_peak_wall": total_flops / total_wall / peak_per_s}


def optimizer_microbenchmark(config, args, device, sampler) -> list[dict]:
    """AdamW step alone over the model's parameters: fused kernel vs foreach vs the per-parameter loop."""
    torch.manual_seed(args.seed)
    model = MSMAEForPreTraining(copy.deepcopy(config)).to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    rows = []
    for kind in ("on", "foreach", "off"):
        optimizer, name = make_optimizer(model.parameters(), kind, device)
        optimizer.step()  # creates the state
        samples = []
        for _ in range(max(args.steps, 3)):
            with sampler.measure() as sample:
                optimizer.step()
                common.synchronize(device)
            samples.append(sample)
        summary = common.summarize(samples, args.max_background)
        rows.append({"optimizer": name, "ms": summary["median_s"] * 1e3, "cpu_ms": summary["median_cpu_s"] * 1e3,
                     "parameters_M": sum(p.numel() for p in model.parameters()) / 1e6,
                     "clean": f"{summary['clean_samples']}/{summary['samples']}"})
    return rows


def embedding_share(variant: Variant, batch, sampler, repeats: int = 3) -> dict:
    """CPU time of the per-stream embeddings (Linear + Conv1D per stream, a Python loop over streams), forward and
    backward, against a whole step: what that loop costs."""
    model = variant.module.model if variant.naive else variant.module
    values, kp_mask, frame_mask, _ = prepare_inputs(model.config, batch["pose_values"], batch["keypoint_mask"], batch["attention_mask"])
    samples = []
    for _ in range(repeats + 1):
        with sampler.measure() as sample:
            with torch.autocast(variant.device.type, dtype=variant.dtype, enabled=variant.dtype != torch.float32):
                tokens = model.msmae.embeddings(values, kp_mask, frame_mask)
            tokens.float().sum().backward()
            common.synchronize(variant.device)
        samples.append(sample)
    model.zero_grad(set_to_none=True)
    cpu = sorted(s["cpu_s"] for s in samples[1:])[len(samples[1:]) // 2]
    step_cpu = common.summarize(variant.samples, float("inf"))["median_cpu_s"]
    return {"embeddings_fwd_bwd_cpu_s": cpu, "step_cpu_s": step_cpu, "share": cpu / step_cpu if step_cpu else None}


def profile_step(variant: Variant, batch, rows: int = 20) -> tuple[str, dict]:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if variant.device.type == "cuda" else [])
    variant.step(batch)
    with profile(activities=activities, record_shapes=True) as prof:
        variant.step(batch)
    events = prof.key_averages()
    key = "self_cuda_time_total" if variant.device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=rows, max_name_column_width=45, max_shapes_column_width=60)
    return table, categorize_profile(events)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(parser, default_steps=3, default_batch_size=8)
    parser.add_argument("--frames", type=int, default=300, help="Frames per clip (the paper's pretraining window).")
    parser.add_argument("--cubelet_size", type=int, default=None, help="Override config.cubelet_size (S).")
    parser.add_argument("--attn_implementation", default="sdpa", help="Comma-separated: eager, sdpa.")
    parser.add_argument("--fused_adamw", default="auto", choices=["auto", "on", "off", "foreach"])
    parser.add_argument("--compile", action="store_true", help="Also time torch.compile'd variants.")
    parser.add_argument("--compile_only", action="store_true", help="Time only the torch.compile'd variants.")
    parser.add_argument("--no_baseline", action="store_true", help="Skip the naive all-tokens baseline.")
    parser.add_argument("--baseline_attn", default=None, help="Attention of the baseline (default: the first one).")
    parser.add_argument("--profile", action="store_true", help="Print a torch.profiler table of one step per variant.")
    parser.add_argument("--peak_size", type=int, default=None, help="Matmul size for the peak (default 2048; 1024 for bf16 on CPU).")
    parser.add_argument("--check_flops", action="store_true", help="Cross-check the analytic FLOPs with FlopCounterMode.")
    parser.add_argument("--gemm_microbenchmark", action="store_true",
                        help="Also time the step's linear-layer GEMMs alone at its shapes, against the peak.")
    parser.add_argument("--optimizer_microbenchmark", action="store_true",
                        help="Also time AdamW alone: fused vs foreach vs per-parameter loop.")
    parser.add_argument("--attention_microbenchmark", action="store_true",
                        help="Also time the attention core alone (SDPA vs explicit matmuls) at the step's shapes.")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = common.resolve_device(args.device)
    args.dtype_value = common.resolve_dtype(args.dtype)
    if args.quick:
        args.frames = min(args.frames, 64)
        args.batch_size = min(args.batch_size, 2)
    config = build_config(args)

    attns = [a.strip() for a in args.attn_implementation.split(",") if a.strip()]
    variants = []
    compiles = [True] if args.compile_only else ([False, True] if args.compile else [False])
    for compile_model in compiles:
        suffix = "+compile" if compile_model else ""
        for attn in attns:
            variants.append(Variant(f"ms-mae {attn}{suffix}", config, args, device, attn, False, compile_model, args.fused_adamw))
        if not args.no_baseline:
            attn = args.baseline_attn or attns[0]
            variants.append(Variant(f"naive all-tokens {attn}{suffix}", config, args, device, attn, True, compile_model, args.fused_adamw))

    batch = make_batch(config, args.batch_size, args.frames, device, args.seed)
    sampler = common.LoadSampler()
    peak_dtypes = [torch.float32] + ([args.dtype_value] if args.dtype_value != torch.float32 else [])
    peak_size = args.peak_size or (256 if args.quick else (1024 if device.type == "cpu" and args.dtype_value != torch.float32 else 2048))
    peak_samples = {dt: [] for dt in peak_dtypes}

    print(f"config: S={config.cubelet_size} streams={config.streams} encoder {config.num_hidden_layers}x{config.hidden_size} "
          f"decoder {config.decoder_num_hidden_layers}x{config.decoder_hidden_size}; batch {args.batch_size} x {args.frames} frames; "
          f"dtype {args.dtype}; device {device}; threads {torch.get_num_threads()}", flush=True)
    for variant in variants:
        start = time.perf_counter()
        for _ in range(args.warmup):
            variant.step(batch)
        print(f"warm-up {variant.name}: {time.perf_counter() - start:.1f}s (optimizer {variant.optimizer_kind})", flush=True)

    for round_index in range(args.steps):
        for variant in variants:
            with sampler.measure() as sample:
                variant.step(batch)
            variant.samples.append(sample)
            print(f"round {round_index} {variant.name}: {sample['seconds']:.3f}s, background {sample['background_cores']:.2f} cores", flush=True)
        for dt in peak_dtypes:
            peak_samples[dt] += common.matmul_flops_per_second(dt, device, peak_size, repeats=1, sampler=sampler)

    peaks = {str(dt).replace("torch.", ""): common.peak_from_samples(s, args.max_background) for dt, s in peak_samples.items()}
    peak_key = str(args.dtype_value).replace("torch.", "")
    rows = []
    for variant in variants:
        summary = common.summarize(variant.samples, args.max_background)
        achieved = variant.flops / summary["median_s"]
        achieved_cpu = variant.flops / summary["median_cpu_s"]
        rows.append({
            "variant": variant.name,
            "optimizer": variant.optimizer_kind,
            "step_s": summary["median_s"],
            "step_cpu_s": summary["median_cpu_s"],
            "clips_per_s": args.batch_size / summary["median_s"],
            "step_tflop": variant.flops / 1e12,
            "achieved_gflop_s": achieved / 1e9,
            "mfu": achieved / peaks[peak_key]["flops_per_s"],
            "mfu_vs_fp32_peak": achieved / peaks["float32"]["flops_per_s"],
            # FLOPs per CPU-second of this process against the matmul's: insensitive to other processes when
            # the run uses one thread (--threads 1).
            "mfu_cpu_time": achieved_cpu / peaks[peak_key]["flops_per_cpu_s"],
            # The paper pretrains for 120K steps (at its batch size; this run's batch size here).
            "hours_for_120k_steps": 120_000 * summary["median_s"] / 3600,
            "clean_steps": f"{summary['clean_samples']}/{summary['samples']}",
            "bg_cores": summary["background_cores_mean"],
            "summary": summary,
            "forward_flops": variant.forward_flops,
        })
    ms = next((r for r in rows if r["variant"].startswith("ms-mae")), None)
    for row in rows:
        row["time_vs_first_msmae"] = row["step_s"] / ms["step_s"] if ms else None
        row["cpu_time_vs_first_msmae"] = row["step_cpu_s"] / ms["step_cpu_s"] if ms else None

    common.print_table(rows, ["variant", "optimizer", "step_s", "step_cpu_s", "clips_per_s", "step_tflop", "achieved_gflop_s",
                              "mfu", "mfu_cpu_time", "time_vs_first_msmae", "cpu_time_vs_first_msmae", "hours_for_120k_steps",
                              "clean_steps", "bg_cores"],
                       title=f"Pretraining step, {args.dtype}, batch {args.batch_size} x {args.frames} frames")
    common.print_table([{"dtype": k, "size": peak_size, "peak_gflop_s": v["flops_per_s"] / 1e9,
                         "peak_gflop_per_cpu_s": v["flops_per_cpu_s"] / 1e9,
                         **{f"{layout}_gflop_s": f / 1e9 for layout, f in v["flops_per_s_by_layout"].items()},
                         "clean": f"{v['clean_samples']}/{v['samples']}"} for k, v in peaks.items()],
                       ["dtype", "size", "peak_gflop_s", "peak_gflop_per_cpu_s", "nn_gflop_s", "nt_gflop_s", "tn_gflop_s", "clean"],
                       title="Matmul peak (same run; best of the layouts a@b, a@b.T, a.T@b)")

    result = {"benchmark": "pretraining", "environment": common.environment(device), "args": {k: v for k, v in vars(args).items() if k != "dtype_value"},
              "config": config.to_dict(), "peaks": peaks, "rows": rows}
    if args.check_flops:
        result["flop_check"] = check_flop_counter(config, args, device)
        print(f"\nFLOP check (batch 1, eager): analytic {result['flop_check']['analytic'] / 1e9:.2f} GFLOP, "
              f"FlopCounterMode {result['flop_check']['flop_counter_mode'] / 1e9:.2f} GFLOP "
              f"(ratio {result['flop_check']['ratio']:.4f})")
    if args.attention_microbenchmark:
        result["attention"] = attention_microbenchmark(config, args, device, sampler)
        common.print_table(result["attention"], ["part", "tokens", "dtype", "attention", "ms", "cpu_ms", "gflop_per_cpu_s", "clean"],
                           title="Attention core, forward + backward")
    if args.gemm_microbenchmark:
        gemm = gemm_microbenchmark(config, args, device, sampler, peaks[peak_key]["flops_per_cpu_s"], peaks[peak_key]["flops_per_s"])
        result["gemm"] = gemm
        common.print_table(gemm["rows"], ["part", "m_k_n", "role", "gflop_per_cpu_s", "of_peak_cpu_time"],
                           title=f"The step's GEMMs alone ({args.dtype}); FLOP-weighted: {gemm['weighted_of_peak_cpu_time']:.1%} "
                                 f"of the peak per CPU-second")
    if args.optimizer_microbenchmark:
        result["optimizer"] = optimizer_microbenchmark(config, args, device, sampler)
        common.print_table(result["optimizer"], ["optimizer", "parameters_M", "ms", "cpu_ms", "clean"], title="AdamW step alone")
    if args.profile:
        profiles = {}
        for variant in variants:
            share = embedding_share(variant, batch, sampler)
            print(f"\n{variant.name}: per-stream embeddings (loop over {config.num_streams} streams) forward + backward "
                  f"{share['embeddings_fwd_bwd_cpu_s']:.3f} CPU-s = {share['share']:.1%} of a step")
            table, categories = profile_step(variant, batch)
            total = sum(categories.values())
            profiles[variant.name] = {"categories_s": categories, "table": table, "embeddings": share}
            print(f"\nProfile of one step: {variant.name}\n{table}")
            common.print_table([{"category": c, "self_s": t, "share": t / total} for c, t in categories.items()],
                               ["category", "self_s", "share"], title=f"Where the step's time goes: {variant.name}")
        result["profiles"] = profiles
    common.write_json(args.output or common.default_output(f"pretraining_{args.dtype}{'_quick' if args.quick else ''}"), result)
    return result


if __name__ == "__main__":
    main()

"""Does inductor's `mode="max-autotune"` (its C++ GEMM templates) beat aten's sgemm at the pretraining step's shapes?

Times `nn.functional.linear` (x W^T) eager and compiled with max-autotune, one thread, CPU time per call, at two of
the paper-size step's GEMM shapes (encoder M = 8 clips x 225 tokens, decoder M = 8 x 450), and the square 2048^3
matmul that bench_pretraining.py uses as the peak.

    python benchmarks/bench_gemm_autotune.py
"""

import resource
import time

import torch

SHAPES = [(1800, 512, 512), (3600, 512, 2048)]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_time_per_call(function, *args, repeats=20) -> float:
    function(*args)
    start = cpu_seconds()
    for _ in range(repeats):
        function(*args)
    return (cpu_seconds() - start) / repeats


def main():
    torch.set_num_threads(1)
    linear = torch.nn.functional.linear
    for m, k, n in SHAPES:
        x, w = torch.randn(m, k), torch.randn(n, k)
        start = time.perf_counter()
        compiled = torch.compile(linear, mode="max-autotune", fullgraph=True, dynamic=False)
        compiled(x, w)
        compile_s = time.perf_counter() - start
        flops = 2 * m * k * n
        eager, tuned = cpu_time_per_call(linear, x, w), cpu_time_per_call(compiled, x, w)
        print(f"{m}x{k}x{n}: aten {flops / eager / 1e9:.1f} GFLOP per CPU-s, max-autotune {flops / tuned / 1e9:.1f} "
              f"(compile {compile_s:.0f} s)", flush=True)
    square = torch.randn(2048, 2048)
    print(f"square 2048^3, aten: {2 * 2048**3 / cpu_time_per_call(torch.matmul, square, square, repeats=5) / 1e9:.1f} "
          "GFLOP per CPU-s")


if __name__ == "__main__":
    main()

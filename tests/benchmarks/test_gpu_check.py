"""benchmarks/gpu_check.sh in its CPU smoke mode: the GPU check's code paths (bf16 step eager and compiled, the
recipe's training loop, recognition latency, 2-process DDP) run and write every figure the GPU run reports."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smoke_mode_writes_every_figure(tmp_path):
    output = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--smoke", "--output", str(output)],
                            capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["smoke"] is True and report["peak"]["bf16_flops_per_s"] > 0
    for variant in ("eager", "compiled"):
        step = report["step"][variant]
        assert step["dtype"] == "bfloat16" and step["clips_per_s"] > 0 and 0 < step["mfu"] < 1
    assert report["step"]["compiled"]["compile_s"] > 0
    assert report["loop"]["clips_per_s"] > 0 and report["loop"]["timed_steps"] == 3 and report["loop"]["vs_eager_step"] > 0
    assert report["latency"]["frames"] == 64 and report["latency"]["median_ms"] > 0
    assert report["ddp"]["processes"] == 2 and report["ddp"]["scaling_vs_one"] > 0
    assert set(report["verdict"]) == {"mfu_bf16_batch64", "mfu_target_met", "loop_vs_step", "loop_target_met"}
    assert report["wall_s"] < 90  # under a minute on an idle machine (about 20 s); room for a shared one

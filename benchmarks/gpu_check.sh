#!/bin/bash
# The prepared GPU check (issue 22): at most 8 minutes on one GPU, one JSON (benchmarks/gpu_check.py says what it
# measures). Run from anywhere; the arguments go to gpu_check.py:
#   benchmarks/gpu_check.sh --output gpu_check.json                 # on a GPU machine
#   benchmarks/gpu_check.sh --device cpu --smoke --output smoke.json # the same code paths on a CPU, under a minute
# PYTHON picks the interpreter (default: the checkout's .venv, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
# 480 s: the check's budget; what is still running then is stopped (the JSON is written only at the end).
exec timeout --kill-after=10 480 "$PYTHON" benchmarks/gpu_check.py "$@"

"""The pretraining benchmark's analytic FLOP count must match torch's FlopCounterMode (MFU figures rest on it)."""

import copy
import sys
from pathlib import Path

import pytest
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_pretraining import (  # noqa: E402
    NaiveMaskTokenPretraining,
    make_batch,
    pretraining_forward_flops,
    step_flops,
    visible_per_stream,
)

from conftest import tiny_config  # noqa: E402

from msmae import MSMAEForPreTraining  # noqa: E402


@pytest.mark.parametrize(
    "overrides,frames", [({}, 37), ({"streams": ["body", "left_hand", "right_hand", "face"], "cubelet_size": 3}, 50)]
)
@pytest.mark.parametrize("naive", [False, True])
def test_analytic_flops_equal_flop_counter(overrides, frames, naive):
    # conftest's TINY with a decoder narrower than the encoder: the count must use each one's width.
    config = tiny_config(decoder_hidden_size=24, decoder_num_attention_heads=2, decoder_intermediate_size=48, **overrides)
    config._attn_implementation = "eager"
    model = MSMAEForPreTraining(copy.deepcopy(config))
    module = NaiveMaskTokenPretraining(model) if naive else model
    with FlopCounterMode(display=False) as counter:
        out = module(**make_batch(config, 2, frames, "cpu", 0))
        (out if naive else out.loss).backward()
    expected = step_flops(pretraining_forward_flops(config, 2, frames, visible_per_stream(config, frames), naive=naive))
    assert counter.get_total_flops() == expected

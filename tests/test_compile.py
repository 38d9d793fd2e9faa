"""The training step compiles as one graph: no host syncs in the pretraining or classification forward/backward.

Kept tiny: compiling on a small CPU takes tens of seconds, so only the pretraining step goes through inductor; the
classifier is traced with `aot_eager` (forward and backward graphs, no code generation).
"""

import pytest
import torch
from conftest import random_pose_inputs, tiny_config

from msmae import MSMAEForPreTraining, MSMAEForSignClassification

# conftest's TINY with a decoder narrower than the encoder, as the pinned model of test_regression.py.
SIZE = dict(decoder_hidden_size=24, decoder_num_attention_heads=2, decoder_intermediate_size=48, num_labels=5)
pytestmark = pytest.mark.slow  # torch.compile: minutes on a small CPU


def batch(config, with_noise=True):
    """Two 12-frame clips (6 cubelets), the second padded after 7 frames (an odd count: a half-real cubelet)."""
    generator = torch.Generator().manual_seed(0)
    inputs = random_pose_inputs(config, frames=12, second_clip_frames=7, generator=generator)
    if with_noise:
        inputs["noise"] = torch.rand((2, *config.noise_shape(12)), generator=generator)
    return inputs


def loss_of(model, inputs):
    return model(**inputs).loss


@pytest.mark.parametrize(
    "model_class, extra",
    [(MSMAEForPreTraining, {}), (MSMAEForSignClassification, {"labels": torch.tensor([1, 3])})],
)
def test_forward_has_no_graph_breaks(model_class, extra):
    torch.manual_seed(0)
    model = model_class(tiny_config(**SIZE))
    inputs = {**batch(model.config, with_noise=model_class is MSMAEForPreTraining), **extra}
    explanation = torch._dynamo.explain(loss_of)(model, inputs)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_classifier_forward_and_backward_trace_as_full_graphs():
    torch.manual_seed(0)
    model = MSMAEForSignClassification(tiny_config(**SIZE))
    inputs = {**batch(model.config, with_noise=False), "labels": torch.tensor([1, 3])}
    eager = model(**inputs).loss
    eager.backward()
    expected = grads(model)
    model.zero_grad()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss = compiled(**inputs).loss
    loss.backward()
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(grads(model), expected)


def test_compiled_pretraining_step_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config(**SIZE))
    inputs = batch(model.config)
    eager = model(**inputs)
    eager.loss.backward()
    expected = grads(model)
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(**inputs)
    out.loss.backward()
    torch.testing.assert_close(out.loss, eager.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits, eager.logits, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.mask, eager.mask)
    torch.testing.assert_close(grads(model), expected, atol=1e-5, rtol=1e-4)

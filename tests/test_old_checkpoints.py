"""Checkpoints saved by msmae 0.1.0 before the one-house move (tests/fixtures/checkpoints-0.1.0, written at commit
aeb1cf8 with their outputs on fixed inputs in expected.npz) load through the Auto classes with equal outputs, with
msmae installed and in a process where it is missing (the checkpoint's own code)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModelForPreTraining, AutoModelForSeq2SeqLM, AutoModelForVideoClassification

from conftest import run_without_msmae

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints-0.1.0"
EXPECTED = dict(np.load(FIXTURES / "expected.npz", allow_pickle=False))
INPUTS = {key.removeprefix("inputs."): torch.from_numpy(value) for key, value in EXPECTED.items()
          if key.startswith("inputs.") and key not in ("inputs.noise", "inputs.decoder_input_ids")}
# name -> (Auto class, extra forward arguments)
CHECKPOINTS = {
    "pretraining": (AutoModelForPreTraining, {"noise": torch.from_numpy(EXPECTED["inputs.noise"])}),
    "classifier": (AutoModelForVideoClassification, {}),
    "translation": (AutoModelForSeq2SeqLM, {"decoder_input_ids": torch.from_numpy(EXPECTED["inputs.decoder_input_ids"])}),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_loads_with_msmae_installed(name):
    import msmae  # noqa: F401  (registers model_type msmae / msmae_translation: no trust_remote_code needed)

    auto_class, extra = CHECKPOINTS[name]
    model = auto_class.from_pretrained(FIXTURES / name).eval()
    assert type(model).__module__.startswith("msmae.")
    with torch.no_grad():
        logits = model(**INPUTS, **extra).logits
    torch.testing.assert_close(logits, torch.from_numpy(EXPECTED[f"{name}.logits"]))


def test_processor_loads_with_msmae_installed():
    from msmae.processing_msmae import MSMAEPoseProcessor

    processor = AutoFeatureExtractor.from_pretrained(FIXTURES / "classifier")
    assert isinstance(processor, MSMAEPoseProcessor) and processor.streams == ["body", "left_hand", "right_hand"]


WITHOUT_MSMAE = """
import json, sys
import numpy as np, torch
import transformers
folder, name, auto_class = sys.argv[1:4]
expected = dict(np.load(folder + "/../expected.npz", allow_pickle=False))
inputs = {k.removeprefix("inputs."): torch.from_numpy(v) for k, v in expected.items()
          if k.startswith("inputs.") and k not in ("inputs.noise", "inputs.decoder_input_ids")}
extra = {"pretraining": {"noise": torch.from_numpy(expected["inputs.noise"])},
         "translation": {"decoder_input_ids": torch.from_numpy(expected["inputs.decoder_input_ids"])}}.get(name, {})
model = getattr(transformers, auto_class).from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(**inputs, **extra).logits
print(json.dumps([type(model).__module__, float((logits - torch.from_numpy(expected[name + ".logits"])).abs().max())]))
"""


@pytest.mark.parametrize(  # a fresh interpreter each (~10 s): the quick loop runs the classifier's
    "name", [pytest.param(name, marks=[] if name == "classifier" else pytest.mark.slow) for name in sorted(CHECKPOINTS)]
)
def test_loads_without_msmae(name, tmp_path):
    auto_class, _ = CHECKPOINTS[name]
    result = run_without_msmae(WITHOUT_MSMAE, FIXTURES / name, name, auto_class.__name__, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    module, difference = json.loads(result.stdout.strip().splitlines()[-1])
    assert module.startswith("transformers_modules.") and difference <= 1e-5

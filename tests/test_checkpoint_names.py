"""Parameter names on disk: new checkpoints use the current names (the Trainer resumes with a plain
`load_state_dict`), and checkpoints from before the decoder's layer stack was renamed still load."""

import json

import torch
from conftest import tiny_config
from safetensors.torch import load_file, save_file

from msmae import MSMAEForPreTraining


def test_saved_names_are_the_modules_names(tmp_path):
    model = MSMAEForPreTraining(tiny_config())
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert set(saved) == set(model.state_dict())
    assert any(key.startswith("decoder.layers.") for key in saved)
    # What Trainer's resume does: a strict load of the saved tensors into a fresh model.
    MSMAEForPreTraining(tiny_config()).load_state_dict(saved, strict=True)


def test_checkpoint_with_the_old_decoder_names_loads(tmp_path):
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config())
    model.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    old = {key.replace("decoder.layers.", "decoder.encoder.layers.", 1): value for key, value in state.items()}
    assert old != state
    save_file(old, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = MSMAEForPreTraining.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "msmae"

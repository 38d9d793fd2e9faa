"""The model side of the global-batch loss: split a batch in two, give each part the whole batch's
`num_items_in_batch`, and the parts' losses add up to the whole batch's mean (what DDP's gradient average of the
processes' losses, scaled by the world size, makes of them)."""

import pytest
import torch
from conftest import tiny_config, labelled

from msmae import MSMAEForPreTraining, MSMAEForSignClassification


def batch(config, size=6, frames=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    keypoint_mask = torch.rand(size, frames, config.num_keypoints, generator=generator) > 0.2
    attention_mask = torch.ones(size, frames, dtype=torch.long)
    attention_mask[0, 10:] = 0  # a shorter clip: padding is not counted
    return {
        "pose_values": torch.randn(size, frames, config.num_keypoints, config.num_coordinates, generator=generator),
        "keypoint_mask": keypoint_mask,
        "attention_mask": attention_mask,
        "noise": torch.rand(size, *config.noise_shape(frames), generator=generator),
    }


@pytest.mark.parametrize("normalization", ["coordinate", "token"])
def test_parts_with_the_global_count_add_up_to_the_global_mean(normalization):
    torch.manual_seed(0)
    model = MSMAEForPreTraining(tiny_config(loss_normalization=normalization)).eval()
    inputs = batch(model.config)
    parts = [{k: v[:2] for k, v in inputs.items()}, {k: v[2:] for k, v in inputs.items()}]
    count = sum(model.num_loss_items(**part) for part in parts)
    assert count == model.num_loss_items(**inputs) > 0
    with torch.no_grad():
        whole = model(**inputs).loss
        # Without the count each part is its own mean; the same count makes the whole batch's.
        assert model(**inputs, num_items_in_batch=count).loss == pytest.approx(whole.item(), abs=1e-7)
        added = sum(model(**part, num_items_in_batch=count).loss for part in parts)
        averaged = sum(model(**part).loss for part in parts) / 2
    assert added.item() == pytest.approx(whole.item(), abs=1e-6)
    assert abs(averaged.item() - whole.item()) > 1e-4  # what two processes' own means gave


def test_num_loss_items_needs_the_masking():
    model = MSMAEForPreTraining(tiny_config())
    inputs = batch(model.config)
    inputs.pop("noise")
    with pytest.raises(ValueError, match="noise"):
        model.num_loss_items(**inputs)


def test_classification_loss_divides_by_the_label_count():
    torch.manual_seed(0)
    model = MSMAEForSignClassification(tiny_config(**labelled())).eval()
    inputs = batch(model.config)
    inputs.pop("noise")
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    with torch.no_grad():
        whole = model(**inputs, labels=labels).loss
        added = sum(model(**{k: v[s] for k, v in inputs.items()}, labels=labels[s], num_items_in_batch=6).loss
                    for s in (slice(0, 2), slice(2, 6)))
    assert added.item() == pytest.approx(whole.item(), abs=1e-6)

"""Reconstruction targets (issue 27): `norm_target_loss` (ViT-MAE's norm_pix_loss per stream-cubelet token) and
`reconstruction_target="velocity"`, hand-checked on small examples with missing keypoints."""

import math

import pytest
import torch

from conftest import tiny_config

# Tiny config streams: body (6 keypoints), left hand (21), right hand (21); cubelets of 2 frames.
BODY, LEFT, RIGHT = slice(0, 6), slice(6, 27), slice(27, 48)


def model_for(**overrides):
    from msmae import MSMAEForPreTraining

    torch.manual_seed(0)
    return MSMAEForPreTraining(tiny_config(**overrides)).eval()


def example():
    """One clip of 2 frames (one cubelet). Undetected keypoints hold NaN, which must never reach the loss.

    body token: (1, 2) at frame 0 keypoint 0 and (3, 6) at frame 1 keypoint 1: values 1, 2, 3, 6.
    left-hand token: one keypoint, (0.5, 0.7) at frame 0 keypoint 0: two values.
    right-hand token: nothing detected."""
    values = torch.full((1, 2, 48, 2), float("nan"))
    detected = torch.zeros(1, 2, 48, dtype=torch.bool)
    values[0, 0, 0], values[0, 1, 1], values[0, 0, 6] = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0]), torch.tensor([0.5, 0.7])
    detected[0, 0, 0] = detected[0, 1, 1] = detected[0, 0, 6] = True
    return values, detected


def test_defaults_are_the_papers():
    config = tiny_config()
    assert config.reconstruction_target == "position" and config.norm_target_loss is False


@pytest.mark.parametrize("field, value", [("reconstruction_target", "speed"), ("norm_target_loss", "yes")])
def test_bad_values_name_the_field_and_the_choices(field, value):
    with pytest.raises(ValueError, match=f"`{field}` must be one of"):
        tiny_config(**{field: value})


def test_normalised_target_equals_hand_computed():
    model = model_for(norm_target_loss=True)
    values, detected = example()
    target, defined, (mean, std) = model.reconstruction_target(values, detected)
    body_std = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (3 - 3) ** 2 + (6 - 3) ** 2) / 3 + 1e-6)  # unbiased, as ViT-MAE
    torch.testing.assert_close(target[0, 0, 0], (torch.tensor([1.0, 2.0]) - 3) / body_std)
    torch.testing.assert_close(target[0, 1, 1], (torch.tensor([3.0, 6.0]) - 3) / body_std)
    hand_std = math.sqrt(((0.5 - 0.6) ** 2 + (0.7 - 0.6) ** 2) / 1 + 1e-6)
    torch.testing.assert_close(target[0, 0, 6], (torch.tensor([0.5, 0.7]) - 0.6) / hand_std)
    torch.testing.assert_close(mean[0, 1, 5, 0], torch.tensor(3.0))  # every keypoint of a token gets its statistics
    torch.testing.assert_close(std[0, 1, 20, 0], torch.tensor(hand_std))
    # Defined exactly where detected; the empty right-hand token has none (and no NaN anywhere).
    assert torch.equal(defined, detected)
    assert torch.isfinite(target).all() and torch.isfinite(mean).all() and torch.isfinite(std).all()


@pytest.mark.parametrize("normalization", ["coordinate", "token"])
def test_normalised_loss_equals_hand_computed(normalization):
    model = model_for(norm_target_loss=True, loss_normalization=normalization)
    values, detected = example()
    logits = torch.zeros(1, 2, 48, 2)
    masked = torch.tensor([[[1], [1], [1]]])
    loss = model.forward_loss(values, detected, logits, masked)
    # Zero prediction: the error is the normalised target squared, averaged over x, y.
    body_std = math.sqrt(14 / 3 + 1e-6)
    body = [((1 - 3) ** 2 + (2 - 3) ** 2) / 2 / body_std**2, ((3 - 3) ** 2 + (6 - 3) ** 2) / 2 / body_std**2]
    hand = [(0.1**2 + 0.1**2) / 2 / (0.02 + 1e-6)]
    expected = sum(body + hand) / 3 if normalization == "coordinate" else (sum(body) / 2 + hand[0]) / 2
    torch.testing.assert_close(loss, torch.tensor(expected))


def test_token_with_fewer_than_two_values_is_left_out():
    # With one coordinate per keypoint, one detected keypoint is one value: no standard deviation, no loss term.
    from msmae import MSMAEForPreTraining

    model = MSMAEForPreTraining(tiny_config(num_coordinates=1, norm_target_loss=True))
    values = torch.zeros(1, 2, 48, 1)
    detected = torch.zeros(1, 2, 48, dtype=torch.bool)
    detected[0, 0, 0] = True  # body: one value
    detected[0, :, 6] = True  # left hand: two values
    _, defined, _ = model.reconstruction_target(values, detected)
    assert not defined[0, :, BODY].any() and defined[0, :, 6].all()
    masked = torch.ones(1, 3, 1, dtype=torch.long)
    assert int(model.num_loss_items(values, detected, bool_masked_pos=masked)) == 2


def test_velocity_target_equals_hand_computed():
    model = model_for(reconstruction_target="velocity", cubelet_size=3)
    values = torch.full((1, 3, 48, 2), float("nan"))
    detected = torch.zeros(1, 3, 48, dtype=torch.bool)
    values[0, :, 0] = torch.tensor([[1.0, 1.0], [2.0, 3.0], [4.0, 0.0]])
    detected[0, :, 0] = True
    values[0, 0, 1], values[0, 2, 1] = torch.tensor([5.0, 5.0]), torch.tensor([6.0, 6.0])  # missing at frame 1
    detected[0, 0, 1] = detected[0, 2, 1] = True
    values[0, 1, 2], values[0, 2, 2] = torch.tensor([7.0, 7.0]), torch.tensor([9.0, 8.0])  # missing at frame 0
    detected[0, 1, 2] = detected[0, 2, 2] = True
    target, defined, statistics = model.reconstruction_target(values, detected)
    assert statistics is None
    torch.testing.assert_close(target[0, :, 0], torch.tensor([[1.0, 1.0], [1.0, 2.0], [2.0, -3.0]]))
    # A change is defined only where both frames were detected.
    assert defined[0, :, 0].tolist() == [True, True, True]
    assert defined[0, :, 1].tolist() == [True, False, False]
    assert defined[0, :, 2].tolist() == [False, False, True]
    torch.testing.assert_close(target[0, 2, 2], torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(target[0, 0, 1], torch.tensor([5.0, 5.0]))
    assert torch.isfinite(target).all() and not target[~defined].any()
    # Integrating the target gives the positions back where the chain is unbroken.
    torch.testing.assert_close(model.to_positions(target)[0, :, 0], values[0, :, 0])


@pytest.mark.parametrize("overrides", [dict(norm_target_loss=True), dict(reconstruction_target="velocity"),
                                       dict(reconstruction_target="velocity", norm_target_loss=True)])
def test_reconstruction_is_in_pose_coordinates(overrides):
    # A perfect prediction of the target gives back the positions: the picture and the errors see positions.
    model = model_for(**overrides)
    values = torch.randn(2, 6, 48, 2)
    detected = torch.ones(2, 6, 48, dtype=torch.bool)
    target, _, statistics = model.reconstruction_target(values, detected)
    torch.testing.assert_close(model.to_positions(target, statistics), values)
    outputs = model(pose_values=values, keypoint_mask=detected, noise=torch.rand(2, 3, 3))
    torch.testing.assert_close(outputs.reconstruction, model.to_positions(outputs.logits, statistics))


def test_default_reconstruction_is_the_logits():
    model = model_for()
    values = torch.randn(1, 4, 48, 2)
    outputs = model(pose_values=values, noise=torch.rand(1, 3, 2))
    assert outputs.reconstruction is outputs.logits


@pytest.mark.parametrize("normalization", ["coordinate", "token"])
@pytest.mark.parametrize("overrides", [dict(norm_target_loss=True), dict(reconstruction_target="velocity"),
                                       dict(reconstruction_target="velocity", norm_target_loss=True)])
def test_gradients_reach_only_masked_detected_keypoints(overrides, normalization):
    model = model_for(loss_normalization=normalization, **overrides)
    torch.manual_seed(1)
    values = torch.randn(2, 6, 48, 2)
    detected = torch.rand(2, 6, 48) > 0.3
    values[~detected] = float("nan")
    masked = (torch.rand(2, 3, 3) > 0.5).long()
    logits = torch.randn(2, 6, 48, 2, requires_grad=True)
    model.forward_loss(values, detected, logits, masked).backward()
    _, defined, _ = model.reconstruction_target(values, detected)
    scored = model._loss_weights(defined, masked)
    reached = (logits.grad != 0).any(-1)
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(reached, scored) and scored.any()
    assert (scored <= (detected & masked.repeat_interleave(2, 2)[:, [0] * 6 + [1] * 21 + [2] * 21].transpose(1, 2))).all()


@pytest.mark.parametrize("normalization", ["coordinate", "token"])
@pytest.mark.parametrize("overrides", [dict(norm_target_loss=True), dict(reconstruction_target="velocity")])
def test_global_count_gives_the_same_loss(overrides, normalization):
    # `num_items_in_batch` (the Trainer's global count) must count the same terms the loss averages.
    model = model_for(loss_normalization=normalization, **overrides)
    torch.manual_seed(2)
    values = torch.randn(2, 5, 48, 2)
    detected = torch.rand(2, 5, 48) > 0.3
    noise = torch.rand(2, 3, 3)
    count = model.num_loss_items(values, detected, noise=noise)
    own = model(pose_values=values, keypoint_mask=detected, noise=noise).loss
    given = model(pose_values=values, keypoint_mask=detected, noise=noise, num_items_in_batch=count).loss
    torch.testing.assert_close(own, given)
    # The velocity target scores fewer keypoints than positions would (a change needs both frames); per token, the
    # same tokens (each has a detected keypoint somewhere).
    positions = model_for(loss_normalization=normalization).num_loss_items(values, detected, noise=noise)
    fewer = "reconstruction_target" in overrides and normalization == "coordinate"
    assert (count < positions) if fewer else (count == positions)


@pytest.mark.parametrize("overrides", [dict(norm_target_loss=True), dict(reconstruction_target="velocity")])
def test_checkpoint_reproduces_its_loss(tmp_path, overrides):
    from msmae import MSMAEForPreTraining

    model = model_for(**overrides)
    values = torch.randn(2, 6, 48, 2)
    detected = torch.rand(2, 6, 48) > 0.2
    noise = torch.rand(2, 3, 3)
    with torch.no_grad():
        before = model(pose_values=values, keypoint_mask=detected, noise=noise).loss
        positions = model_for().eval()
        positions.load_state_dict(model.state_dict())
        other = positions(pose_values=values, keypoint_mask=detected, noise=noise).loss
    model.save_pretrained(tmp_path)
    loaded = MSMAEForPreTraining.from_pretrained(tmp_path).eval()
    for field, value in overrides.items():
        assert getattr(loaded.config, field) == value
    with torch.no_grad():
        after = loaded(pose_values=values, keypoint_mask=detected, noise=noise).loss
    torch.testing.assert_close(after, before)
    assert not torch.isclose(after, other)  # the option, not just the weights, decides the loss

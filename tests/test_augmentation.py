"""Seeded pose augmentations (`msmae.augmentation`)."""

import numpy as np
import pytest

from msmae.augmentation import (
    Compose,
    RandomAugment2D,
    RandomFrameDropDuplicate,
    RandomRotation,
    RandomScale,
    RandomShear,
    RandomSpeed,
    build_augmentations,
    recognition_augmentations,
    spatial_augmentations,
    translation_augmentations,
)

ALL = [RandomAugment2D(), RandomRotation(), RandomShear(), RandomScale(), RandomSpeed(), RandomFrameDropDuplicate(),
       translation_augmentations(), translation_augmentations("uniform")]


def _clip(frames=30, keypoints=48, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(frames, keypoints, 2)).astype(np.float32)
    mask = rng.random((frames, keypoints)) > 0.3
    values[~mask] = 0.0
    return values, mask


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_missing_keypoints_stay_zero_and_masked(transform):
    values, mask = _clip()
    mask[:, 5] = False  # never detected
    values[:, 5] = 0.0
    out, out_mask = transform(values, mask, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape[1:] == (48, 2) and out_mask.shape == out.shape[:2]
    assert not out[~out_mask].any()
    assert not out_mask[:, 5].any()
    assert np.isfinite(out).all()


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_reproducible_under_a_seed(transform):
    values, mask = _clip()
    a = transform(values, mask, np.random.default_rng(7))
    b = transform(values, mask, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    draws = [transform(values, mask, np.random.default_rng(seed))[0] for seed in range(4)]
    assert any(d.shape != draws[0].shape or not np.array_equal(d, draws[0]) for d in draws[1:])


def test_rotation_keeps_distances_and_bounds_the_angle():
    values = np.zeros((1, 1, 2), dtype=np.float32)
    values[0, 0] = [1.0, 0.0]
    mask = np.ones((1, 1), dtype=bool)
    for seed in range(20):
        out, _ = RandomRotation(15.0)(values, mask, np.random.default_rng(seed))
        angle = np.degrees(np.arctan2(out[0, 0, 1], out[0, 0, 0]))
        assert abs(angle) <= 15.0 + 1e-4
        assert np.linalg.norm(out[0, 0]) == pytest.approx(1.0, rel=1e-6)


def test_shear_and_scale():
    values, mask = _clip()
    mask[:] = True
    values = np.random.default_rng(1).normal(size=values.shape).astype(np.float32)
    sheared, _ = RandomShear(0.2)(values, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(sheared[..., 1], values[..., 1])  # y untouched
    shear = np.median((sheared[..., 0] - values[..., 0]) / values[..., 1])
    assert 0 < abs(shear) <= 0.2
    np.testing.assert_allclose(sheared[..., 0], values[..., 0] + shear * values[..., 1], atol=1e-5)

    scaled, _ = RandomScale(0.2)(values, mask, np.random.default_rng(0))
    factors = (scaled / values).reshape(-1, 2)
    assert np.allclose(factors, factors[0], atol=1e-4) and (np.abs(factors[0] - 1) <= 0.2).all()


def test_speed_resamples_linearly_without_inventing_keypoints():
    frames = 50
    values = np.zeros((frames, 2, 2), dtype=np.float32)
    values[:, 0, 0] = np.arange(frames)  # keypoint 0 moves linearly in x
    mask = np.ones((frames, 2), dtype=bool)
    mask[20:30, 1] = False  # keypoint 1 lost for 10 frames
    values[:, 1] = np.where(mask[:, 1, None], 1.0, 0.0)
    lengths = set()
    for seed in range(10):
        out, out_mask = RandomSpeed(0.2)(values, mask, np.random.default_rng(seed))
        lengths.add(len(out))
        assert 40 <= len(out) <= 60
        np.testing.assert_allclose(out[:, 0, 0], np.linspace(0, frames - 1, len(out)), atol=1e-4)
        assert out_mask[:, 0].all()
        assert (out[out_mask[:, 1], 1] == 1.0).all()  # detected values are real, never blended with zeros
        assert 7 <= (~out_mask[:, 1]).sum() <= 13
    assert len(lengths) > 1


def test_frame_drop_duplicate_keeps_order():
    frames = 50
    values = np.zeros((frames, 1, 2), dtype=np.float32)
    values[:, 0, 0] = np.arange(1, frames + 1)
    mask = np.ones((frames, 1), dtype=bool)
    out, _ = RandomFrameDropDuplicate(0.2)(values, mask, np.random.default_rng(0))
    source = out[:, 0, 0].astype(int)
    assert (np.diff(source) >= 0).all()
    counts = np.bincount(source, minlength=frames + 1)[1:]
    assert ((counts == 0) | (counts == 2)).sum() == 10  # 20% of 50 frames deleted or duplicated
    assert set(np.unique(counts)) <= {0, 1, 2}
    one, _ = RandomFrameDropDuplicate(1.0)(values[:1], mask[:1], np.random.default_rng(3))
    assert len(one) >= 1  # a clip is never deleted entirely


def test_compose_round_trips_through_its_config():
    for pipeline in (translation_augmentations(), translation_augmentations("uniform")):
        config = pipeline.to_config()
        rebuilt = build_augmentations(config)
        values, mask = _clip()
        a = pipeline(values, mask, np.random.default_rng(2))
        b = rebuilt(values, mask, np.random.default_rng(2))
        np.testing.assert_array_equal(a[0], b[0])
    assert translation_augmentations().to_config()[0] == {
        "type": "augment2d", "rotation_std": 0.2, "shear_std": 0.2, "scale_std": 0.2}
    assert translation_augmentations("uniform").to_config()[0] == {"type": "rotation", "max_degrees": 15.0}
    assert [type(t) for t in recognition_augmentations().transforms] == [RandomAugment2D]
    assert [type(t) for t in recognition_augmentations("uniform").transforms] == [RandomRotation, RandomShear,
                                                                                  RandomScale]
    with pytest.raises(ValueError, match="Unknown spatial augmentation 'affine'"):
        spatial_augmentations("affine")
    assert isinstance(build_augmentations([RandomSpeed(0.1)]), Compose)
    with pytest.raises(ValueError, match="Bad parameters for augmentation 'rotation'"):
        build_augmentations([{"type": "rotation", "degrees": 10}])


def test_compose_applies_in_order():
    values, mask = _clip()
    pipeline = Compose([RandomRotation(10.0), RandomScale(0.1)])
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    by_hand = RandomScale(0.1)(*RandomRotation(10.0)(values, mask, rng_b), rng_b)
    np.testing.assert_array_equal(pipeline(values, mask, rng_a)[0], by_hand[0])


def _pose_format_augment2d(values, mask, seed, **stds):
    """pose-format's own `augment2d` on the same points (one person), its global generator seeded."""
    from numpy import ma
    from pose_format.numpy.pose_body import NumPyPoseBody

    data = ma.masked_array(values[:, None].astype(np.float32), mask=np.repeat(~mask[:, None, :, None], 2, -1))
    body = NumPyPoseBody(fps=25.0, data=data, confidence=mask[:, None].astype(np.float32))
    np.random.seed(seed)
    return np.asarray(body.augment2d(**stds).data.filled(0.0))[:, 0]


@pytest.mark.parametrize("stds", [{}, {"rotation_std": 0.5, "shear_std": 0.1, "scale_std": 0.3},
                                  {"rotation_std": 0.0, "shear_std": 0.3, "scale_std": 0.0}])
def test_augment2d_equals_pose_format_draw_for_draw(stds):
    values, mask = _clip()
    for seed in range(5):
        expected = _pose_format_augment2d(values, mask, seed, **stds)
        out, out_mask = RandomAugment2D(**stds)(values, mask, np.random.RandomState(seed))
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out_mask, mask)


def test_augment2d_distributions():
    # The unit vectors give M = Sh R Sc = [[c + s n, (s c - n) q], [n, c q]] back (c, n = cos a, sin a; q = 1 + k),
    # and with it the three draws: q = det M (det Sh = det R = 1), a = atan2(n, c), s = (M[0, 1] / q + n) / c.
    values = np.zeros((1, 2, 2), dtype=np.float32)
    values[0, 0, 0] = values[0, 1, 1] = 1.0
    mask = np.ones((1, 2), dtype=bool)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(4000):
        out, _ = RandomAugment2D(rotation_std=0.2, shear_std=0.1, scale_std=0.3)(values, mask, rng)
        m = out[0].astype(np.float64)  # row i = e_i @ M
        q = np.linalg.det(m)
        angle = np.arctan2(m[1, 0], m[1, 1] / q)
        shear = (m[0, 1] / q + np.sin(angle)) / np.cos(angle)
        k = q - 1.0
        draws.append((angle, shear, k))
    angle, shear, k = np.array(draws).T
    # Normal, centred, with the asked spreads (in radians for the angle; 4000 draws: standard errors ~1.1%).
    for sample, std in ((angle, 0.2), (shear, 0.1), (k, 0.3)):
        assert abs(sample.mean()) < 4 * std / np.sqrt(len(sample))
        assert sample.std() == pytest.approx(std, rel=0.05)
        assert np.mean(np.abs(sample) > 2 * std) == pytest.approx(0.0455, abs=0.012)  # normal tails, not uniform

"""MSMAEPoseProcessor and normalize_keypoints (`msmae.processing_msmae`)."""

import sys

import numpy as np
import pytest
from conftest import run_without_msmae, sample_clip_file

from msmae import sample_data
from msmae.augmentation import RandomRotation
from msmae.configuration_msmae import MSMAEConfig
from msmae.keypoint_layout import ALL_STREAMS, NUM_STORED_KEYPOINTS, stream_slices
from msmae.pose_io import SignPose
from msmae.clips import load_pose
from msmae.processing_msmae import MSMAEPoseProcessor, normalize_keypoints

BODY = stream_slices()["body"]
L_SHOULDER, R_SHOULDER = BODY.start, BODY.start + 1


def _clip(frames=40, seed=0, width=640, height=480, source="synthetic"):
    """A synthetic clip: every keypoint detected, shoulders level, x of keypoint 2 (left elbow) = frame index/1000."""
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    keypoints[..., :2] = rng.uniform(0.3, 0.7, size=(frames, NUM_STORED_KEYPOINTS, 2))
    keypoints[:, L_SHOULDER, :2] = [0.6, 0.4]
    keypoints[:, R_SHOULDER, :2] = [0.4, 0.4]
    keypoints[:, BODY.start + 2, 0] = np.arange(frames) / 1000
    mask = np.ones((frames, NUM_STORED_KEYPOINTS), dtype=bool)
    return SignPose(keypoints, mask, fps=25.0, width=width, height=height, source=source)


def _frames_of(output, row=0):
    """Source frame index of each output frame (keypoint 2 holds index/1000, un-normalised)."""
    return np.rint(output["pose_values"][row, :, 2, 0] * 1000).astype(int)


def _raw(**kwargs):
    return MSMAEPoseProcessor(normalization="none", **kwargs)


# ---- normalisation ----------------------------------------------------------------------------------------------------


def test_shoulder_normalisation_synthetic():
    clip = _clip(width=1280, height=720)
    out = normalize_keypoints(clip.keypoints, clip.keypoint_mask, width=1280, height=720)
    np.testing.assert_allclose((out[:, L_SHOULDER] + out[:, R_SHOULDER]) / 2, 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[:, L_SHOULDER] - out[:, R_SHOULDER], axis=-1), 1.0, rtol=1e-6)
    # Aspect ratio: x is in units of width, y of height; after correction a frame-space offset (dx, dy) maps to
    # (dx * 1280/720, dy) / shoulder width (0.2 * 1280/720).
    point = out[0, 10]
    expected = (clip.keypoints[0, 10, :2] - [0.5, 0.4]) * [1280 / 720, 1] / (0.2 * 1280 / 720)
    np.testing.assert_allclose(point, expected, rtol=1e-5)


def test_shoulder_normalisation_uses_detected_frames_only_and_falls_back():
    clip = _clip()
    mask = clip.keypoint_mask.copy()
    keypoints = clip.keypoints.copy()
    keypoints[:5, L_SHOULDER, :2] = [0.9, 0.9]  # wrong values in frames where the shoulder is undetected
    mask[:5, L_SHOULDER] = False
    out = normalize_keypoints(keypoints, mask)
    np.testing.assert_allclose((out[5:, L_SHOULDER] + out[5:, R_SHOULDER]) / 2, 0.0, atol=1e-6)
    assert not out[:5, L_SHOULDER].any()  # undetected stays 0

    mask[:, L_SHOULDER] = False  # no frame with both shoulders: centre/scale of all detected keypoints
    out = normalize_keypoints(keypoints, mask)
    detected = out[mask]
    np.testing.assert_allclose(detected.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.sqrt((detected**2).sum(-1).mean()), 1.0, rtol=1e-5)

    none = normalize_keypoints(keypoints, mask, method="none")
    np.testing.assert_array_equal(none[mask], keypoints[..., :2][mask])
    with pytest.raises(ValueError, match="Unknown normalization"):
        normalize_keypoints(keypoints, mask, method="zscore")


@pytest.mark.parametrize("name", ["asl-app-100/hello", "msl150/doctor/2"])  # real signing shipped with msmae
def test_real_clip_normalised_to_shoulders(name):
    out = MSMAEPoseProcessor(sampling="full")(sample_data.load_clip(name))
    values, mask = out["pose_values"][0], out["keypoint_mask"][0]
    both = mask[:, 0] & mask[:, 1]  # body stream: 0 = LEFT_SHOULDER, 1 = RIGHT_SHOULDER
    assert both.sum() > 10
    np.testing.assert_allclose(((values[both, 0] + values[both, 1]) / 2).mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(values[both, 0] - values[both, 1], axis=-1).mean(), 1.0, rtol=1e-5)
    # The signer's left shoulder is on the image's right (+x) on an unmirrored video; hands stay within a few
    # shoulder widths.
    assert values[both, 0, 0].mean() > 0 > values[both, 1, 0].mean()
    assert np.abs(values[mask]).max() < 6


# ---- inputs -----------------------------------------------------------------------------------------------------------


def test_pose_file_equals_same_keypoints_as_array_row_and_sign_pose(tmp_path):
    path = sample_clip_file(tmp_path, "asl-app-100/hello")  # a real clip shipped with msmae, as a pose file
    pose = load_pose(path)
    processor = MSMAEPoseProcessor.from_preset("recognition", streams=list(ALL_STREAMS))
    reference = processor(path)
    for other in (
        processor(pose.keypoints, width=pose.width, height=pose.height),  # the same keypoints as a raw (T, 160, 4) array
        processor(pose.to_example()),
        processor([pose]),
    ):
        np.testing.assert_array_equal(other["pose_values"], reference["pose_values"])
        np.testing.assert_array_equal(other["keypoint_mask"], reference["keypoint_mask"])
    assert reference["pose_values"].shape == (1, 32, 160, 2)


def test_other_sources_through_the_processor(shared_data):
    msl = shared_data / "msl150" / "data" / "sample_npy" / "yo"
    sources = [
        shared_data / "asl-app-100" / "signs" / "hello.json",
        next(iter(sorted(msl.iterdir()))),
        shared_data / "pose-format-samples" / "mediapipe.pose",
    ]
    out = MSMAEPoseProcessor(streams=["body", "left_hand", "right_hand", "face"])(sources, return_tensors="pt")
    assert tuple(out["pose_values"].shape) == (3, 32, 160, 2)
    assert out["pose_values"].isfinite().all()


def test_batched_dataset_rows_and_set_transform():
    datasets = pytest.importorskip("datasets")
    rows = [_clip(frames=n, seed=n).to_example() for n in (12, 20)]
    rows = [{**row, "label": i} for i, row in enumerate(rows)]
    processor = MSMAEPoseProcessor(sampling="full")
    expected = processor(rows)
    batched = processor({key: [row[key] for row in rows] for key in rows[0]})
    np.testing.assert_array_equal(batched["pose_values"], expected["pose_values"])

    dataset = datasets.Dataset.from_list(rows)
    dataset.set_transform(lambda batch: {**processor(batch), "labels": batch["label"]})
    collated = processor.pad([dataset[0], dataset[1]], return_tensors="pt")
    np.testing.assert_allclose(collated["pose_values"].numpy(), expected["pose_values"], atol=1e-6)
    assert collated["labels"].tolist() == [0, 1]
    assert collated["attention_mask"].sum(1).tolist() == [12, 20]


def test_nan_raw_array_is_masked_but_nan_sign_pose_is_an_error():
    clip = _clip()
    array = clip.keypoints.copy()
    array[3, 40:60] = np.nan
    out = MSMAEPoseProcessor(sampling="full")(array, width=640, height=480)
    assert np.isfinite(out["pose_values"]).all()
    assert not out["keypoint_mask"][0, 3, 40 - 0 : 48].any()  # right-hand keypoints 40-47 of the 48 output

    bad = SignPose(array, clip.keypoint_mask, fps=25, source="bad_clip.pose")
    with pytest.raises(ValueError, match="Clip 0 \\(bad_clip.pose\\).*NaN"):
        MSMAEPoseProcessor()(bad)


def test_input_errors_name_the_input():
    processor = MSMAEPoseProcessor()
    empty = SignPose(np.zeros((0, NUM_STORED_KEYPOINTS, 4)), np.zeros((0, NUM_STORED_KEYPOINTS)), fps=25, source="e.pose")
    with pytest.raises(ValueError, match="e.pose has zero frames"):
        processor(empty)
    with pytest.raises(ValueError, match=r"Clip 1 \(array of shape \(5, 48, 2\)\).*matches no known layout"):
        processor([_clip().keypoints, np.zeros((5, 48, 2))])
    with pytest.raises(ValueError, match="Clip 0 \\(dataset row\\).*missing column 'keypoint_mask'"):
        processor({"keypoints": _clip().keypoints})
    with pytest.raises(ValueError, match="No clips"):
        processor([])
    with pytest.raises(ValueError, match="model config expects \\['body', 'left_hand', 'right_hand', 'face'\\]"):
        processor.check_config(MSMAEConfig(streams=["body", "left_hand", "right_hand", "face"]))
    processor.check_config(MSMAEConfig())
    with pytest.raises(ValueError, match=r"must have shape \(frames, 48, 2\).*got \(4, 160, 2\)"):
        processor.pad([{"pose_values": np.zeros((4, 160, 2)), "keypoint_mask": np.ones((4, 160))}])


def test_invalid_settings():
    for streams in (["body", "hands"], ["body", "body"], []):  # the same check as the config's
        with pytest.raises(ValueError, match="`streams` must be distinct names"):
            MSMAEPoseProcessor(streams=streams)
        with pytest.raises(ValueError, match="`streams` must be distinct names"):
            MSMAEConfig(streams=streams)
    assert MSMAEPoseProcessor().streams == list(MSMAEConfig().streams) == ["body", "left_hand", "right_hand"]
    with pytest.raises(ValueError, match="`sampling`"):
        MSMAEPoseProcessor(sampling="dense")
    with pytest.raises(ValueError, match="window_size"):
        MSMAEPoseProcessor(sampling="window", num_frames=300)
    with pytest.raises(ValueError, match="Unknown augmentation"):
        MSMAEPoseProcessor(augmentations=[{"type": "flip"}])
    with pytest.raises(ValueError, match="Unknown preset"):
        MSMAEPoseProcessor.from_preset("captioning")


# ---- batching and sampling --------------------------------------------------------------------------------------------


def test_padding_and_attention_mask():
    clips = [_clip(frames=n, seed=n) for n in (7, 15, 11)]
    out = _raw(sampling="full")(clips, return_tensors="pt")
    assert tuple(out["pose_values"].shape) == (3, 15, 48, 2)
    assert out["pose_values"].dtype.is_floating_point and str(out["keypoint_mask"].dtype) == "torch.bool"
    assert str(out["attention_mask"].dtype) == "torch.int64"
    assert out["attention_mask"].sum(1).tolist() == [7, 15, 11]
    for row, n in enumerate((7, 15, 11)):
        assert not out["pose_values"][row, n:].any() and not out["keypoint_mask"][row, n:].any()
        assert out["keypoint_mask"][row, :n].all()
        np.testing.assert_array_equal(_frames_of({k: v.numpy() for k, v in out.items()}, row)[:n], np.arange(n))

    padded = _raw(sampling="full", pad_to_multiple_of=4)(clips)
    assert padded["pose_values"].shape[1] == 16 and padded["attention_mask"].sum() == 33
    capped = _raw(sampling="full", max_frames=10)(clips)
    assert capped["attention_mask"].sum(1).tolist() == [7, 10, 10]
    assert _frames_of(capped, 1)[[0, -1]].tolist() == [0, 14]  # evenly over the whole clip, not truncated


def test_uniform_sampling():
    processor = _raw(sampling="uniform", num_frames=8)
    long, short = _clip(frames=80), _clip(frames=5)
    np.testing.assert_array_equal(_frames_of(processor(long)), np.arange(8) * 10 + 5)
    # Short clips are stretched by repeating frames: every output frame is real.
    out = processor(short)
    assert out["attention_mask"].all() and _frames_of(out).tolist() == [0, 0, 1, 2, 2, 3, 4, 4]

    a = _frames_of(processor(long, training=True, seed=1))
    b = _frames_of(processor(long, training=True, seed=1))
    c = _frames_of(processor(long, training=True, seed=2))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert ((a // 10) == np.arange(8)).all()  # one frame from each of 8 equal segments
    np.testing.assert_array_equal(_frames_of(processor(long, training=True, generator=np.random.default_rng(1))), a)


def test_random_sampling():
    processor = _raw(sampling="random", num_frames=8)
    long = _clip(frames=80)
    a = _frames_of(processor(long, training=True, seed=3))
    assert len(set(a)) == 8 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, _frames_of(processor(long, training=True, seed=3)))
    np.testing.assert_array_equal(_frames_of(processor(long)), np.arange(8) * 10 + 5)  # evaluation = uniform
    short = _frames_of(processor(_clip(frames=5), training=True, seed=0))
    assert len(short) == 8 and (np.diff(short) >= 0).all() and short.max() <= 4


def test_window_sampling_pretraining():
    processor = MSMAEPoseProcessor.from_preset("pretraining", normalization="none")
    assert (processor.window_size, processor.num_frames) == (600, 300)
    long = _clip(frames=1000)
    centre = _frames_of(processor(long))
    np.testing.assert_array_equal(centre, 200 + np.arange(300) * 2 + 1)  # centred window, every second frame
    a = _frames_of(processor(long, training=True, seed=5))
    np.testing.assert_array_equal(a, _frames_of(processor(long, training=True, seed=5)))
    assert len(a) == 300 and (np.diff(a) == 2).all() and 0 <= a[0] and a[-1] < 1000
    starts = {int(_frames_of(processor(long, training=True, seed=s))[0]) for s in range(5)}
    assert len(starts) > 1
    # A clip shorter than the window is used whole, subsampled at the same rate, and padded in a batch.
    out = processor([_clip(frames=91), long])
    assert out["attention_mask"].sum(1).tolist() == [46, 300]
    assert _frames_of(out, 0)[:46].tolist() == list(range(0, 91, 2))


def test_translation_preset_full_length_with_augmentation():
    processor = MSMAEPoseProcessor.from_preset("translation")
    assert processor.sampling == "full" and processor.num_frames is None
    clip = _clip(frames=50)
    assert processor(clip)["pose_values"].shape == (1, 50, 48, 2)
    lengths = {processor(clip, training=True, seed=s)["pose_values"].shape[1] for s in range(6)}
    assert lengths - {50}  # 20% of the frames are deleted or duplicated at random


def test_training_augments_and_keeps_missing_keypoints_zero():
    clip = _clip(frames=20)
    clip.keypoint_mask[:, 10:20] = False
    clip.keypoints[:, 10:20] = 0
    processor = MSMAEPoseProcessor(sampling="full", augmentations=[RandomRotation(30.0)])
    evaluation = processor(clip)["pose_values"]
    trained = processor(clip, training=True, seed=0)
    assert not np.allclose(trained["pose_values"], evaluation)
    np.testing.assert_allclose(  # rotation about the shoulder midpoint keeps distances to it
        np.linalg.norm(trained["pose_values"], axis=-1), np.linalg.norm(evaluation, axis=-1), rtol=1e-5, atol=1e-6
    )
    assert not trained["pose_values"][0, :, 10:20].any() and not trained["keypoint_mask"][0, :, 10:20].any()
    np.testing.assert_array_equal(trained["pose_values"], processor(clip, training=True, seed=0)["pose_values"])


# ---- saving -----------------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    processor = MSMAEPoseProcessor.from_preset("recognition", streams=["body", "right_hand", "face"], max_frames=64)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    loaded = MSMAEPoseProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert loaded.streams == ["body", "right_hand", "face"] and loaded.augmentations == processor.augmentations
    clip = _clip(frames=45)
    for training in (False, True):
        a, b = processor(clip, training=training, seed=4), loaded(clip, training=training, seed=4)
        np.testing.assert_array_equal(a["pose_values"], b["pose_values"])
    assert MSMAEPoseProcessor.model_input_names == ["pose_values", "keypoint_mask", "attention_mask"]


def test_exported_modules_import_only_what_remote_code_allows():
    # trust_remote_code copies these files next to the model: they may import numpy, torch, transformers, the
    # standard library and each other; pose-format and MediaPipe only lazily inside try blocks.
    from transformers.dynamic_module_utils import get_imports

    import msmae.augmentation
    import msmae.pose_io
    import msmae.processing_msmae

    allowed = {"numpy", "torch", "transformers"} | set(sys.stdlib_module_names)
    for module in (msmae.processing_msmae, msmae.pose_io, msmae.augmentation):
        assert set(get_imports(module.__file__)) <= allowed, module.__name__


def test_video_suffix_goes_to_extraction(tmp_path, monkeypatch):
    import types

    clip = _clip(frames=9)
    class FakeExtractor:  # msmae.holistic.HolisticExtractor without MediaPipe
        def __init__(self, **kwargs):
            pass

        def extract_video(self, path, fps=None):
            return clip

        def close(self):
            pass

    fake = types.ModuleType("msmae.holistic")
    fake.HolisticExtractor = FakeExtractor
    monkeypatch.setitem(sys.modules, "msmae.holistic", fake)
    video = tmp_path / "sign.webm"
    video.write_bytes(b"\0")
    out = _raw(sampling="full")(str(video))
    np.testing.assert_array_equal(_frames_of(out), np.arange(9))
    assert load_pose(video) is clip


REMOTE_PROCESSOR_SCRIPT = """
import sys
import numpy as np
from transformers import AutoFeatureExtractor
loaded = AutoFeatureExtractor.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(loaded).__module__.startswith('transformers_modules'), type(loaded).__module__
clip = np.load(sys.argv[2], allow_pickle=False)
out = loaded(clip, width=640, height=480, training=True, seed=1)['pose_values']
np.save(sys.argv[3], out)
"""


def test_loads_as_remote_code(tmp_path):
    processor = MSMAEPoseProcessor.from_preset("recognition")
    processor.save_pretrained(tmp_path / "processor")
    assert {"processing_msmae.py", "pose_io.py", "augmentation.py"} <= {p.name for p in (tmp_path / "processor").iterdir()}
    clip = _clip(frames=45)
    np.save(tmp_path / "clip.npy", clip.keypoints)
    result = run_without_msmae(REMOTE_PROCESSOR_SCRIPT, tmp_path / "processor", tmp_path / "clip.npy",
                               tmp_path / "out.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(
        np.load(tmp_path / "out.npy"), processor(clip, training=True, seed=1)["pose_values"]
    )
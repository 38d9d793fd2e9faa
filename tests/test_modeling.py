"""Model tests in the shape of transformers' ModelTester: tiny configs, every head, deterministic masking."""

import copy
import json
import os

import pytest
import torch
from conftest import random_pose_inputs, run_without_msmae
from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification

from msmae import MSMAEConfig, MSMAEForPreTraining, MSMAEForSignClassification, MSMAEModel
from msmae.modeling_msmae import prepare_inputs


class MSMAEModelTester:
    def __init__(self, batch_size=3, num_frames=13, cubelet_size=2, streams=("body", "left_hand", "right_hand"), **overrides):
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.config_kwargs = dict(
            streams=list(streams),
            cubelet_size=cubelet_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            decoder_hidden_size=24,
            decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2,
            decoder_intermediate_size=48,
            num_labels=5,
        )
        self.config_kwargs.update(overrides)

    def get_config(self, **overrides):
        return MSMAEConfig(**{**self.config_kwargs, **overrides})

    def prepare_inputs(self, config, seed=0):
        return random_pose_inputs(config, self.batch_size, self.num_frames, self.num_frames - 4, generator=seed)

    def num_cubelets(self, config):
        return -(-self.num_frames // config.cubelet_size)


@pytest.fixture
def tester():
    return MSMAEModelTester()


def noise_for(config, tester, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(tester.batch_size, config.num_streams, tester.num_cubelets(config), generator=generator)


def test_config_defaults_follow_the_paper():
    config = MSMAEConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (512, 8, 8)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers) == (512, 4)
    assert config.mask_ratio == 0.5 and config.masking_strategy == "diff"
    assert config.streams == ["body", "left_hand", "right_hand"] and config.num_keypoints == 48
    assert MSMAEConfig(streams=["body", "left_hand", "right_hand", "face"]).num_keypoints == 160


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"streams": ["body", "tail"]}, "streams"),
        ({"mask_ratio": 1.0}, "mask_ratio"),
        ({"masking_strategy": "random"}, "masking_strategy"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "divisible"),
        ({"cubelet_size": 0}, "cubelet_size"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MSMAEConfig(**kwargs)


@pytest.mark.parametrize("cubelet_size", [1, 2, 4])
def test_model_shapes_and_stream_split(tester, cubelet_size):
    tester = MSMAEModelTester(cubelet_size=cubelet_size)
    config = tester.get_config()
    model = MSMAEModel(config).eval()
    inputs = tester.prepare_inputs(config)
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    num_cubelets = tester.num_cubelets(config)
    assert out.last_hidden_state.shape == (tester.batch_size, 3 * num_cubelets, 32)
    assert out.pooler_output.shape == (tester.batch_size, 32)
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert out.attentions[0].shape == (tester.batch_size, 4, 3 * num_cubelets, 3 * num_cubelets)
    streams = model.stream_tokens(out.last_hidden_state)
    assert list(streams) == config.streams
    # The body stream is the first block of tokens.
    torch.testing.assert_close(streams["body"], out.last_hidden_state[:, :num_cubelets])
    # Token mask: padded clip (9 real frames) has ceil(9/S) real cubelets per stream.
    real = -(-(tester.num_frames - 4) // cubelet_size)
    assert out.attention_mask[1].view(3, num_cubelets).sum(-1).tolist() == [real] * 3


@pytest.mark.parametrize("strategy", ["diff", "same"])
def test_pretraining_shapes(tester, strategy):
    config = tester.get_config(masking_strategy=strategy)
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    out = model(**inputs, noise=noise_for(config, tester))
    num_cubelets = tester.num_cubelets(config)
    assert out.logits.shape == (tester.batch_size, num_cubelets * config.cubelet_size, config.num_keypoints, 2)
    assert out.mask.shape == out.ids_restore.shape == (tester.batch_size, 3, num_cubelets)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_face_stream_and_unshared_hands(tester):
    config = tester.get_config(streams=["body", "left_hand", "right_hand", "face"], share_hand_projection=False)
    model = MSMAEForPreTraining(config)
    assert set(model.msmae.embeddings.streams) == {"body", "left_hand", "right_hand", "face"}
    out = model(**tester.prepare_inputs(config))
    assert out.logits.shape[2] == 160
    shared = MSMAEForPreTraining(tester.get_config())
    assert set(shared.msmae.embeddings.streams) == {"body", "hand"}


def test_diff_mask_equal_counts_different_positions(tester):
    config = tester.get_config(masking_strategy="diff")
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    mask = model(**inputs, noise=noise_for(config, tester)).mask
    counts = mask.sum(-1)
    assert (counts == counts[:, :1]).all()
    # 7 real cubelets (13 frames, S=2): round(0.5 * 7) = 4 masked; the padded clip has 5 real: 2 masked.
    assert counts[0, 0] == 4 and counts[1, 0] == 2
    assert not (mask[:, 0] == mask[:, 1]).all(), "DiffMask should mask different time steps per stream"
    # Padding is never marked as masked.
    assert mask[1, :, 5:].sum() == 0


def test_same_mask_identical_positions(tester):
    config = tester.get_config(masking_strategy="same")
    model = MSMAEForPreTraining(config).eval()
    mask = model(**tester.prepare_inputs(config), noise=noise_for(config, tester)).mask
    assert (mask == mask[:, :1]).all()
    assert mask.sum() > 0


def test_noise_makes_masking_deterministic(tester):
    config = tester.get_config()
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    noise = noise_for(config, tester)
    first, second = model(**inputs, noise=noise), model(**inputs, noise=noise)
    torch.testing.assert_close(first.loss, second.loss)
    assert torch.equal(first.mask, second.mask)
    # The lowest-noise cubelets stay visible.
    real = torch.ones(7, dtype=torch.bool)
    visible = ~first.mask[0, 0].bool() & real
    assert set(torch.argsort(noise[0, 0])[:3].tolist()) == set(visible.nonzero().flatten().tolist())


def test_explicit_mask_is_respected(tester):
    config = tester.get_config()
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    bool_masked_pos = torch.zeros(tester.batch_size, 3, tester.num_cubelets(config), dtype=torch.bool)
    bool_masked_pos[:, :, 1:4] = True
    out = model(**inputs, bool_masked_pos=bool_masked_pos)
    assert torch.equal(out.mask.bool(), bool_masked_pos)


def test_missing_keypoints_and_padded_frames_do_not_change_the_loss(tester):
    config = tester.get_config()
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    noise = noise_for(config, tester)
    reference = model(**inputs, noise=noise).loss

    changed = {k: v.clone() for k, v in inputs.items()}
    missing = ~changed["keypoint_mask"]
    changed["pose_values"][missing] = 123.0  # garbage where MediaPipe found nothing
    changed["pose_values"][1, tester.num_frames - 4 :] = -55.0  # garbage in padded frames
    torch.testing.assert_close(model(**changed, noise=noise).loss, reference)

    # Sanity: a detected keypoint of a real frame does change it.
    changed["pose_values"][0, 0, 0] += 5.0
    assert not torch.allclose(model(**changed, noise=noise).loss, reference)


def test_loss_only_counts_masked_cubelets(tester):
    config = tester.get_config()
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    bool_masked_pos = torch.zeros(tester.batch_size, 3, tester.num_cubelets(config), dtype=torch.bool)
    bool_masked_pos[:, :, :2] = True
    out = model(**inputs, bool_masked_pos=bool_masked_pos)
    frames = bool_masked_pos.repeat_interleave(config.cubelet_size, -1)[..., : tester.num_frames]
    sizes = config.stream_num_keypoints
    weight = torch.cat([frames[:, i : i + 1].expand(-1, n, -1) for i, n in enumerate(sizes)], 1).transpose(1, 2)
    weight = weight & inputs["keypoint_mask"] & inputs["attention_mask"].bool().unsqueeze(-1)
    error = ((out.logits[:, : tester.num_frames] - inputs["pose_values"]) ** 2).mean(-1)
    torch.testing.assert_close(out.loss, (error * weight).sum() / weight.sum())


def test_padded_clip_gives_same_cls_output(tester):
    config = tester.get_config(cubelet_size=4)
    model = MSMAEForSignClassification(config).eval()
    inputs = tester.prepare_inputs(config)
    clip = {k: v[:1, :10] for k, v in inputs.items()}  # 10 frames: the last cubelet is partial
    padded = {k: torch.cat([v, torch.zeros_like(v[:, :6]) + 7], 1) for k, v in clip.items()}
    padded["attention_mask"][:, 10:] = 0
    padded["keypoint_mask"] = padded["keypoint_mask"].bool()
    with torch.no_grad():
        alone = model(**clip).logits
        batched = model(**padded).logits
    torch.testing.assert_close(alone, batched, rtol=1e-5, atol=1e-5)


def test_classification_loss_and_labels(tester):
    config = tester.get_config(id2label={i: f"sign{i}" for i in range(5)}, label2id={f"sign{i}": i for i in range(5)})
    model = MSMAEForSignClassification(config)
    inputs = tester.prepare_inputs(config)
    out = model(**inputs, labels=torch.tensor([0, 3, 4]))
    assert out.logits.shape == (tester.batch_size, 5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 3, 4])))
    assert model.config.id2label[3] == "sign3"
    assert model.msmae.cls_token is not None


def test_linear_probe_freezes_encoder_and_mean_pools(tester):
    config = tester.get_config(linear_probe=True)
    model = MSMAEForSignClassification(config)
    model.train()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    assert model.msmae.cls_token is None and not model.msmae.training
    inputs = tester.prepare_inputs(config)
    with torch.no_grad():
        encoded = model.msmae(**inputs)
        expected = model.classifier(
            (encoded.last_hidden_state * encoded.attention_mask.unsqueeze(-1)).sum(1)
            / encoded.attention_mask.sum(1, keepdim=True)
        )
        torch.testing.assert_close(model(**inputs).logits, expected)


def test_linear_probe_stays_frozen_after_loading(tester, tmp_path):
    MSMAEForPreTraining(tester.get_config()).save_pretrained(tmp_path)
    model = MSMAEForSignClassification.from_pretrained(tmp_path, linear_probe=True, num_labels=3)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    auto = AutoModelForVideoClassification.from_pretrained(tmp_path, linear_probe=True, num_labels=3)
    assert {name for name, p in auto.named_parameters() if p.requires_grad} == trainable


def test_classifier_initialises_from_pretraining_checkpoint(tester, tmp_path):
    config = tester.get_config()
    pretrained = MSMAEForPreTraining(config)
    pretrained.save_pretrained(tmp_path)
    model, info = MSMAEForSignClassification.from_pretrained(tmp_path, num_labels=3, output_loading_info=True)
    torch.testing.assert_close(
        model.msmae.embeddings.streams["hand"].projection.weight,
        pretrained.msmae.embeddings.streams["hand"].projection.weight,
    )
    torch.testing.assert_close(model.msmae.encoder.layers[1].fc2.weight, pretrained.msmae.encoder.layers[1].fc2.weight)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias", "msmae.cls_token"}
    assert all(key.startswith("decoder.") for key in info["unexpected_keys"])


@pytest.mark.parametrize("model_class", [MSMAEModel, MSMAEForPreTraining, MSMAEForSignClassification])
def test_save_load_round_trip(tester, tmp_path, model_class):
    config = tester.get_config()
    torch.manual_seed(0)
    model = model_class(config).eval()
    inputs = tester.prepare_inputs(config)
    extra = {"noise": noise_for(config, tester)} if model_class is MSMAEForPreTraining else {}
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = model_class.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        first, second = model(**inputs, **extra), reloaded(**inputs, **extra)
    torch.testing.assert_close(first[0], second[0])


def test_auto_classes_resolve():
    config = AutoConfig.for_model("msmae", hidden_size=32, num_hidden_layers=1, num_attention_heads=4)
    assert isinstance(config, MSMAEConfig)
    assert type(AutoModel.from_config(config)) is MSMAEModel
    assert type(AutoModelForPreTraining.from_config(config)) is MSMAEForPreTraining
    assert type(AutoModelForVideoClassification.from_config(config)) is MSMAEForSignClassification


def test_saved_folder_has_auto_map_and_code(tester, tmp_path):
    MSMAEForPreTraining(tester.get_config()).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_msmae.MSMAEConfig",
        "AutoModel": "modeling_msmae.MSMAEModel",
        "AutoModelForPreTraining": "modeling_msmae.MSMAEForPreTraining",
        "AutoModelForVideoClassification": "modeling_msmae.MSMAEForSignClassification",
    }
    assert {"configuration_msmae.py", "modeling_msmae.py"} <= set(os.listdir(tmp_path))


FRESH_PROCESS_SCRIPT = """
import sys, torch
from transformers import AutoModel, AutoModelForVideoClassification
path = sys.argv[1]
encoder = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
classifier = AutoModelForVideoClassification.from_pretrained(path, trust_remote_code=True).eval()
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    hidden = encoder(**inputs).last_hidden_state
    logits = classifier(**inputs).logits
print(type(encoder).__module__.split('.')[0], type(classifier).__name__)
torch.save({'hidden': hidden, 'logits': logits}, sys.argv[3])
"""


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(tester, tmp_path):
    config = tester.get_config()
    torch.manual_seed(0)
    model = MSMAEForSignClassification(config).eval()
    model.save_pretrained(tmp_path / "ckpt")
    inputs = tester.prepare_inputs(config)
    torch.save(inputs, tmp_path / "inputs.pt")
    result = run_without_msmae(FRESH_PROCESS_SCRIPT, tmp_path / "ckpt", tmp_path / "inputs.pt", tmp_path / "out.pt",
                               cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["transformers_modules", "MSMAEForSignClassification"]
    out = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        torch.testing.assert_close(out["logits"], model(**inputs).logits)
        # AutoModel loads the encoder with its fine-tuned [CLS] token: the same as loading it here with msmae installed.
        local_encoder = MSMAEModel.from_pretrained(tmp_path / "ckpt").eval()
        torch.testing.assert_close(out["hidden"], local_encoder(**inputs).last_hidden_state)


@pytest.mark.parametrize("model_class", [MSMAEForPreTraining, MSMAEForSignClassification])
def test_eager_and_sdpa_agree(tester, model_class):
    config = tester.get_config()
    torch.manual_seed(0)
    eager = model_class(copy.deepcopy(config)).eval()
    eager.set_attn_implementation("eager")
    sdpa = model_class(copy.deepcopy(config)).eval()
    sdpa.load_state_dict(eager.state_dict())
    sdpa.set_attn_implementation("sdpa")
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    inputs = tester.prepare_inputs(config)
    extra = {"noise": noise_for(config, tester)} if model_class is MSMAEForPreTraining else {}
    with torch.no_grad():
        first, second = eager(**inputs, **extra), sdpa(**inputs, **extra)
    torch.testing.assert_close(first.logits, second.logits, rtol=1e-4, atol=1e-5)
    if first.loss is not None:
        torch.testing.assert_close(first.loss, second.loss, rtol=1e-4, atol=1e-6)


def test_gradient_checkpointing_matches(tester):
    config = tester.get_config()
    torch.manual_seed(0)
    model = MSMAEForPreTraining(config)
    inputs = tester.prepare_inputs(config)
    noise = noise_for(config, tester)
    model(**inputs, noise=noise).loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.activation_checkpointing_enable()
    model.train()
    assert model.msmae.encoder.layers[0].gradient_checkpointing
    model(**inputs, noise=noise).loss.backward()
    for name, grad in reference.items():
        torch.testing.assert_close(model.get_parameter(name).grad, grad, rtol=1e-4, atol=1e-6)


def test_init_weights(tester):
    config = tester.get_config(position_embedding_type="learned")
    model = MSMAEForPreTraining(config)
    for name, param in model.named_parameters():
        if "layernorm" in name or "decoder_norm" in name:
            expected = 1.0 if name.endswith("weight") else 0.0
            assert torch.all(param == expected), name
        elif name.endswith(".bias"):
            assert torch.all(param == 0), name
    assert 0.01 < model.decoder.mask_token.std() < 0.03
    assert 0.01 < model.msmae.encoder.layers[0].fc1.weight.std() < 0.03
    assert model.msmae.embeddings.position_encoding.table.std() > 0.01


def test_cubelet_tokens_start_at_the_position_encoding_scale():
    # With normal(0.02) on the keypoint projection, tokens started 5x smaller than the sinusoidal position
    # encoding and the encoder saw mostly position; Xavier (MAE's patch-embedding init) keeps them comparable.
    torch.manual_seed(0)
    config = MSMAEConfig(hidden_size=256, num_hidden_layers=1, num_attention_heads=4, intermediate_size=512)
    embeddings = MSMAEModel(config).embeddings
    for group in embeddings.streams.values():
        fan_in, fan_out = group.projection.in_features, group.projection.out_features
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert group.projection.weight.abs().max() <= bound
        assert group.projection.weight.std() > 0.8 * bound / 3**0.5
    with torch.no_grad():
        tokens = embeddings(*prepare_inputs(config, torch.randn(4, 64, config.num_keypoints, 2))[:3])
        position = embeddings.position_encoding(tokens.shape[2])
    content = (tokens - position).pow(2).mean().sqrt()
    assert content > 0.5 * position.pow(2).mean().sqrt()


def test_longer_clips_than_the_position_table(tester):
    config = tester.get_config(max_position_embeddings=8)
    model = MSMAEModel(config).eval()
    long_clip = torch.randn(1, 40, config.num_keypoints, 2)  # 20 cubelets > 8
    assert model(long_clip).last_hidden_state.shape == (1, 60, 32)
    learned = MSMAEModel(tester.get_config(max_position_embeddings=8, position_embedding_type="learned"))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        learned(long_clip)


def test_post_norm_variant_runs(tester):
    config = tester.get_config(norm_first=False)
    out = MSMAEForPreTraining(config)(**tester.prepare_inputs(config))
    assert torch.isfinite(out.loss)


def test_clip_shorter_than_one_cubelet(tester):
    config = tester.get_config(cubelet_size=4)
    model = MSMAEForPreTraining(config)
    out = model(torch.randn(2, 3, config.num_keypoints, 2))
    assert out.logits.shape[1] == 4 and out.mask.sum() == 0 and out.loss == 0


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"pose_values": torch.zeros(2, 8, 47, 2)}, "pose_values"),
        ({"pose_values": torch.zeros(2, 8, 48, 2), "attention_mask": torch.ones(2, 7)}, "attention_mask"),
        ({"pose_values": torch.zeros(2, 8, 48, 2), "keypoint_mask": torch.ones(2, 8, 40)}, "keypoint_mask"),
        ({"pose_values": None}, "pose_values"),
    ],
)
def test_bad_inputs_get_clear_errors(tester, inputs, message):
    model = MSMAEModel(tester.get_config())
    with pytest.raises(ValueError, match=message):
        model(**inputs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_load_in_half_precision(tester, tmp_path, dtype):
    config = tester.get_config()
    MSMAEForPreTraining(config).save_pretrained(tmp_path)
    model = MSMAEForPreTraining.from_pretrained(tmp_path, dtype=dtype)
    assert model.msmae.encoder.layers[0].fc1.weight.dtype == dtype
    inputs = tester.prepare_inputs(config)
    inputs["pose_values"] = inputs["pose_values"].to(dtype)
    out = model(**inputs)
    assert out.logits.dtype == dtype and torch.isfinite(out.loss)


def test_optimiser_steps_on_real_poses_lower_the_loss(tester):
    from msmae import sample_data
    from msmae.processing_msmae import MSMAEPoseProcessor

    files = sample_data.load_clips("asl-app-100")[:8]  # real signing shipped with msmae
    processor = MSMAEPoseProcessor(sampling="window", window_size=64, num_frames=64)
    inputs = processor(files, return_tensors="pt")
    config = tester.get_config()
    torch.manual_seed(0)
    model = MSMAEForPreTraining(config)
    noise = torch.rand(len(files), config.num_streams, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(**inputs, noise=noise).loss.item()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(40):
        optimizer.zero_grad()
        model(**inputs).loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model(**inputs, noise=noise).loss.item()
    assert after < 0.5 * before, (before, after)


def test_nan_at_missing_keypoints_and_padded_frames_never_reaches_outputs(tester):
    """NaN/inf where the mask says "missing" or "padding" must not poison anything (NaN x 0 is NaN)."""
    config = tester.get_config()
    inputs = tester.prepare_inputs(config)
    poisoned = {k: v.clone() for k, v in inputs.items()}
    poisoned["pose_values"][~poisoned["keypoint_mask"]] = float("nan")
    poisoned["pose_values"][1, tester.num_frames - 4 :] = float("inf")
    noise = noise_for(config, tester)

    torch.manual_seed(0)
    pretraining = MSMAEForPreTraining(config)
    clean = pretraining(**inputs, noise=noise)
    dirty = pretraining(**poisoned, noise=noise)
    torch.testing.assert_close(dirty.loss, clean.loss)
    real_frames = inputs["attention_mask"].bool()
    torch.testing.assert_close(dirty.logits[:, : tester.num_frames][real_frames], clean.logits[:, : tester.num_frames][real_frames])
    dirty.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in pretraining.parameters() if p.grad is not None)

    torch.manual_seed(0)
    encoder = MSMAEModel(config).eval()
    clean, dirty = encoder(**inputs), encoder(**poisoned)
    real_tokens = clean.attention_mask.bool()
    torch.testing.assert_close(dirty.last_hidden_state[real_tokens], clean.last_hidden_state[real_tokens])
    torch.testing.assert_close(dirty.pooler_output, clean.pooler_output)

    for linear_probe in (False, True):
        classifier = MSMAEForSignClassification(tester.get_config(linear_probe=linear_probe)).eval()
        torch.testing.assert_close(classifier(**poisoned).logits, classifier(**inputs).logits)


def test_token_mean_loss_averages_each_masked_token_then_the_tokens(tester):
    config = tester.get_config(loss_normalization="token")
    torch.manual_seed(0)
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    bool_masked_pos = torch.zeros(tester.batch_size, 3, tester.num_cubelets(config), dtype=torch.bool)
    for stream, cubelets in enumerate(([0, 4], [2, 3], [1, 3])):  # two per stream, inside the padded clip's 5
        bool_masked_pos[:, stream, cubelets] = True
    out = model(**inputs, bool_masked_pos=bool_masked_pos)

    # By hand: each masked (stream, cubelet) token's mean squared error over its detected keypoints of real frames.
    S, sizes, frames = config.cubelet_size, config.stream_num_keypoints, tester.num_frames
    valid = inputs["keypoint_mask"] & inputs["attention_mask"].bool().unsqueeze(-1)
    token_losses = []
    for b, stream, cubelet in out.mask.nonzero().tolist():
        first = sum(sizes[:stream])
        keypoints = slice(first, first + sizes[stream])
        time = slice(cubelet * S, min((cubelet + 1) * S, frames))
        detected = valid[b, time, keypoints]
        if detected.any():
            error = ((out.logits[b, time, keypoints] - inputs["pose_values"][b, time, keypoints]) ** 2).mean(-1)
            token_losses.append(error[detected].mean())
    torch.testing.assert_close(out.loss, torch.stack(token_losses).mean())

    # The per-coordinate default weighs hand tokens (21 keypoints) more than body ones (6): a different number.
    model.config.loss_normalization = "coordinate"
    assert not torch.allclose(model(**inputs, bool_masked_pos=bool_masked_pos).loss, out.loss)


@pytest.mark.parametrize("stream_type_embedding", [False, True])
def test_swapping_hands_changes_the_encoder_only_with_stream_type_embeddings(tester, stream_type_embedding):
    config = tester.get_config(stream_type_embedding=stream_type_embedding)
    torch.manual_seed(0)
    model = MSMAEModel(config).eval()
    assert (model.embeddings.stream_type_embeddings is not None) == stream_type_embedding
    inputs = tester.prepare_inputs(config)
    left, right = slice(6, 27), slice(27, 48)  # body (6), left hand (21), right hand (21)
    swapped = {k: v.clone() for k, v in inputs.items()}
    for key in ("pose_values", "keypoint_mask"):
        swapped[key][:, :, left], swapped[key][:, :, right] = inputs[key][:, :, right], inputs[key][:, :, left]
    original, mirrored = model(**inputs), model(**swapped)
    a, b = model.stream_tokens(original.last_hidden_state), model.stream_tokens(mirrored.last_hidden_state)
    if stream_type_embedding:
        assert not torch.allclose(a["left_hand"], b["right_hand"], atol=1e-3)
        assert not torch.allclose(original.pooler_output, mirrored.pooler_output, atol=1e-3)
    else:  # the paper's model: both hands share a projection and positions, so a swap only permutes tokens
        torch.testing.assert_close(a["left_hand"], b["right_hand"])
        torch.testing.assert_close(a["body"], b["body"])
        torch.testing.assert_close(original.pooler_output, mirrored.pooler_output)


def test_checkpoints_with_the_old_decoder_layer_names_load(tester, tmp_path):
    from safetensors.torch import load_file, save_file

    model = MSMAEForPreTraining(tester.get_config())
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    old = {k.replace("decoder.layers.", "decoder.encoder.layers."): v for k, v in weights.items()}
    save_file(old, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = MSMAEForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    torch.testing.assert_close(loaded.decoder.layers[0].fc1.weight, model.decoder.layers[0].fc1.weight)


def test_an_edited_config_is_validated_where_it_is_used(tester, tmp_path):
    config = tester.get_config()
    config.mask_ratio = 1.5
    with pytest.raises(ValueError, match="mask_ratio"):
        config.validate()
    with pytest.raises(ValueError, match="mask_ratio"):
        MSMAEForPreTraining(config)
    with pytest.raises(ValueError, match="mask_ratio"):
        config.save_pretrained(tmp_path)


def test_masking_geometry_is_the_configs(tester):
    config = tester.get_config()
    assert config.num_cubelets(13) == 7 and config.noise_shape(13) == (3, 7)
    # round(0.5 * 7) = 4 masked, 3 visible; a 1-cubelet clip masks nothing; the static slot count is the max.
    assert [config.num_masked_cubelets(n) for n in (0, 1, 2, 7)] == [0, 0, 1, 4]
    assert config.num_visible_cubelets(7) == 3
    model = MSMAEModel(config).eval()
    out = model(**tester.prepare_inputs(config), noise=noise_for(config, tester))
    assert out.visible_indices.shape == (tester.batch_size, 3, config.num_visible_cubelets(7))
    assert out.mask.sum(-1)[:, 0].tolist() == [4, 2, 4]  # the padded clip has 5 real cubelets: round(2.5) = 2


def test_static_visible_slots_give_the_same_results_as_the_batchs_own_count(tester):
    """With `noise` the encoder gets the config's static slot count even when every clip is shorter than the padded
    length (more slots than any clip needs); the extra slots must change nothing."""
    config = tester.get_config()
    torch.manual_seed(0)
    model = MSMAEForPreTraining(config).eval()
    inputs = tester.prepare_inputs(config)
    inputs["attention_mask"][:, 6:] = 0  # every clip padded: 3 real cubelets of 7, round(1.5) = 2 masked, 1 visible
    static = model(**inputs, noise=noise_for(config, tester))
    explicit = model(**inputs, bool_masked_pos=static.mask.bool())  # slots = the batch's largest visible count
    assert torch.equal(explicit.mask, static.mask)
    torch.testing.assert_close(explicit.loss, static.loss)
    torch.testing.assert_close(explicit.logits, static.logits)
    encoded = model.msmae(**inputs, noise=noise_for(config, tester))
    assert encoded.visible_indices.shape[-1] == config.num_visible_cubelets(7) == 3
    assert encoded.attention_mask.view(tester.batch_size, 3, -1).sum(-1).tolist() == [[1, 1, 1]] * tester.batch_size
    assert model.msmae(**inputs, bool_masked_pos=static.mask.bool()).visible_indices.shape[-1] == 1

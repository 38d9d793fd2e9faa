"""SignTranslationModel: MS-MAE encoder + projection + mBART (tiny random configs, nothing downloaded)."""

import json
import logging
import os

import pytest
import torch
from conftest import (
    DE_DE,
    TRANSLATION_VOCAB as VOCAB,
    run_without_msmae,
    tiny_config,
    tiny_text_config,
    tiny_translation_model,
    translation_inputs,
)
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSeq2SeqLM,
    BertConfig,
    MBartConfig,
    MBartForConditionalGeneration,
    PreTrainedTokenizerFast,
)

from msmae import MSMAEConfig, MSMAEForPreTraining, MSMAEModel
from msmae.configuration_sign_translation import SignTranslationConfig
from msmae.modeling_sign_translation import SignTranslationModel, load_pose_encoder

pytestmark = pytest.mark.usefixtures("one_thread")


DECODER_INPUTS = torch.tensor([[2, DE_DE, 5, 6, 7], [2, DE_DE, 8, 9, 1]])


def one_clip(inputs, index, frames):
    return {key: value[index : index + 1, :frames] for key, value in inputs.items()}


@pytest.mark.parametrize("fusion", ["concat", "mean"])
def test_shapes_of_both_fusions(fusion):
    model = tiny_translation_model(fusion=fusion)
    inputs = translation_inputs(frames=(11, 7))  # 6 cubelets of 2 frames for the longer clip, 3 streams
    with torch.no_grad():
        outputs = model(**inputs, decoder_input_ids=DECODER_INPUTS)
        encoded = model.encode(**inputs)
    assert outputs.logits.shape == (2, 5, VOCAB)
    length = 3 * 6 if fusion == "concat" else 6
    assert outputs.encoder_last_hidden_state.shape == (2, length, 16)
    # Token mask: concat packs each clip's real tokens first (7 frames -> 4 cubelets in each of 3 streams).
    expected = [length, 3 * 4 if fusion == "concat" else 4]
    assert encoded.attention_mask.sum(1).tolist() == expected
    assert encoded.attention_mask[1, : expected[1]].all() and not encoded.attention_mask[1, expected[1] :].any()


@pytest.mark.parametrize("fusion", ["concat", "mean"])
def test_padding_does_not_change_a_clip(fusion):
    model = tiny_translation_model(fusion=fusion)
    inputs = translation_inputs(frames=(12, 5))
    with torch.no_grad():
        batched = model(**inputs, decoder_input_ids=DECODER_INPUTS)
        alone = model(**one_clip(inputs, 1, 5), decoder_input_ids=DECODER_INPUTS[1:])
        real = int(model.encode(**inputs).attention_mask[1].sum())
    torch.testing.assert_close(batched.logits[1], alone.logits[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        batched.encoder_last_hidden_state[1, :real], alone.encoder_last_hidden_state[0], atol=1e-5, rtol=1e-4
    )


def test_concat_keeps_stream_order_of_real_tokens():
    model = tiny_translation_model()
    hidden = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 12, 1).expand(-1, -1, 32)
    mask = torch.tensor([[1] * 12, [1, 1, 0, 0] * 3])
    fused, fused_mask = model.fuse_streams(hidden, mask)
    assert fused[1, :6, 0].tolist() == [12, 13, 16, 17, 20, 21]  # streams 0, 1, 2; their first two cubelets
    assert fused_mask.tolist() == [[1] * 12, [1] * 6 + [0] * 6]


def test_mean_fusion_averages_streams_per_time_step():
    model = tiny_translation_model(fusion="mean")
    hidden = torch.randn(1, 3 * 4, 32)
    fused, fused_mask = model.fuse_streams(hidden, torch.ones(1, 12, dtype=torch.long))
    torch.testing.assert_close(fused[0], hidden[0].view(3, 4, 32).mean(0))
    assert fused_mask.tolist() == [[1, 1, 1, 1]]


def test_lora_only_in_the_decoder_and_encoder_side_trainable():
    model = tiny_translation_model(randomize_adapters=False)
    decoder = model.text_model.get_decoder()
    adapters = model.adapter_parameter_names()
    # A and B for q, k, v, out of self- and cross-attention in each of the 2 decoder layers.
    assert len(adapters) == 2 * 4 * 2 * 2
    assert all(name.startswith("text_model.model.decoder.layers.") for name in adapters)
    assert {name.split(".")[5] for name in adapters} == {"self_attn", "encoder_attn"}
    decoder_names = {f"text_model.model.decoder.{n}" for n, _ in decoder.named_parameters()}
    shared = model.text_model.get_input_embeddings().weight
    for name, parameter in model.named_parameters():
        if name.startswith(("pose_encoder.", "projection.")):
            assert parameter.requires_grad, name
        elif name.startswith("text_model.model.encoder."):
            # The token embedding is shared with the decoder (the encoder reads inputs_embeds, never ids).
            assert parameter.requires_grad or parameter is shared, name
        elif name in decoder_names or name.startswith("text_model.lm_head"):
            assert parameter.requires_grad == (name in adapters), name
    assert not shared.requires_grad
    assert sum(p.requires_grad for p in model.text_model.get_encoder().parameters()) == sum(
        1 for p in model.text_model.get_encoder().parameters() if p is not shared
    )

    # Gradients reach the projection, the text encoder and the adapters (B; A's gradient is 0 while B = 0).
    model.train()
    loss = model(**translation_inputs(), labels=torch.tensor([[DE_DE, 5, 6, 2], [DE_DE, 8, 2, -100]])).loss
    loss.backward()
    assert model.projection.weight.grad.abs().sum() > 0
    assert model.pose_encoder.embeddings.streams["body"].projection.weight.grad.abs().sum() > 0
    assert model.text_model.get_encoder().layers[0].fc1.weight.grad.abs().sum() > 0
    lora_b = decoder.layers[0].encoder_attn.q_proj.lora_B["default"].weight
    assert lora_b.grad.abs().sum() > 0
    assert decoder.layers[0].encoder_attn.q_proj.base_layer.weight.grad is None


def test_frozen_pose_encoder():
    model = tiny_translation_model(freeze_pose_encoder=True)
    assert not any(p.requires_grad for p in model.pose_encoder.parameters())
    assert model.projection.weight.requires_grad
    model.train()
    assert not model.pose_encoder.training and model.projection.training
    model(**translation_inputs(), labels=torch.tensor([[DE_DE, 5, 2], [DE_DE, 8, 2]])).loss.backward()
    assert all(p.grad is None for p in model.pose_encoder.parameters())
    assert model.projection.weight.grad is not None


def test_loss_ignores_padded_labels():
    model = tiny_translation_model()
    inputs = translation_inputs()
    labels = torch.tensor([[DE_DE, 5, 6, 2], [DE_DE, 8, 2, -100]])
    with torch.no_grad():
        outputs = model(**inputs, labels=labels)
    # mBART decoder inputs: labels shifted right, each row's last real token (</s>) moved to the front.
    decoder_input_ids = torch.tensor([[2, DE_DE, 5, 6], [2, DE_DE, 8, 2]])
    with torch.no_grad():
        logits = model(**inputs, decoder_input_ids=decoder_input_ids).logits
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(outputs.loss, expected)
    torch.testing.assert_close(outputs.logits, logits)


def test_generate_forces_the_target_language_and_limits_length():
    model = tiny_translation_model()
    model.generation_config.forced_bos_token_id = DE_DE
    inputs = translation_inputs()
    with torch.no_grad():
        generated = model.generate(**inputs, num_beams=3, max_length=9, do_sample=False)
        greedy = model.generate(**inputs, num_beams=1, max_new_tokens=4)
    assert generated.shape[0] == 2 and generated.shape[1] <= 9
    assert generated[:, 0].tolist() == [2, 2] and generated[:, 1].tolist() == [DE_DE, DE_DE]
    assert greedy.shape[1] <= 5 and greedy[:, 1].tolist() == [DE_DE, DE_DE]
    # Greedy decoding (encoder run once, cached decoder) picks at every step the argmax of forward() on the prefix.
    with torch.no_grad():
        sequences = model.generate(**inputs, num_beams=1, max_new_tokens=5, forced_eos_token_id=None)
        logits = model(**inputs, decoder_input_ids=sequences[:, :-1]).logits
    assert sequences.shape[1] > 3
    chosen = logits[:, 1:].argmax(-1)  # steps after the forced language token
    real = torch.cumsum((sequences[:, 2:] == 2).long(), 1) - (sequences[:, 2:] == 2).long() == 0  # up to </s>
    assert torch.equal(chosen[real], sequences[:, 2:][real])


def test_set_target_lang_uses_the_tokenizer():
    from tokenizers import Tokenizer, models

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "hallo": 4, "de_DE": DE_DE}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")), unk_token="<unk>", pad_token="<pad>"
    )
    model = tiny_translation_model()
    model.set_target_lang("de_DE", tokenizer)
    assert model.generation_config.forced_bos_token_id == DE_DE and model.config.target_lang == "de_DE"
    with pytest.raises(ValueError, match="no token for target language 'xx_XX'"):
        model.set_target_lang("xx_XX", tokenizer)


def test_save_load_round_trip_keeps_adapters(tmp_path):
    model = tiny_translation_model()
    model.generation_config.forced_bos_token_id = DE_DE
    inputs = translation_inputs()
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        keys = set(weights.keys())
    assert set(model.adapter_parameter_names()) <= keys
    reloaded, info = SignTranslationModel.from_pretrained(tmp_path, output_loading_info=True)
    reloaded.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert reloaded.generation_config.forced_bos_token_id == DE_DE
    assert [n for n, p in reloaded.named_parameters() if p.requires_grad] == [
        n for n, p in model.named_parameters() if p.requires_grad
    ]
    with torch.no_grad():
        logits = model(**inputs, decoder_input_ids=DECODER_INPUTS).logits
        torch.testing.assert_close(reloaded(**inputs, decoder_input_ids=DECODER_INPUTS).logits, logits)
        generated = model.generate(**inputs, num_beams=3, max_length=10)
        assert torch.equal(reloaded.generate(**inputs, num_beams=3, max_length=10), generated)


def test_merged_adapters_give_the_same_outputs(tmp_path):
    model = tiny_translation_model()
    inputs = translation_inputs()
    with torch.no_grad():
        logits = model(**inputs, decoder_input_ids=DECODER_INPUTS).logits
        generated = model.generate(**inputs, num_beams=3, max_length=10)
        model.merge_adapters()
        assert model.config.lora_r == 0 and not model.adapter_parameter_names()
        merged = model(**inputs, decoder_input_ids=DECODER_INPUTS).logits
        torch.testing.assert_close(merged, logits, atol=1e-5, rtol=1e-4)
        assert torch.equal(model.generate(**inputs, num_beams=3, max_length=10), generated)
    # Exported without peft layers; reloads as a plain decoder (trained in full if training continues).
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        assert not any("lora_" in key or "base_layer" in key for key in weights.keys())
    reloaded = SignTranslationModel.from_pretrained(tmp_path).eval()
    assert all(p.requires_grad for p in reloaded.text_model.get_decoder().parameters())
    with torch.no_grad():
        reloaded_logits = reloaded(**inputs, decoder_input_ids=DECODER_INPUTS).logits
        torch.testing.assert_close(reloaded_logits, logits, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        reloaded.merge_adapters()


def test_from_pretrained_parts(tmp_path):
    torch.manual_seed(0)
    pretraining = MSMAEForPreTraining(tiny_config())
    pretraining.save_pretrained(tmp_path / "pose")
    mbart = MBartForConditionalGeneration(tiny_text_config())
    mbart.generation_config.num_beams = 4
    mbart.generation_config.max_length = 50
    mbart.save_pretrained(tmp_path / "text")

    model = SignTranslationModel.from_pretrained_parts(
        tmp_path / "pose", tmp_path / "text", fusion="mean", freeze_pose_encoder=True, lora_r=8
    )
    pose_state = pretraining.msmae.state_dict()
    for name, value in model.pose_encoder.state_dict().items():
        torch.testing.assert_close(value, pose_state[name], msg=name)
    text_state = mbart.state_dict()
    for name, value in model.text_model.state_dict().items():
        if "lora_" not in name:
            torch.testing.assert_close(value, text_state[name.replace(".base_layer", "")], msg=name)
    assert (model.generation_config.num_beams, model.generation_config.max_length) == (4, 50)
    assert model.config.fusion == "mean" and model.config.lora_r == 8 and model.config.freeze_pose_encoder
    assert model.config.encoder is model.pose_encoder.config and model.config.text_config is model.text_model.config
    assert not any(p.requires_grad for p in model.pose_encoder.parameters())


def test_face_stream_added_to_a_body_hands_checkpoint(tmp_path, caplog):
    torch.manual_seed(0)
    MSMAEForPreTraining(tiny_config()).save_pretrained(tmp_path)
    checkpoint = MSMAEModel.from_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING, logger="msmae"):
        encoder = load_pose_encoder(tmp_path, streams=["body", "left_hand", "right_hand", "face"])
    assert "Stream(s) ['face'] are not in the pose encoder checkpoint" in caplog.text
    assert "newly initialised" in caplog.text
    assert encoder.config.streams == ["body", "left_hand", "right_hand", "face"] and encoder.config.num_keypoints == 160
    old = checkpoint.state_dict()
    for name, value in encoder.state_dict().items():
        if ".face." in name:
            assert name not in old
        else:
            torch.testing.assert_close(value, old[name], msg=name)
    assert encoder.embeddings.streams["face"].projection.weight.abs().sum() > 0  # initialised, not left empty
    with torch.no_grad():
        assert encoder(**translation_inputs(num_keypoints=160)).last_hidden_state.shape == (2, 4 * 6, 32)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="msmae"):
        load_pose_encoder(tmp_path)  # same streams: nothing to report
    assert "newly initialised" not in caplog.text


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fusion": "sum"}, "`fusion` must be one of"),
        ({"lora_r": -1}, "`lora_r` must be 0"),
        ({"lora_target_modules": []}, "`lora_target_modules` is empty"),
        ({"text_config": BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2)}, "encoder-decoder"),
    ],
)
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SignTranslationConfig(**{"encoder": tiny_config(), "text_config": tiny_text_config(), **kwargs})


def test_clip_longer_than_the_text_positions_gets_a_clear_error():
    model = tiny_translation_model(text_config=tiny_text_config(max_position_embeddings=16))
    with pytest.raises(ValueError, match="24 text-encoder tokens but the text model has 16 positions.*at most 10 fr"):
        model.encode(**translation_inputs(frames=(16, 4)))  # 8 cubelets x 3 streams
    mean = tiny_translation_model(fusion="mean", text_config=tiny_text_config(max_position_embeddings=16))
    assert mean.encode(**translation_inputs(frames=(16, 4))).last_hidden_state.shape[1] == 8


def test_config_round_trip_and_nested_parts(tmp_path):
    config = SignTranslationConfig(encoder=tiny_config(streams=["body", "right_hand"]), text_config=tiny_text_config(),
                                   fusion="mean", target_lang="de_DE", lora_target_modules=["q_proj", "v_proj"])
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "msmae_translation"
    assert saved["encoder"]["model_type"] == "msmae" and saved["text_config"]["model_type"] == "mbart"
    loaded = SignTranslationConfig.from_pretrained(tmp_path)
    assert isinstance(loaded.encoder, MSMAEConfig) and isinstance(loaded.text_config, MBartConfig)
    assert loaded.encoder.streams == ["body", "right_hand"] and loaded.text_config.d_model == 16
    assert (loaded.fusion, loaded.target_lang, loaded.lora_target_modules) == ("mean", "de_DE", ["q_proj", "v_proj"])
    assert loaded.get_text_config(decoder=True) is loaded.text_config


@pytest.fixture
def registered():
    """The registration `msmae/__init__.py` does for the translation model (repeated here; idempotent)."""
    AutoConfig.register("msmae_translation", SignTranslationConfig, exist_ok=True)
    AutoModel.register(SignTranslationConfig, SignTranslationModel, exist_ok=True)
    AutoModelForSeq2SeqLM.register(SignTranslationConfig, SignTranslationModel, exist_ok=True)
    SignTranslationConfig.register_for_auto_class()
    SignTranslationModel.register_for_auto_class("AutoModelForSeq2SeqLM")


def test_auto_classes_resolve(registered):
    config = SignTranslationConfig(encoder=tiny_config(), text_config=tiny_text_config(), lora_r=2)
    assert isinstance(AutoConfig.for_model("msmae_translation"), SignTranslationConfig)
    assert type(AutoModelForSeq2SeqLM.from_config(config)) is SignTranslationModel
    assert type(AutoModel.from_config(config)) is SignTranslationModel


FRESH_PROCESS_SCRIPT = """
import sys, torch
from transformers import AutoModelForSeq2SeqLM
model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    generated = model.generate(**inputs, num_beams=2, max_length=8)
print(type(model).__module__.split('.')[0], type(model).__name__)
torch.save(generated, sys.argv[3])
"""


@pytest.mark.slow
def test_fresh_process_loads_with_trust_remote_code(registered, tmp_path):
    model = tiny_translation_model()
    model.generation_config.forced_bos_token_id = DE_DE
    model.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForSeq2SeqLM"] == "modeling_sign_translation.SignTranslationModel"
    assert {"modeling_sign_translation.py", "configuration_sign_translation.py", "modeling_msmae.py",
            "configuration_msmae.py"} <= set(os.listdir(tmp_path / "ckpt"))
    inputs = translation_inputs()
    torch.save(inputs, tmp_path / "inputs.pt")
    result = run_without_msmae(FRESH_PROCESS_SCRIPT, tmp_path / "ckpt", tmp_path / "inputs.pt", tmp_path / "out.pt",
                               cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["transformers_modules", "SignTranslationModel"]
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "out.pt"), model.generate(**inputs, num_beams=2, max_length=8))


def test_an_edited_config_is_validated_where_it_is_used():
    config = SignTranslationConfig(encoder=tiny_config(), text_config=tiny_text_config(), lora_r=0)
    config.fusion = "sum"
    with pytest.raises(ValueError, match="fusion"):
        SignTranslationModel(config)
    config.fusion = "mean"
    config.encoder.mask_ratio = 0.0  # the nested pose config is checked too
    with pytest.raises(ValueError, match="mask_ratio"):
        config.validate()


def test_frozen_pose_encoder_stays_frozen_after_loading(tmp_path):
    tiny_translation_model(freeze_pose_encoder=True).save_pretrained(tmp_path)
    loaded = SignTranslationModel.from_pretrained(tmp_path)
    assert not any(p.requires_grad for p in loaded.pose_encoder.parameters())
    loaded.train()
    assert not loaded.pose_encoder.training and loaded.projection.training

"""PyTorch MS-MAE sign language translation: pose encoder -> projection -> seq2seq text model with a LoRA decoder."""

from dataclasses import dataclass

import torch
from torch import nn

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import logging

from .configuration_msmae import MSMAEConfig
from .configuration_sign_translation import DEFAULT_TEXT_MODEL, SignTranslationConfig
from .hub_packaging import HubModelMixin
from .embeddings import masked_mean
from .modeling_msmae import MSMAEModel, TrainableFromConfigMixin

logger = logging.get_logger(__name__)


@dataclass
class SignTranslationEncoderOutput(BaseModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, d_model)`):
        Output of the text encoder, read by the decoder's cross-attention.
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
        1 for the text encoder's real tokens, 0 for padding (fused from the pose encoder's token mask).
    hidden_states, attentions: of the text encoder, when requested.
    """

    attention_mask: torch.LongTensor | None = None


def load_pose_encoder(pretrained_model_name_or_path, streams=None, **kwargs) -> MSMAEModel:
    """Load the MS-MAE encoder of a checkpoint (`MSMAEModel`, `MSMAEForPreTraining`, ... all work), optionally with
    other `streams` than it was trained on.

    A stream the checkpoint lacks (e.g. `"face"` added to a body+hands model for the face ablation) gets a freshly
    initialised input projection and cubelet convolution, and a warning names it; streams the checkpoint has but
    `streams` omits are dropped. Everything else (Transformer layers, position encoding) is loaded.
    """
    config = MSMAEConfig.from_pretrained(
        pretrained_model_name_or_path, **{k: v for k, v in kwargs.items() if k in ("cache_dir", "revision", "token")}
    )
    trained = list(config.streams)
    config.use_cls_token = False  # a fine-tuned classifier's [CLS] token is not part of the pose encoder
    if streams is not None:
        config.streams = list(streams)
        config.__post_init__()  # validate the new stream list
    model, info = MSMAEModel.from_pretrained(
        pretrained_model_name_or_path, config=config, output_loading_info=True, **kwargs
    )
    new = [name for name in config.streams if name not in trained]
    if new:
        logger.warning(
            f"Stream(s) {new} are not in the pose encoder checkpoint {pretrained_model_name_or_path} (trained on "
            f"{trained}): their input projection and cubelet convolution are newly initialised and will be learned "
            "from scratch."
        )
    groups = {config.projection_group(name) for name in new}
    unexpected_missing = [
        key for key in info["missing_keys"] if not any(key.startswith(f"embeddings.streams.{g}.") for g in groups)
    ]
    if unexpected_missing:
        logger.warning(f"Pose encoder weights missing from {pretrained_model_name_or_path}: {unexpected_missing}.")
    return model


class _PoseToTextEncoder:
    """What `generate()` runs once before decoding (`SignTranslationModel.encode`). Not a module: it owns no weights."""

    main_input_name = "pose_values"

    def __init__(self, model: "SignTranslationModel"):
        self.forward = model.encode

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class SignTranslationPreTrainedModel(HubModelMixin, PreTrainedModel):
    config_class = SignTranslationConfig
    config: SignTranslationConfig
    base_model_prefix = "sign_translation"
    main_input_name = "pose_values"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False  # the pose encoder passes 4D padding masks
    # mBART's loss is a mean over the batch's tokens and ignores `num_items_in_batch`.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        # Only the projection is this model's own; the pose encoder and the text model initialise themselves.
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.encoder.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)


class SignTranslationModel(TrainableFromConfigMixin, SignTranslationPreTrainedModel, GenerationMixin):
    """Gloss-free sign language translation with an MS-MAE encoder, as in the paper.

    Pose clip -> MS-MAE encoder (pretrained; frozen or fine-tuned) -> stream fusion (`config.fusion`) -> linear
    projection to the text model's width -> the text model's encoder (fine-tuned in full, fed `inputs_embeds`) -> its
    decoder (frozen, with LoRA adapters on its attention projections) -> text.

    Build one from pretrained parts with `from_pretrained_parts`; a saved model (adapters included, in one safetensors
    file) loads with `from_pretrained`. Inputs follow the MS-MAE contract (`pose_values`, `keypoint_mask`,
    `attention_mask` over frames) plus `labels` (target token ids, -100 for padding) for training.

    Args:
        config (`SignTranslationConfig`): model configuration.
        pose_encoder (`MSMAEModel`, *optional*): an already loaded pose encoder (else built from `config.encoder`).
        text_model (`PreTrainedModel`, *optional*): an already loaded seq2seq text model (else built from
            `config.text_config` with `AutoModelForSeq2SeqLM.from_config`).
    """

    def __init__(self, config: SignTranslationConfig, pose_encoder: MSMAEModel | None = None, text_model=None):
        config.validate()  # a config edited after construction is checked where it is used
        super().__init__(config)
        if pose_encoder is None:
            config.encoder.use_cls_token = False
            pose_encoder = MSMAEModel(config.encoder)
        self.pose_encoder = pose_encoder
        if self.pose_encoder.cls_token is not None:
            raise ValueError("The pose encoder must not have a [CLS] token: build it with MSMAEModel(config).")
        self.projection = nn.Linear(config.encoder.hidden_size, config.text_config.d_model)
        if text_model is None:
            text_model = AutoModelForSeq2SeqLM.from_config(config.text_config)
        self.text_model = text_model
        # One config object per part, shared with the composite config, so that edits stay in sync (as
        # SpeechEncoderDecoderModel does).
        self.config.encoder._attn_implementation = self.pose_encoder.config._attn_implementation
        self.config.text_config._attn_implementation = self.text_model.config._attn_implementation
        self.pose_encoder.config = self.config.encoder
        self.text_model.config = self.config.text_config
        if config.lora_r > 0:
            self._add_decoder_adapters()
        self.post_init()
        self.set_trainable_parameters()

    # ---- parts ------------------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained_parts(
        cls,
        pose_encoder_name_or_path=None,
        text_model_name_or_path: str = DEFAULT_TEXT_MODEL,
        streams=None,
        target_lang: str | None = None,
        tokenizer=None,
        pose_encoder_config: MSMAEConfig | None = None,
        load_kwargs: dict | None = None,
        **config_kwargs,
    ) -> "SignTranslationModel":
        """Assemble a model from a pretrained MS-MAE checkpoint and a pretrained seq2seq text model.

        Args:
            pose_encoder_name_or_path: an MS-MAE checkpoint (any head). `None` starts from a randomly initialised
                encoder built from `pose_encoder_config` (or the default `MSMAEConfig`).
            text_model_name_or_path: a seq2seq model name or folder (mBART-50 by default). Its generation settings
                (beam count, maximum length) become this model's.
            streams: the pose streams to use, if not the checkpoint's (see `load_pose_encoder` for added streams).
            target_lang: the target language code (e.g. `"de_DE"`), forced as the first generated token. Its id is
                looked up in `tokenizer`, or in the tokenizer saved with the text model.
            load_kwargs: passed to every `from_pretrained` call (`cache_dir`, `revision`, `token`, `dtype`, ...).
            config_kwargs: `SignTranslationConfig` fields (`fusion`, `freeze_pose_encoder`, `lora_r`, ...).
        """
        load_kwargs = dict(load_kwargs or {})
        if pose_encoder_name_or_path is not None:
            pose_encoder = load_pose_encoder(pose_encoder_name_or_path, streams=streams, **load_kwargs)
        else:
            encoder_config = pose_encoder_config if pose_encoder_config is not None else MSMAEConfig()
            if streams is not None:
                encoder_config.streams = list(streams)
                encoder_config.__post_init__()
            pose_encoder = MSMAEModel(encoder_config)
        text_model = AutoModelForSeq2SeqLM.from_pretrained(text_model_name_or_path, **load_kwargs)
        config = SignTranslationConfig(encoder=pose_encoder.config, text_config=text_model.config, **config_kwargs)
        model = cls(config, pose_encoder=pose_encoder, text_model=text_model)
        model.generation_config = GenerationConfig.from_dict(text_model.generation_config.to_dict())
        target_lang = target_lang or config.target_lang
        if target_lang is not None:
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(
                    text_model_name_or_path, **{k: v for k, v in load_kwargs.items() if k != "dtype"}
                )
            model.set_target_lang(target_lang, tokenizer)
        return model

    def set_target_lang(self, target_lang: str, tokenizer) -> None:
        """Generate in `target_lang`: its language token (from `tokenizer`) is forced as the first generated token."""
        token_id = tokenizer.convert_tokens_to_ids(target_lang)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(
                f"The tokenizer has no token for target language {target_lang!r}; use one of its language codes "
                f"(mBART-50: de_DE, en_XX, zh_CN, ...)."
            )
        self.config.target_lang = target_lang
        self.generation_config.forced_bos_token_id = token_id

    def _add_decoder_adapters(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model  # here: peft is needed only where adapters are built
        from peft.tuners.tuners_utils import BaseTunerLayer

        lora_config = LoraConfig(
            r=self.config.lora_r,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=list(self.config.lora_target_modules),
            bias="none",
        )
        decoder = self.text_model.get_decoder()
        inject_adapter_in_model(lora_config, decoder)
        # peft initialised the adapters (B = 0: training starts from the pretrained decoder); keep post_init off them.
        for module in decoder.modules():
            if isinstance(module, BaseTunerLayer):
                for child in module.modules():
                    child._is_hf_initialized = True

    def adapter_parameter_names(self) -> list[str]:
        """Names of the LoRA parameters (all inside the text decoder)."""
        return [name for name, _ in self.named_parameters() if ".lora_" in name]

    def set_trainable_parameters(self) -> None:
        """Apply the training regime of the config: projection and text encoder trainable; pose encoder trainable
        unless `freeze_pose_encoder`; decoder frozen with trainable LoRA adapters (or trainable when `lora_r=0`).

        The text model's token embedding, shared by its encoder, decoder and output layer, belongs to the decoder
        here (the encoder reads `inputs_embeds` and never uses it), so it is frozen along with the decoder.
        """
        self.pose_encoder.requires_grad_(not self.config.freeze_pose_encoder)
        self.projection.requires_grad_(True)
        self.text_model.get_encoder().requires_grad_(True)
        adapters = self.config.lora_r > 0
        decoder_side = [self.text_model.get_decoder(), self.text_model.get_output_embeddings()]
        for module in decoder_side:
            if module is not None:
                module.requires_grad_(not adapters)
        if adapters:
            for name, parameter in self.text_model.get_decoder().named_parameters():
                if ".lora_" in name:
                    parameter.requires_grad_(True)
        self.train(self.training)  # frozen_modules() stay in eval mode

    def frozen_modules(self) -> list[nn.Module]:
        return [self.pose_encoder] if self.config.freeze_pose_encoder else []

    @torch.no_grad()
    def merge_adapters(self) -> "SignTranslationModel":
        """Merge the LoRA adapters into the decoder's weights and remove them (for export: a plain decoder, same
        outputs). The config's `lora_r` becomes 0, so the saved model reloads without adapters."""
        if self.config.lora_r == 0:
            raise ValueError("This model has no LoRA adapters to merge (`config.lora_r` is 0).")
        from peft.tuners.tuners_utils import BaseTunerLayer

        decoder = self.text_model.get_decoder()
        layers = [(name, module) for name, module in decoder.named_modules() if isinstance(module, BaseTunerLayer)]
        for name, module in layers:
            module.merge()
            parent_name, _, child_name = name.rpartition(".")
            parent = decoder.get_submodule(parent_name) if parent_name else decoder
            setattr(parent, child_name, module.get_base_layer())
        if hasattr(decoder, "peft_config"):
            del decoder.peft_config
        self.config.lora_r = 0
        self.set_trainable_parameters()
        return self

    # ---- encoding ---------------------------------------------------------------------------------------------------

    def get_encoder(self, modality=None):
        return _PoseToTextEncoder(self)

    def get_decoder(self):
        return self.text_model.get_decoder()

    def get_input_embeddings(self):
        return self.text_model.get_input_embeddings()

    def get_output_embeddings(self):
        return self.text_model.get_output_embeddings()

    def fuse_streams(self, hidden_states: torch.Tensor, token_mask: torch.Tensor):
        """Turn the pose encoder's output `(B, num_streams * L, H)` and token mask into the text encoder's input
        sequence and mask, by `config.fusion` (see `SignTranslationConfig`)."""
        num_streams = self.config.encoder.num_streams
        if self.config.fusion == "mean":
            tokens = hidden_states.unflatten(1, (num_streams, -1))
            mask = token_mask.unflatten(1, (num_streams, -1))
            return masked_mean(tokens, mask, dim=1), mask.amax(1).long()
        # Pack each clip's real tokens to the front (stream order kept): the text encoder's positions then do not
        # depend on how much the batch padded the clip.
        order = torch.argsort((token_mask == 0).to(torch.int8), dim=1, stable=True)
        fused = torch.gather(hidden_states, 1, order.unsqueeze(-1).expand_as(hidden_states))
        mask = torch.gather(token_mask, 1, order)
        length = max(int(mask.sum(1).max()), 1)
        return fused[:, :length], mask[:, :length].long()

    def encode(
        self,
        pose_values: torch.Tensor | None = None,
        keypoint_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = True,
    ) -> SignTranslationEncoderOutput:
        """Pose clips to the text encoder's output (what the decoder attends to). Arguments as in `forward`."""
        pose_outputs = self.pose_encoder(
            pose_values, keypoint_mask=keypoint_mask, attention_mask=attention_mask, return_dict=True
        )
        embeds, mask = self.fuse_streams(pose_outputs.last_hidden_state, pose_outputs.attention_mask)
        max_positions = getattr(self.config.text_config, "max_position_embeddings", None)
        if max_positions is not None and embeds.shape[1] > max_positions:
            per_cubelet = self.config.encoder.num_streams if self.config.fusion == "concat" else 1
            max_frames = max_positions // per_cubelet * self.config.encoder.cubelet_size
            raise ValueError(
                f"The clip gives {embeds.shape[1]} text-encoder tokens but the text model has {max_positions} "
                f"positions: with '{self.config.fusion}' fusion of {self.config.encoder.num_streams} streams a clip "
                f"may have at most {max_frames} frames. Subsample longer clips (the processor's `max_frames`)."
            )
        text_kwargs = {}
        if output_attentions:
            text_kwargs["output_attentions"] = True
        if output_hidden_states:
            text_kwargs["output_hidden_states"] = True
        text_outputs = self.text_model.get_encoder()(
            inputs_embeds=self.projection(embeds), attention_mask=mask, return_dict=True, **text_kwargs
        )
        return SignTranslationEncoderOutput(
            last_hidden_state=text_outputs.last_hidden_state,
            hidden_states=text_outputs.hidden_states,
            attentions=text_outputs.attentions,
            attention_mask=mask,
        )

    # ---- forward ----------------------------------------------------------------------------------------------------

    def forward(
        self,
        pose_values: torch.Tensor | None = None,
        keypoint_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.LongTensor | None = None,
        encoder_outputs: SignTranslationEncoderOutput | tuple | None = None,
        cache=None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput | tuple:
        r"""
        pose_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_keypoints, 2)`):
            Normalised keypoints of `config.encoder.streams` (see `MSMAEPoseProcessor`).
        keypoint_mask (`torch.BoolTensor` of shape `(batch_size, num_frames, num_keypoints)`, *optional*):
            1 where the keypoint was detected.
        attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for real frames, 0 for padding. (With `encoder_outputs`, the token mask they carry is used instead.)
        decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Decoder input ids; made from `labels` by the text model when omitted (mBART: shifted right, the final
            `</s>` moved to the front).
        encoder_outputs (`SignTranslationEncoderOutput`, *optional*):
            Output of `encode` (used by `generate()` to encode once).
        labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*):
            Target token ids (mBART-50: `[lang_code] ... </s>`), -100 where ignored; cross-entropy loss when given.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        kwargs.pop("num_items_in_batch", None)
        self._check_kwargs(kwargs)
        if encoder_outputs is None:
            encoder_outputs = self.encode(
                pose_values,
                keypoint_mask=keypoint_mask,
                attention_mask=attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        elif isinstance(encoder_outputs, (tuple, list)):
            encoder_outputs = SignTranslationEncoderOutput(*encoder_outputs)
        encoder_mask = getattr(encoder_outputs, "attention_mask", None)
        if encoder_mask is None:
            hidden = encoder_outputs.last_hidden_state
            encoder_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        outputs = self.text_model(
            attention_mask=encoder_mask,
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_outputs.last_hidden_state),
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            cache=cache,
            decoder_inputs_embeds=decoder_inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        output = Seq2SeqLMOutput(
            loss=outputs.loss,
            logits=outputs.logits,
            cache=outputs.cache,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )
        return output if return_dict else output.to_tuple()

    def _check_kwargs(self, kwargs: dict) -> None:
        """Extra keyword inputs go to the text model: only those it (or transformers' common kwargs) takes, so that a
        misspelled one (`keypoints_mask`) is an error instead of being ignored."""
        import inspect

        from transformers.utils import TransformersKwargs

        accepted = set(inspect.signature(self.text_model.forward).parameters) | set(TransformersKwargs.__annotations__)
        unknown = sorted(set(kwargs) - (accepted - {"input_ids", "inputs_embeds", "kwargs"}))
        if unknown:
            known = [name for name in inspect.signature(self.forward).parameters if name != "kwargs"]
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword input(s) {unknown}; it takes {known}.")

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor):
        return self.text_model.prepare_decoder_input_ids_from_labels(labels=labels)


__all__ = [
    "SignTranslationModel",
    "SignTranslationPreTrainedModel",
    "SignTranslationEncoderOutput",
    "load_pose_encoder",
]

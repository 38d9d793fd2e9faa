"""Configuration of the MS-MAE sign language translation model (pose encoder + seq2seq text model)."""

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_msmae import MSMAEConfig, PipelineConfigMixin

# The paper's text model. Configs and models are only ever loaded from it by name (`from_pretrained_parts`).
DEFAULT_TEXT_MODEL = "facebook/mbart-large-50-many-to-many-mmt"
FUSIONS = ("concat", "mean")
# The attention projections of a BART-family decoder layer (mBART, BART, Marian, M2M100, NLLB), in both its
# self-attention and its cross-attention (`self_attn` and `encoder_attn`).
DEFAULT_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")


class SignTranslationConfig(PipelineConfigMixin, PreTrainedConfig):
    r"""
    Configuration of a [`SignTranslationModel`]: an MS-MAE pose encoder, a linear projection to the text model's width,
    and a pretrained sequence-to-sequence text model (mBART-50 in the paper) whose encoder is fine-tuned in full and
    whose decoder is adapted with LoRA.

    Args:
        encoder (`MSMAEConfig` or `dict`, *optional*):
            The pose encoder's configuration (its `streams` decide which keypoints the model reads).
        text_config (`PreTrainedConfig` or `dict`, *optional*):
            The text model's configuration; any encoder-decoder model that `AutoModelForSeq2SeqLM` builds. Defaults to
            an `MBartConfig` with its library defaults: real models are built with
            `SignTranslationModel.from_pretrained_parts`, which reads the config of the named checkpoint
            (`facebook/mbart-large-50-many-to-many-mmt` by default).
        fusion (`str`, *optional*, defaults to `"concat"`):
            How the pose encoder's stream tokens become the text encoder's input sequence. `"concat"`: every stream's
            tokens, one stream after another (`num_streams * num_cubelets` tokens; each clip's real tokens are packed
            to the front so padding never sits between streams). `"mean"`: the average over streams of the tokens of
            each time step (`num_cubelets` tokens).
        freeze_pose_encoder (`bool`, *optional*, defaults to `False`):
            Keep the pretrained MS-MAE encoder fixed (no gradients, dropout off) and train only the projection and
            the text model.
        lora_r (`int`, *optional*, defaults to 32):
            Rank of the LoRA adapters on the text decoder, whose own weights stay frozen. 0 means no adapters: the
            decoder is then trained in full (this is also the state after `merge_adapters()`).
        lora_alpha (`int`, *optional*, defaults to 32):
            LoRA scaling numerator (the update is scaled by `lora_alpha / lora_r`).
        lora_dropout (`float`, *optional*, defaults to 0.05):
            Dropout on the LoRA branch's input (peft's usual value; the paper gives rank and alpha only).
        lora_target_modules (`list[str]`, *optional*, defaults to `["q_proj", "k_proj", "v_proj", "out_proj"]`):
            Names of the decoder's linear layers that get adapters, matched (as peft does) against the end of each
            module path inside the decoder: the defaults are the query, key, value and output projections of both the
            self-attention and the cross-attention of every decoder layer of a BART-family model. For T5 use
            `["q", "k", "v", "o"]`.
        target_lang (`str`, *optional*):
            Target language code of the text model's tokenizer (mBART-50: `"de_DE"`, `"zh_CN"`, `"en_XX"`). mBART-50
            starts every target with it: `SignTranslationModel.set_target_lang` makes `generate()` force it as the
            first generated token (`generation_config.forced_bos_token_id`), after the decoder start token
            (`text_config.decoder_start_token_id`, `</s>` for mBART-50).

    Example:

    ```python
    >>> from transformers import MBartConfig
    >>> from msmae import MSMAEConfig
    >>> from msmae.configuration_sign_translation import SignTranslationConfig

    >>> config = SignTranslationConfig(
    ...     encoder=MSMAEConfig(), text_config=MBartConfig(d_model=256), fusion="mean", target_lang="de_DE"
    ... )
    >>> config.text_config.d_model
    256
    ```
    """

    model_type = "msmae_translation"
    sub_configs_defaults = {
        "encoder": MSMAEConfig,
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="mbart"),
    }

    encoder: MSMAEConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    fusion: str = "concat"
    freeze_pose_encoder: bool = False
    lora_r: int = 32
    lora_alpha: int | float = 32
    lora_dropout: float | int = 0.05
    lora_target_modules: list[str] | tuple[str, ...] = DEFAULT_LORA_TARGET_MODULES
    target_lang: str | None = None
    is_encoder_decoder: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.lora_target_modules = list(self.lora_target_modules)
        self.validate()

    def validate(self):
        """Checks the fields (and the pose encoder's config); raises `ValueError` naming the field. Runs at
        construction, at `save_pretrained` and when a model is built, so edits are checked where they are used."""
        super().validate()
        if isinstance(self.encoder, MSMAEConfig):
            self.encoder.validate()
        if self.fusion not in FUSIONS:
            raise ValueError(f"`fusion` must be one of {FUSIONS}, got {self.fusion!r}.")
        if self.lora_r < 0:
            raise ValueError(f"`lora_r` must be 0 (no adapters) or positive, got {self.lora_r}.")
        if self.lora_r and not self.lora_target_modules:
            raise ValueError("`lora_target_modules` is empty: name the decoder layers to adapt, or set `lora_r=0`.")
        if not getattr(self.text_config, "is_encoder_decoder", False):
            raise ValueError(
                f"`text_config` must describe an encoder-decoder text model (such as mBART), got model type "
                f"{self.text_config.model_type!r}."
            )


__all__ = ["SignTranslationConfig", "DEFAULT_TEXT_MODEL", "DEFAULT_LORA_TARGET_MODULES"]

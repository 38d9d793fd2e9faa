"""MS-MAE model configuration."""

try:
    from transformers import PreTrainedConfig
except ImportError:  # transformers 4.x spells it PretrainedConfig
    from transformers import PretrainedConfig as PreTrainedConfig

from .hub_packaging import HubConfigMixin  # custom_pipelines and the pipeline code on save
# Keypoints per stream, defined with the landmarks that fill each stream in `keypoint_layout.py`.
from .keypoint_layout import DEFAULT_STREAMS, STREAM_NUM_KEYPOINTS, check_streams  # noqa: E402

# Streams that share one input projection (and one reconstruction head) when
# `share_hand_projection=True`: the paper uses a single Linear layer for both hands.
HAND_STREAMS = ("left_hand", "right_hand")


class PipelineConfigMixin(HubConfigMixin):
    """Config mixin of msmae's model configs: saves the checkpoint's pipeline (`HubConfigMixin`), and reports the
    `custom_pipelines` that transformers' `pipeline()` should see where the config is loaded.

    transformers refuses every task listed in a checkpoint's `custom_pipelines` unless `trust_remote_code=True`,
    even when the same pipeline is installed. Tasks that an imported `msmae` serves are left out of what the
    config reports; what is saved stays unchanged, so the checkpoint still works where msmae is not installed.
    """

    @property
    def custom_pipelines(self) -> dict:
        saved = self.__dict__.get("custom_pipelines") or {}
        if saved and __name__.startswith("transformers_modules."):
            # A checkpoint's code, where msmae may be missing: config.json lists each pipeline once, under its Hub name
            # (so transformers can infer the task); `pipeline()` reads this before resolving a task name, so
            # registering the sign-language-* names here lets those resolve too.
            from .pipeline_msmae import register_pipelines
            # transformers 4.x copies a local checkpoint's module into its code cache with only the modules that
            # file imports itself (5.x follows the imports through), then imports it: name the pipeline's whole
            # import tree here, so that loading the config copies all of it (tests/test_layout.py checks).
            from .augmentation import build_augmentations  # noqa: F401
            from .clips import load_pose  # noqa: F401
            from .embeddings import embed_batch  # noqa: F401
            from .handler import EndpointHandler  # noqa: F401  (hub_packaging copies it on save)
            from .holistic import HolisticExtractor  # noqa: F401
            from .pose_io import SignPose  # noqa: F401
            from .processing_msmae import MSMAEPoseProcessor  # noqa: F401

            register_pipelines()
        try:
            from transformers.pipelines import PIPELINE_REGISTRY
        except ImportError:
            return saved
        installed = {
            task
            for task, info in PIPELINE_REGISTRY.supported_tasks.items()
            if getattr(info.get("impl"), "__module__", "").startswith("msmae.")
        }
        return {task: info for task, info in saved.items() if task not in installed}

    @custom_pipelines.setter
    def custom_pipelines(self, value):
        self.__dict__["custom_pipelines"] = value


class MSMAEConfig(PipelineConfigMixin, PreTrainedConfig):
    r"""
    Configuration of a Multi-Stream Masked Autoencoder (MS-MAE) for sign language pose sequences.

    Keypoints are split into streams (upper body, left hand, right hand and optionally face). Each stream is
    flattened per frame, projected by a Linear layer, and a Conv1D with kernel = stride = `cubelet_size` turns every
    `cubelet_size` frames into one token (a "cubelet"). The same positional encoding is added to every stream and the
    streams are concatenated along time into one sequence for a Transformer encoder. Pretraining masks `mask_ratio`
    of each stream's cubelets and reconstructs their keypoints with a light decoder.

    The defaults reproduce the paper's encoder (8 layers, 8 heads, width 512) and decoder (4 layers, width 512).
    Where the paper leaves a choice open, the field below says what we chose and why.

    Args:
        streams (`list[str]`, *optional*, defaults to `("body", "left_hand", "right_hand")`):
            Streams in token order: the encoder sequence is `[stream_0 tokens; stream_1 tokens; ...]`, the order in
            which the paper concatenates them along time. Allowed names: `"body"` (6 keypoints: MediaPipe pose
            11-16, shoulders, elbows, wrists), `"left_hand"` and `"right_hand"` (21 each; the signer's own left and
            right, as MediaPipe Holistic reports them) and `"face"` (112 points: contour, mouth, nose, eyes, from the
            paper's appendix). `pose_values` holds the keypoints of these streams concatenated in this order.
        num_coordinates (`int`, *optional*, defaults to 2):
            Coordinates per keypoint. The paper uses x and y only: MediaPipe's z is a noisy relative depth.
        cubelet_size (`int`, *optional*, defaults to 2):
            Frames per cubelet token (the Conv1D kernel and stride, S). Not given in the paper. 2 keeps fast
            handshape changes within one token at 25-30 fps while halving the sequence: a 300-frame pretraining
            window gives 150 tokens per stream, 450 for three streams, which full attention handles cheaply.
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the encoder.
        num_hidden_layers (`int`, *optional*, defaults to 8):
            Encoder layers.
        num_attention_heads (`int`, *optional*, defaults to 8):
            Encoder attention heads.
        intermediate_size (`int`, *optional*, defaults to 2048):
            Width of the encoder's feed-forward layers (4 x `hidden_size`, the Transformer convention).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Feed-forward activation.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout after attention and feed-forward blocks (0, as in MAE pretraining).
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on attention probabilities.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the query, key and value projections have a bias.
        norm_first (`bool`, *optional*, defaults to `True`):
            Pre-norm (LayerNorm before attention and feed-forward) when `True`, post-norm otherwise. Not stated in the
            paper; pre-norm is what MAE and ViT use and trains stably at lr 8e-4 without extra warmup tricks.
        position_embedding_type (`str`, *optional*, defaults to `"sinusoidal"`):
            `"sinusoidal"` (fixed, over the cubelet index) or `"learned"`. The paper adds "the same positional
            encoding" to every stream without saying which; sinusoidal is MAE's choice and, unlike a learned table,
            extends to clips longer than any seen in training (translation inputs are often longer than the 300-frame
            pretraining windows).
        max_position_embeddings (`int`, *optional*, defaults to 1024):
            Cubelets per stream covered by the precomputed position table (1024 x S frames, about 80 s at 25 fps with
            S=2). Sinusoidal encodings are computed on the fly past this; learned ones cannot be and raise an error.
        share_hand_projection (`bool`, *optional*, defaults to `True`):
            One input projection (and one reconstruction head) for both hands, as in the paper.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            LayerNorm epsilon (MAE's value).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser of linear layers and learned tokens. The keypoint
            projection and the cubelet Conv1D are Xavier-initialised instead (MAE's patch embedding), so cubelet
            tokens start at the scale of the sinusoidal position encoding rather than 5x below it.
        decoder_hidden_size (`int`, *optional*, defaults to 512):
            Width of the pretraining decoder.
        decoder_num_hidden_layers (`int`, *optional*, defaults to 4):
            Decoder layers.
        decoder_num_attention_heads (`int`, *optional*, defaults to 8):
            Decoder attention heads.
        decoder_intermediate_size (`int`, *optional*, defaults to 2048):
            Width of the decoder's feed-forward layers.
        mask_ratio (`float`, *optional*, defaults to 0.5):
            Fraction of each stream's (real, unpadded) cubelets masked during pretraining.
        masking_strategy (`str`, *optional*, defaults to `"diff"`):
            `"diff"` (DiffMask: each stream masks different time steps, the same number of them) or `"same"`
            (SameMask: every stream masks the same time steps). DiffMask is the paper's better variant: a hand
            hidden at time t can be inferred from the other streams at t. In this package's transfer evaluation
            (BENCHMARKS.md, section 5) DiffMask reconstructed held-out signing better, while SameMask's frozen
            features transferred slightly better to few-shot recognition of an unseen sign language.
        linear_probe (`bool`, *optional*, defaults to `False`):
            For `MSMAEForSignClassification`: `False` fine-tunes the encoder with a learnable [CLS] token and a
            classifier on its output; `True` freezes the encoder, averages its contextual embeddings over the real
            tokens and trains one linear layer (the paper's linear probing).
        use_cls_token (`bool`, *optional*):
            Whether the encoder prepends a learnable [CLS] token (its state is then `pooler_output`). A field of the
            config, so every class (`AutoModel` too) loads the encoder that was trained. `MSMAEForSignClassification`
            sets it to `not linear_probe`; the pretraining model and the translation model's pose encoder set it to
            `False`. `None` (checkpoints saved before the field existed): `True` for a fine-tuned classifier's
            checkpoint, `False` otherwise.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout before the classification layer.
        loss_normalization (`str`, *optional*, defaults to `"coordinate"`):
            How the pretraining loss averages the squared error over the detected keypoints of masked cubelets.
            `"coordinate"`: one mean over every such keypoint coordinate in the batch, so a hand (21 keypoints)
            weighs 3.5x the body (6) per time step. `"token"`: the paper's mean over masked tokens, each token's
            error first averaged over its own keypoints, so every masked token counts the same. The default is the
            per-coordinate mean this package has always used (its loss values, checkpoints and benchmark figures
            use it, and it trains the same model); choose `"token"` to put loss values beside the paper's.
        stream_type_embedding (`bool`, *optional*, defaults to `False`):
            Add a learned per-stream embedding to the encoder's tokens. The paper has none: with
            `share_hand_projection`, swapping the left- and right-hand streams then gives exactly the same encoder
            output, because both hands share one projection and the same position encoding. Turn it on to let the
            encoder tell the hands apart (the decoder always has per-stream embeddings, since its mask tokens are
            otherwise identical). Off by default, as in the paper.
        reconstruction_target (`str`, *optional*, defaults to `"position"`):
            What the decoder predicts for each masked cubelet. `"position"`: the keypoints' positions, as in the
            paper. `"velocity"`: the first frame's positions, then each later frame's change from the frame before
            (within the cubelet), after the motion targets of skeleton MAEs (MAMP, "Masked Motion Prediction", Mao
            et al., ICCV 2023, arXiv:2308.07092, which predicts temporal differences of masked tokens); keeping the
            first frame keeps the pose recoverable. A difference is scored only where the keypoint was detected in
            both frames. The model's `reconstruction` output integrates it back to positions.
        norm_target_loss (`bool`, *optional*, defaults to `False`):
            Normalise each (stream, cubelet) token's target by its own mean and standard deviation over its detected
            values (frames, keypoints and coordinates together; unbiased variance + 1e-6), as ViT-MAE's
            `norm_pix_loss` (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022) does per
            image patch. Tokens with fewer than two detected values have no such statistics and are left out of the
            loss. Applies to whichever `reconstruction_target` is chosen. The model's `reconstruction` output is
            de-normalised with each token's own statistics, so pictures and errors stay in pose coordinates. Off
            by default, as in the paper; see the README for when to turn it on.

    Example:

    ```python
    >>> from msmae import MSMAEConfig, MSMAEForPreTraining

    >>> config = MSMAEConfig(streams=["body", "left_hand", "right_hand", "face"])
    >>> model = MSMAEForPreTraining(config)
    >>> config.num_keypoints
    160
    ```
    """

    model_type = "msmae"

    streams: list[str] | tuple[str, ...] = DEFAULT_STREAMS
    num_coordinates: int = 2
    cubelet_size: int = 2
    hidden_size: int = 512
    num_hidden_layers: int = 8
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    qkv_bias: bool = True
    norm_first: bool = True
    position_embedding_type: str = "sinusoidal"
    max_position_embeddings: int = 1024
    share_hand_projection: bool = True
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 4
    decoder_num_attention_heads: int = 8
    decoder_intermediate_size: int = 2048
    mask_ratio: float | int = 0.5
    masking_strategy: str = "diff"
    linear_probe: bool = False
    use_cls_token: bool | None = None
    classifier_dropout: float | int = 0.0
    loss_normalization: str = "coordinate"
    stream_type_embedding: bool = False
    reconstruction_target: str = "position"
    norm_target_loss: bool = False

    def __post_init__(self, **kwargs):
        self.streams = list(self.streams)
        super().__post_init__(**kwargs)
        self.validate()

    def validate(self):
        """Checks every field; raises `ValueError` naming the field. Runs at construction, at `save_pretrained` (the
        hook transformers uses) and when a model is built, so a config edited after construction is checked where
        it is used; call it yourself after editing one."""
        if hasattr(super(), "validate"):  # transformers 4.x configs have no validate of their own
            super().validate()
        check_streams(self.streams)
        if self.cubelet_size < 1:
            raise ValueError(f"`cubelet_size` must be at least 1, got {self.cubelet_size}.")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"`mask_ratio` must be strictly between 0 and 1, got {self.mask_ratio}.")
        choices = {
            "masking_strategy": ("diff", "same"),
            "position_embedding_type": ("sinusoidal", "learned"),
            "loss_normalization": ("coordinate", "token"),
            "reconstruction_target": ("position", "velocity"),
            "norm_target_loss": (False, True),
        }
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"`{field}` must be one of {allowed}, got {getattr(self, field)!r}.")
        for width, heads, prefix in (
            (self.hidden_size, self.num_attention_heads, ""),
            (self.decoder_hidden_size, self.decoder_num_attention_heads, "decoder_"),
        ):
            if width % heads:
                raise ValueError(f"`{prefix}hidden_size` ({width}) must be divisible by `{prefix}num_attention_heads` ({heads}).")

    # ---- masking geometry: the one definition the model, the collators and the benchmarks use -------------------

    def num_cubelets(self, num_frames: int) -> int:
        """Cubelet tokens per stream for a clip (or padded batch) of `num_frames` frames: ceil(frames / S)."""
        return -(-num_frames // self.cubelet_size)

    def noise_shape(self, num_frames: int) -> tuple[int, int]:
        """Shape of one sample's masking `noise`, `(num_streams, num_cubelets)`, for a clip of `num_frames` frames
        (SameMask reads the first row only). Collators draw it so that masking is reproducible."""
        return (self.num_streams, self.num_cubelets(num_frames))

    def num_masked_cubelets(self, num_real: int) -> int:
        """Cubelets each stream masks in a sample with `num_real` real cubelets: `round(mask_ratio * num_real)`,
        at least one, and at least one stays visible when the clip has two or more."""
        return min(max(round(self.mask_ratio * num_real), 1), max(num_real - 1, 0))

    def num_visible_cubelets(self, num_cubelets: int) -> int:
        """Visible-token slots per stream for a batch padded to `num_cubelets`: the largest visible count of any
        clip length up to it. A static number, so the masked forward has fixed shapes (no host sync)."""
        return max(real - self.num_masked_cubelets(real) for real in range(num_cubelets + 1))

    @property
    def has_cls_token(self) -> bool:
        """`use_cls_token`, or for a config saved without it, whether it is a fine-tuned classifier's."""
        if self.use_cls_token is not None:
            return bool(self.use_cls_token)
        return "MSMAEForSignClassification" in (self.architectures or []) and not self.linear_probe

    @property
    def stream_num_keypoints(self) -> list[int]:
        """Keypoints in each stream, in `streams` order."""
        return [STREAM_NUM_KEYPOINTS[name] for name in self.streams]

    @property
    def num_keypoints(self) -> int:
        """Keypoints per frame in `pose_values` (all streams together)."""
        return sum(self.stream_num_keypoints)

    @property
    def num_streams(self) -> int:
        return len(self.streams)

    def projection_group(self, stream: str) -> str:
        """Name of the input projection a stream uses: both hands share `"hand"` when `share_hand_projection`."""
        return "hand" if self.share_hand_projection and stream in HAND_STREAMS else stream


__all__ = ["MSMAEConfig", "STREAM_NUM_KEYPOINTS"]

"""PyTorch MS-MAE: Multi-Stream Masked Autoencoders for sign language pose sequences."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from transformers import PreTrainedModel
try:
    from transformers import initialization as init
except ImportError:  # transformers 4.x: torch's own initialisers (5.x wraps them so that loaded weights stay)
    from types import SimpleNamespace

    from torch.nn import init as _torch_init

    def _copy_(tensor, value):
        with torch.no_grad():
            return tensor.copy_(value)

    init = SimpleNamespace(copy_=_copy_, **{name: getattr(_torch_init, name) for name in
                                            ("normal_", "ones_", "xavier_uniform_", "zeros_")})
from transformers.activations import ACT2FN
try:
    from transformers.masking_utils import create_bidirectional_mask
except ImportError:  # transformers 4.x: a boolean key mask, which the eager and SDPA attention functions both take

    def create_bidirectional_mask(config, inputs_embeds, attention_mask):
        return None if attention_mask is None else attention_mask.bool()[:, None, None, :]
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_msmae import MSMAEConfig
from .embeddings import masked_mean
from .hub_packaging import HubModelMixin

try:  # transformers >= 5: checkpoint key renames
    from transformers.conversion_mapping import register_checkpoint_conversion_mapping
    from transformers.core_model_loading import WeightRenaming
except ImportError:  # pragma: no cover
    register_checkpoint_conversion_mapping = None

if register_checkpoint_conversion_mapping is not None:
    # The decoder's layer stack was `decoder.encoder.layers`; it is `decoder.layers` now. Old checkpoints load
    # through this renaming; new ones are saved with the new names (see `save_pretrained`).
    register_checkpoint_conversion_mapping(
        "msmae", [WeightRenaming(r"^decoder\.encoder\.layers\.", "decoder.layers.")], overwrite=True
    )


@dataclass
class MSMAEModelOutput(ModelOutput):
    r"""
    last_hidden_state (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
        Encoder output. Without masking, `sequence_length = [1 +] num_streams * num_cubelets`: an optional [CLS]
        token, then each stream's cubelets in `config.streams` order, so
        `last_hidden_state[:, offset:].unflatten(1, (num_streams, num_cubelets))` gives each stream's tokens
        (see `MSMAEModel.stream_tokens`). With masking, each stream contributes `num_visible` slots holding its
        visible cubelets (the rest marked 0 in `attention_mask`): `config.num_visible_cubelets(num_cubelets)` with
        `noise`, the batch's largest visible count with an explicit `bool_masked_pos`.
    pooler_output (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
        The [CLS] token's state when the model has one, otherwise the average over real tokens.
    attention_mask (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
        1 for tokens that are real (not frame padding, not masked out), 0 otherwise.
    visible_indices (`torch.LongTensor` of shape `(batch_size, num_streams, num_visible)`, *optional*):
        With masking: the cubelet index of each encoded token of each stream.
    mask (`torch.LongTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
        With masking: 1 for cubelets hidden from the encoder, 0 for visible cubelets and padding.
    ids_restore (`torch.LongTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
        With masking: each cubelet's position in its stream's shuffled order (visible first, then masked, padding
        last).
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        Input embeddings and the output of every layer, when `output_hidden_states=True`.
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        Attention weights of every layer, when `output_attentions=True`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    attention_mask: torch.LongTensor | None = None
    visible_indices: torch.LongTensor | None = None
    mask: torch.LongTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MSMAEForPreTrainingOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`):
        Mean squared error over the detected keypoints of real frames in masked cubelets, averaged as
        `config.loss_normalization` says.
    logits (`torch.FloatTensor` of shape `(batch_size, num_cubelets * cubelet_size, num_keypoints, num_coordinates)`):
        The decoder's prediction of the reconstruction target (`MSMAEForPreTraining.reconstruction_target`) for
        every frame, in `pose_values` layout (frames padded to a multiple of `cubelet_size`): keypoint positions
        with the default config. Only masked cubelets are trained.
    mask (`torch.LongTensor` of shape `(batch_size, num_streams, num_cubelets)`):
        1 for cubelets that were masked (and reconstructed), 0 for visible cubelets and padding.
    ids_restore (`torch.LongTensor` of shape `(batch_size, num_streams, num_cubelets)`):
        Inverse of each stream's shuffle: visible cubelets come first in shuffled order, masked ones next, padding
        last.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*):
        Encoder hidden states, when `output_hidden_states=True`.
    attentions (`tuple(torch.FloatTensor)`, *optional*):
        Encoder attention weights, when `output_attentions=True`.
    reconstruction (`torch.FloatTensor`, same shape as `logits`):
        The reconstruction as keypoint positions, in `pose_values` coordinates: `logits` themselves for the paper's
        target, else `logits` de-normalised with each token's own statistics (`config.norm_target_loss`) and
        integrated from velocities (`config.reconstruction_target="velocity"`). Draw and score this one.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.LongTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    reconstruction: torch.FloatTensor | None = None


def sinusoidal_position_encoding(num_positions: int, dim: int, device=None) -> torch.Tensor:
    """1D sine-cosine table of shape `(num_positions, dim)`, as in the Transformer and MAE."""
    position = torch.arange(num_positions, device=device, dtype=torch.float32).unsqueeze(1)
    half = dim // 2
    frequency = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / half))
    table = torch.zeros(num_positions, dim, device=device)
    table[:, :half] = torch.sin(position * frequency)
    table[:, half : 2 * half] = torch.cos(position * frequency)
    return table


class MSMAEPositionEncoding(nn.Module):
    """Cubelet-index position encoding, shared by every stream."""

    def __init__(self, dim: int, config: MSMAEConfig):
        super().__init__()
        self.learned = config.position_embedding_type == "learned"
        self.max_positions = config.max_position_embeddings
        if self.learned:
            self.table = nn.Parameter(torch.zeros(config.max_position_embeddings, dim))
        else:
            self.register_buffer("table", sinusoidal_position_encoding(config.max_position_embeddings, dim), persistent=False)

    def forward(self, num_positions: int) -> torch.Tensor:
        if num_positions <= self.max_positions:
            return self.table[:num_positions]
        if self.learned:
            raise ValueError(
                f"The clip has {num_positions} cubelets per stream but learned position embeddings cover "
                f"{self.max_positions}. Use shorter clips or a model with a larger `max_position_embeddings`."
            )
        return sinusoidal_position_encoding(num_positions, self.table.shape[-1], device=self.table.device).to(self.table.dtype)


class MSMAEKeypointProjection(nn.Linear):
    """Linear map of one frame's flattened keypoints; its own class so that `_init_weights` can give it Xavier init."""


class MSMAEStreamEmbedding(nn.Module):
    """Linear projection of each frame's keypoints, then Conv1D with kernel = stride = S into cubelet tokens."""

    def __init__(self, num_keypoints: int, config: MSMAEConfig):
        super().__init__()
        self.projection = MSMAEKeypointProjection(num_keypoints * config.num_coordinates, config.hidden_size)
        self.cubelet = nn.Conv1d(config.hidden_size, config.hidden_size, config.cubelet_size, stride=config.cubelet_size)

    def forward(self, keypoints: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        # keypoints: (batch, frames, K, D) with frames a multiple of S; frame_mask: bool (batch, frames). Padded
        # frames are zeroed after the projection, so a cubelet only sums real frames and padding leaves no trace,
        # bias included. `where`, not a product: NaN x 0 is NaN.
        frames = self.projection(keypoints.flatten(2)).masked_fill(~frame_mask.unsqueeze(-1), 0.0)
        return self.cubelet(frames.transpose(1, 2)).transpose(1, 2)


class MSMAEEmbeddings(nn.Module):
    """Turns prepared `pose_values` (see `prepare_inputs`) into per-stream cubelet tokens with the shared position
    encoding (and, with `config.stream_type_embedding`, a learned per-stream embedding) added."""

    def __init__(self, config: MSMAEConfig):
        super().__init__()
        self.config = config
        groups = dict.fromkeys(config.projection_group(name) for name in config.streams)
        sizes = dict(zip(config.streams, config.stream_num_keypoints))
        self.streams = nn.ModuleDict(
            {
                group: MSMAEStreamEmbedding(
                    next(sizes[s] for s in config.streams if config.projection_group(s) == group), config
                )
                for group in groups
            }
        )
        self.position_encoding = MSMAEPositionEncoding(config.hidden_size, config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.stream_type_embeddings = (
            nn.Parameter(torch.zeros(config.num_streams, config.hidden_size)) if config.stream_type_embedding else None
        )

    def forward(self, pose_values, keypoint_mask, frame_mask):
        """Prepared inputs (frames a multiple of S, bool masks) to tokens `(batch, num_streams, num_cubelets, hidden)`."""
        dtype = next(iter(self.streams.values())).projection.weight.dtype
        # Undetected keypoints enter as 0 whatever value (NaN included) the caller left there.
        pose_values = torch.where(keypoint_mask.unsqueeze(-1), pose_values.to(dtype), 0.0)
        tokens = []
        start = 0
        for name, size in zip(self.config.streams, self.config.stream_num_keypoints):
            embed = self.streams[self.config.projection_group(name)]
            tokens.append(embed(pose_values[:, :, start : start + size], frame_mask))
            start += size
        tokens = torch.stack(tokens, dim=1)
        tokens = tokens + self.position_encoding(tokens.shape[2]).to(tokens.dtype)
        if self.stream_type_embeddings is not None:
            tokens = tokens + self.stream_type_embeddings.to(tokens.dtype)[None, :, None]
        return self.dropout(tokens)


def valid_keypoints(pose_values, keypoint_mask=None, attention_mask=None) -> torch.Tensor:
    """Bool `(B, T, K)`: keypoints that were detected in real (not padded) frames."""
    valid = torch.ones(pose_values.shape[:3], dtype=torch.bool, device=pose_values.device)
    if keypoint_mask is not None:
        valid = valid & keypoint_mask.bool()
    if attention_mask is not None:
        valid = valid & attention_mask.bool().unsqueeze(-1)
    return valid


def prepare_inputs(config: MSMAEConfig, pose_values, keypoint_mask=None, attention_mask=None):
    """Validates the inputs and pads frames to a multiple of the cubelet size. Runs once per forward.

    Returns `pose_values (B, T', K, D)`, bool `keypoint_mask (B, T', K)` (detected keypoints of real frames), bool
    `frame_mask (B, T')` and the cubelet mask `(B, T'/S)` (1 for cubelets with at least one real frame), with
    T' = ceil(T/S)*S.
    """
    if pose_values is None:
        raise ValueError("`pose_values` is required: (batch, frames, keypoints, coordinates), e.g. from MSMAEPoseProcessor.")
    for name, value in (("pose_values", pose_values), ("keypoint_mask", keypoint_mask), ("attention_mask", attention_mask)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}; convert it with torch.as_tensor.")
    if not pose_values.is_floating_point():
        raise ValueError(f"`pose_values` must be floating point (normalised coordinates), got {pose_values.dtype}.")
    expected = (config.num_keypoints, config.num_coordinates)
    if pose_values.dim() != 4 or tuple(pose_values.shape[2:]) != expected:
        raise ValueError(
            f"`pose_values` must have shape (batch, frames, {expected[0]}, {expected[1]}) for streams "
            f"{config.streams}, got {tuple(pose_values.shape)}. Prepare inputs with MSMAEPoseProcessor using the same streams."
        )
    batch, frames = pose_values.shape[:2]
    if batch == 0 or frames == 0:
        raise ValueError(f"`pose_values` has no {'clips' if batch == 0 else 'frames'} (shape {tuple(pose_values.shape)}).")
    if keypoint_mask is not None and tuple(keypoint_mask.shape) != tuple(pose_values.shape[:3]):
        raise ValueError(f"`keypoint_mask` must have shape {tuple(pose_values.shape[:3])}, got {tuple(keypoint_mask.shape)}.")
    if attention_mask is not None and tuple(attention_mask.shape) != (batch, frames):
        raise ValueError(f"`attention_mask` must have shape {(batch, frames)} (one value per frame), got {tuple(attention_mask.shape)}.")
    keypoint_mask = valid_keypoints(pose_values, keypoint_mask, attention_mask)
    frame_mask = (
        attention_mask.bool() if attention_mask is not None
        else torch.ones(batch, frames, dtype=torch.bool, device=pose_values.device)
    )
    pad = -frames % config.cubelet_size
    if pad:
        pose_values = nn.functional.pad(pose_values, (0, 0, 0, 0, 0, pad))
        keypoint_mask = nn.functional.pad(keypoint_mask, (0, 0, 0, pad))
        frame_mask = nn.functional.pad(frame_mask, (0, pad))
    cubelet_mask = frame_mask.unflatten(1, (-1, config.cubelet_size)).any(-1).long()
    return pose_values, keypoint_mask, frame_mask, cubelet_mask


# Keyword arguments transformers' Trainer passes to any forward that takes `**kwargs`; everything else is a mistake.
TRAINER_KWARGS = ("num_items_in_batch",)


def check_no_unknown_kwargs(model: nn.Module, kwargs: dict) -> None:
    """Raises `TypeError` naming keyword inputs the forward does not take (e.g. a misspelled `keypoints_mask`), so
    that they cannot be ignored silently."""
    unknown = sorted(name for name in kwargs if name not in TRAINER_KWARGS)
    if unknown:
        import inspect

        known = [name for name in inspect.signature(model.forward).parameters if name != "kwargs"]
        raise TypeError(
            f"{type(model).__name__}.forward() got unexpected keyword input(s) {unknown}; it takes {known}."
        )


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attn_weights = attn_weights.masked_fill(~attention_mask, torch.finfo(attn_weights.dtype).min)
        else:
            attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


def attention_function(implementation, default):
    """The attention function that `config._attn_implementation` names (`default`, the eager one, for "eager")."""
    if hasattr(ALL_ATTENTION_FUNCTIONS, "get_interface"):
        return ALL_ATTENTION_FUNCTIONS.get_interface(implementation, default)
    return default if implementation == "eager" else ALL_ATTENTION_FUNCTIONS[implementation]  # transformers 4.x


class MSMAEAttention(nn.Module):
    def __init__(self, config: MSMAEConfig, hidden_size: int, num_heads: int):
        super().__init__()
        self.config = config
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states, attention_mask=None, output_attentions=False):
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        attention_interface: Callable = attention_function(
            self.config._attn_implementation, eager_attention_forward
        )
        if output_attentions:  # fused kernels return no weights
            attention_interface = eager_attention_forward
        output, weights = attention_interface(
            self, query, key, value, attention_mask,
            scaling=self.scaling, dropout=self.dropout if self.training else 0.0,
        )
        output = self.o_proj(output.reshape(*hidden_states.shape[:-1], -1).contiguous())
        return output, weights


class MSMAELayer(GradientCheckpointingLayer):
    """A Transformer layer, pre-norm or post-norm by `config.norm_first`."""

    def __init__(self, config: MSMAEConfig, hidden_size: int, num_heads: int, intermediate_size: int):
        super().__init__()
        self.norm_first = config.norm_first
        self.attention = MSMAEAttention(config, hidden_size, num_heads)
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def _mlp(self, x):
        return self.dropout(self.fc2(self.activation(self.fc1(x))))

    def forward(self, hidden_states, attention_mask=None, output_attentions=False):
        if self.norm_first:
            attn, weights = self.attention(self.layernorm_before(hidden_states), attention_mask, output_attentions)
            hidden_states = hidden_states + self.dropout(attn)
            hidden_states = hidden_states + self._mlp(self.layernorm_after(hidden_states))
        else:
            attn, weights = self.attention(hidden_states, attention_mask, output_attentions)
            hidden_states = self.layernorm_before(hidden_states + self.dropout(attn))
            hidden_states = self.layernorm_after(hidden_states + self._mlp(hidden_states))
        return hidden_states, weights


def run_layers(layers, config, hidden_states, token_mask, output_attentions=False, output_hidden_states=False):
    """Runs a stack of `MSMAELayer`s over `hidden_states (B, N, H)`, attending only to tokens where `token_mask`."""
    attention_mask = create_bidirectional_mask(config=config, inputs_embeds=hidden_states, attention_mask=token_mask)
    all_hidden = (hidden_states,) if output_hidden_states else None
    all_attentions = () if output_attentions else None
    for layer in layers:
        hidden_states, weights = layer(hidden_states, attention_mask, output_attentions)
        if output_hidden_states:
            all_hidden += (hidden_states,)
        if output_attentions:
            all_attentions += (weights,)
    return hidden_states, all_hidden, all_attentions


class MSMAEEncoder(nn.Module):
    """The encoder's stack of Transformer layers (gradient checkpointing through `GradientCheckpointingLayer`)."""

    def __init__(self, config: MSMAEConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            [
                MSMAELayer(config, config.hidden_size, config.num_attention_heads, config.intermediate_size)
                for _ in range(config.num_hidden_layers)
            ]
        )
        self.gradient_checkpointing = False

    def forward(self, hidden_states, token_mask, output_attentions=False, output_hidden_states=False):
        return run_layers(self.layers, self.config, hidden_states, token_mask, output_attentions, output_hidden_states)


class TrainableFromConfigMixin:
    """Which parameters train is part of a model's config (a linear probe's frozen encoder, a translation model's
    frozen pose encoder and adapters), not of its saved tensors. `set_trainable_parameters()` applies it; it runs
    after construction (the model calls it) and again after every `from_pretrained`, which materialises fresh
    parameters. Modules in `frozen_modules()` also stay in eval mode (no dropout) when the model trains."""

    def set_trainable_parameters(self) -> None:
        for module in self.frozen_modules():
            module.requires_grad_(False)
        self.train(self.training)

    def frozen_modules(self) -> list[nn.Module]:
        return []

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded).set_trainable_parameters()  # output_loading_info=True
        return loaded

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self


class MSMAEPreTrainedModel(HubModelMixin, PreTrainedModel):
    config_class = MSMAEConfig
    config: MSMAEConfig
    base_model_prefix = "msmae"
    main_input_name = "pose_values"
    input_modalities = ("video",)  # pose sequences of a video; transformers' names: text, image, video, audio, time
    supports_gradient_checkpointing = True
    _no_split_modules = ["MSMAEEmbeddings", "MSMAELayer"]
    _supports_sdpa = True
    _supports_flash_attn = False  # padding masks are passed as 4D masks
    _supports_flex_attn = False
    _supports_attention_backend = False

    def __init__(self, config: MSMAEConfig, *args, **kwargs):
        config.validate()  # a config edited after construction is checked where it is used
        super().__init__(config, *args, **kwargs)

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Conv1d):
            # As MAE's patch embedding: the convolution is initialised like a Linear over its unfolded input.
            init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
            init.zeros_(module.bias)
        elif isinstance(module, MSMAEKeypointProjection):
            init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, MSMAEPositionEncoding):
            if module.learned:
                init.normal_(module.table, mean=0.0, std=std)
            else:
                # A non-persistent buffer is not in the checkpoint: from_pretrained builds it here.
                init.copy_(module.table, sinusoidal_position_encoding(*module.table.shape))
        elif isinstance(module, MSMAEEmbeddings) and module.stream_type_embeddings is not None:
            init.normal_(module.stream_type_embeddings, mean=0.0, std=std)
        elif isinstance(module, MSMAEModel) and module.cls_token is not None:
            init.normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, MSMAEDecoder):
            init.normal_(module.mask_token, mean=0.0, std=std)
            init.normal_(module.stream_embeddings, mean=0.0, std=std)


class MSMAEModel(MSMAEPreTrainedModel):
    """The MS-MAE encoder: stream embeddings, cubelet tokens, a Transformer encoder and a final LayerNorm.

    A learnable [CLS] token is prepended when `config.has_cls_token` (see `MSMAEConfig.use_cls_token`); its state
    is then `pooler_output`.
    """

    def __init__(self, config: MSMAEConfig):
        super().__init__(config)
        self.embeddings = MSMAEEmbeddings(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if config.has_cls_token else None
        self.encoder = MSMAEEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        # Its output is the token tensor, as `enable_input_require_grads` (PEFT with reentrant gradient
        # checkpointing) expects: the hook makes it require grad so that gradients reach adapters in checkpointed layers.
        return self.embeddings

    def random_masking(self, cubelet_mask: torch.Tensor, noise: torch.Tensor | None = None):
        """Chooses the cubelets to mask in every stream.

        Each sample masks `config.num_masked_cubelets(real cubelets)` of every stream, the lowest-noise ones staying
        visible. DiffMask draws noise per stream, SameMask once per sample. No host sync: the counts come from a
        table indexed on the device.

        Args:
            cubelet_mask: `(batch, num_cubelets)`, 1 for real cubelets.
            noise: `(batch, num_streams, num_cubelets)` (or `(batch, num_cubelets)`, shared by all streams) in
                [0, 1); drawn uniformly when omitted. Fix it for deterministic masking.

        Returns: `bool_masked_pos (batch, num_streams, num_cubelets)` and `ids_restore` of the same shape.
        """
        config = self.config
        batch, num_cubelets = cubelet_mask.shape
        num_streams = config.num_streams
        if noise is None:
            noise = torch.rand((batch, *config.noise_shape(num_cubelets * config.cubelet_size)), device=cubelet_mask.device)
        if noise.dim() == 2:
            noise = noise.unsqueeze(1)
        if noise.shape[0] != batch or noise.shape[-1] != num_cubelets or noise.shape[1] not in (1, num_streams):
            raise ValueError(
                f"`noise` must have shape {(batch, num_streams, num_cubelets)} or {(batch, num_cubelets)}, got {tuple(noise.shape)}."
            )
        if config.masking_strategy == "same":
            noise = noise[:, :1]
        noise = noise.to(cubelet_mask.device).expand(batch, num_streams, num_cubelets).float()
        real = cubelet_mask.bool().unsqueeze(1)
        # Padding sorts last so it is never visible.
        ids_shuffle = torch.argsort(noise.masked_fill(~real, 2.0), dim=-1)
        ids_restore = torch.argsort(ids_shuffle, dim=-1)
        num_masked = torch.tensor(
            [config.num_masked_cubelets(r) for r in range(num_cubelets + 1)], device=cubelet_mask.device
        )
        num_real = cubelet_mask.long().sum(-1)
        num_keep = (num_real - num_masked[num_real])[:, None, None]
        bool_masked_pos = (ids_restore >= num_keep) & real  # ids_restore: each cubelet's rank in shuffled order
        return bool_masked_pos, ids_restore

    def forward(
        self,
        pose_values: torch.Tensor | None = None,
        keypoint_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MSMAEModelOutput | tuple:
        r"""
        pose_values (`torch.FloatTensor` of shape `(batch_size, num_frames, num_keypoints, num_coordinates)`):
            Normalised keypoints of `config.streams`, concatenated in that order (see `MSMAEPoseProcessor`).
        keypoint_mask (`torch.BoolTensor` of shape `(batch_size, num_frames, num_keypoints)`, *optional*):
            1 where MediaPipe detected the keypoint. Undetected keypoints enter as 0 whatever their value (NaN too).
        attention_mask (`torch.LongTensor` of shape `(batch_size, num_frames)`, *optional*):
            1 for real frames, 0 for padding. Any frame count works: frames are padded to a multiple of
            `cubelet_size`, and a cubelet with at least one real frame is a real token.
        noise (`torch.FloatTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
            Mask the clip MAE-style (see `random_masking`) with this noise. Each stream then has
            `config.num_visible_cubelets(num_cubelets)` token slots, a number fixed by the input's shape, so the
            forward has static shapes and compiles without graph breaks.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
            An explicit mask instead (True = hidden from the encoder). Every stream of a sample must keep the same
            number of visible cubelets; the slots are the batch's largest count, which needs a host sync (not for
            `torch.compile`).
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_no_unknown_kwargs(self, kwargs)

        pose_values, keypoint_mask, frame_mask, cubelet_mask = prepare_inputs(
            self.config, pose_values, keypoint_mask, attention_mask
        )
        tokens = self.embeddings(pose_values, keypoint_mask, frame_mask)
        batch, num_streams, num_cubelets, hidden = tokens.shape
        token_mask = cubelet_mask.unsqueeze(1).expand(-1, num_streams, -1)
        visible_indices = ids_restore = None
        if noise is not None or bool_masked_pos is not None:
            if bool_masked_pos is None:
                bool_masked_pos, ids_restore = self.random_masking(cubelet_mask, noise)
                keep = token_mask.bool() & ~bool_masked_pos
                num_visible = self.config.num_visible_cubelets(num_cubelets)
            else:
                if tuple(bool_masked_pos.shape) != (batch, num_streams, num_cubelets):
                    raise ValueError(
                        f"`bool_masked_pos` must have shape {(batch, num_streams, num_cubelets)}, got {tuple(bool_masked_pos.shape)}."
                    )
                bool_masked_pos = bool_masked_pos.bool() & token_mask.bool()
                keep = token_mask.bool() & ~bool_masked_pos
                counts = keep.sum(-1)
                if (counts != counts[:, :1]).any():
                    raise ValueError("Every stream of a sample must keep the same number of visible cubelets.")
                num_visible = int(counts.max().clamp(min=1))
                ids_restore = torch.argsort(torch.argsort(bool_masked_pos.to(torch.int8), dim=-1, stable=True), dim=-1)
            # Visible cubelets first, in time order (stable sort), then the rest; `num_visible` slots per stream.
            order = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True)
            visible_indices = order[..., :num_visible]
            tokens = torch.gather(tokens, 2, visible_indices.unsqueeze(-1).expand(-1, -1, -1, hidden))
            token_mask = torch.gather(keep, 2, visible_indices).long()

        hidden_states = tokens.flatten(1, 2)
        token_mask = token_mask.flatten(1, 2)
        if self.cls_token is not None:
            hidden_states = torch.cat([self.cls_token.expand(batch, -1, -1).to(hidden_states.dtype), hidden_states], 1)
            token_mask = torch.cat([token_mask.new_ones(batch, 1), token_mask], 1)

        hidden_states, all_hidden, all_attentions = self.encoder(
            hidden_states, token_mask, output_attentions, output_hidden_states
        )
        sequence_output = self.layernorm(hidden_states)
        if self.cls_token is not None:
            pooled = sequence_output[:, 0]
        else:
            pooled = masked_mean(sequence_output, token_mask)

        output = MSMAEModelOutput(
            last_hidden_state=sequence_output,
            pooler_output=pooled,
            attention_mask=token_mask,
            visible_indices=visible_indices,
            mask=bool_masked_pos.long() if bool_masked_pos is not None else None,
            ids_restore=ids_restore,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()

    def stream_tokens(self, last_hidden_state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Splits an unmasked `last_hidden_state` into `{stream: (batch, num_cubelets, hidden)}`."""
        tokens = last_hidden_state[:, 1:] if self.cls_token is not None else last_hidden_state
        tokens = tokens.unflatten(1, (self.config.num_streams, -1))
        return {name: tokens[:, i] for i, name in enumerate(self.config.streams)}


class MSMAEDecoder(nn.Module):
    """Lightweight MAE decoder: fills masked cubelets with a mask token and reconstructs their keypoints."""

    def __init__(self, config: MSMAEConfig):
        super().__init__()
        self.config = config
        self.decoder_embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        # Mask tokens are otherwise identical across streams, so each stream gets an identity embedding.
        self.stream_embeddings = nn.Parameter(torch.zeros(config.num_streams, config.decoder_hidden_size))
        self.position_encoding = MSMAEPositionEncoding(config.decoder_hidden_size, config)
        self.layers = nn.ModuleList(
            [
                MSMAELayer(config, config.decoder_hidden_size, config.decoder_num_attention_heads, config.decoder_intermediate_size)
                for _ in range(config.decoder_num_hidden_layers)
            ]
        )
        self.decoder_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        groups = dict.fromkeys(config.projection_group(name) for name in config.streams)
        sizes = dict(zip(config.streams, config.stream_num_keypoints))
        self.decoder_pred = nn.ModuleDict(
            {
                group: nn.Linear(
                    config.decoder_hidden_size,
                    config.cubelet_size
                    * next(sizes[s] for s in config.streams if config.projection_group(s) == group)
                    * config.num_coordinates,
                )
                for group in groups
            }
        )

    def forward(self, encoded, visible_indices, visible_mask, bool_masked_pos):
        """
        encoded: `(B, num_streams * num_visible, hidden)` encoder output; visible_indices / visible_mask:
        `(B, num_streams, num_visible)`; bool_masked_pos: `(B, num_streams, num_cubelets)`. Returns `(B, T', K, D)`
        keypoints.
        """
        config = self.config
        batch, num_streams, num_visible = visible_indices.shape
        num_cubelets = bool_masked_pos.shape[-1]
        encoded = self.decoder_embed(encoded).unflatten(1, (num_streams, num_visible))
        # Slots past a sample's visible count hold masked cubelets the encoder never saw: write mask tokens there.
        visible_mask = visible_mask.bool()
        mask_token = self.mask_token.to(encoded.dtype)
        encoded = torch.where(visible_mask.unsqueeze(-1), encoded, mask_token)
        hidden_states = mask_token.expand(batch, num_streams * num_cubelets, -1).unflatten(1, (num_streams, num_cubelets))
        hidden_states = hidden_states.scatter(2, visible_indices.unsqueeze(-1).expand_as(encoded), encoded)
        hidden_states = hidden_states + self.position_encoding(num_cubelets).to(encoded.dtype)
        hidden_states = hidden_states + self.stream_embeddings.to(encoded.dtype)[None, :, None]
        # The decoder attends to every real cubelet: the visible ones it was given and the masked ones it fills in.
        visible = torch.zeros_like(bool_masked_pos, dtype=torch.bool).scatter(2, visible_indices, visible_mask)
        token_mask = (visible | bool_masked_pos.bool()).flatten(1, 2).long()
        hidden_states, _, _ = run_layers(self.layers, config, hidden_states.flatten(1, 2), token_mask)
        hidden_states = self.decoder_norm(hidden_states).unflatten(1, (num_streams, num_cubelets))

        frames = num_cubelets * config.cubelet_size
        predictions = []
        for i, (name, size) in enumerate(zip(config.streams, config.stream_num_keypoints)):
            stream = self.decoder_pred[config.projection_group(name)](hidden_states[:, i])
            predictions.append(stream.reshape(batch, frames, size, config.num_coordinates))
        return torch.cat(predictions, dim=2)


def velocity_target(positions, valid, cubelet_size):
    """Per cubelet, the first frame's positions and then each frame's change from the frame before:
    `(B, T', K, D)` and where each is defined (a change only where the keypoint was detected in both frames).
    T' must be a multiple of `cubelet_size`; `positions` must be finite (0 where not valid)."""
    x = positions.unflatten(1, (-1, cubelet_size))  # (B, C, S, K, D)
    v = valid.unflatten(1, (-1, cubelet_size))
    target = torch.cat([x[:, :, :1], x[:, :, 1:] - x[:, :, :-1]], 2).flatten(1, 2)
    defined = torch.cat([v[:, :, :1], v[:, :, 1:] & v[:, :, :-1]], 2).flatten(1, 2)
    return torch.where(defined.unsqueeze(-1), target, 0.0), defined


class MSMAEForPreTraining(MSMAEPreTrainedModel):
    """MS-MAE with the reconstruction decoder, for masked-pose pretraining (DiffMask or SameMask)."""

    def __init__(self, config: MSMAEConfig):
        super().__init__(config)
        config.use_cls_token = False  # the decoder reconstructs cubelet tokens only
        self.msmae = MSMAEModel(config)
        self.decoder = MSMAEDecoder(config)
        self.post_init()

    def _per_keypoint(self, x):
        """Per-token values `(B, streams, num_cubelets, ...)` spread over each token's frames and keypoints:
        `(B, T', K, ...)`."""
        config = self.config
        stream_of_keypoint = torch.tensor(
            [i for i, size in enumerate(config.stream_num_keypoints) for _ in range(size)], device=x.device
        )
        return x.repeat_interleave(config.cubelet_size, dim=2)[:, stream_of_keypoint].transpose(1, 2)

    def _loss_weights(self, valid, bool_masked_pos):
        """Bool `(B, T', K)`: the keypoints the loss scores (those with a defined target, `valid` padded to T', in
        masked cubelets)."""
        frames = bool_masked_pos.shape[-1] * self.config.cubelet_size
        valid = nn.functional.pad(valid, (0, 0, 0, frames - valid.shape[1]))
        return self._per_keypoint(bool_masked_pos.bool()) & valid

    def _per_token(self, x):
        """`(B, T', K)` summed per (stream, cubelet) token: `(B, streams, num_cubelets)`."""
        x = x.unflatten(1, (-1, self.config.cubelet_size)).sum(2)  # (B, C, K)
        return torch.stack([part.sum(-1) for part in x.split(self.config.stream_num_keypoints, dim=-1)], 1)

    def _loss_terms(self, weights):
        """What the loss averages over: per keypoint (`weights`) or per masked token that has any."""
        if self.config.loss_normalization == "coordinate":
            return weights
        return self._per_token(weights.to(torch.int32)) > 0

    def _token_statistics(self, target, valid):
        """Each (stream, cubelet) token's mean and standard deviation over its valid target values (ViT-MAE's
        `norm_pix_loss`: unbiased variance + 1e-6), spread to `(B, T', K, 1)`, and `valid` without the keypoints
        of tokens that have fewer than two values. Mean 0 and std 1 where a token has none."""
        dims = self.config.num_coordinates
        target = torch.where(valid.unsqueeze(-1), target, 0.0)
        count = self._per_token(valid.to(target.dtype)) * dims
        mean = self._per_token(target.sum(-1)) / count.clamp(min=1)
        spread = self._per_keypoint(mean).unsqueeze(-1)
        squares = torch.where(valid.unsqueeze(-1), (target - spread) ** 2, 0.0)
        variance = self._per_token(squares.sum(-1)) / (count - 1).clamp(min=1)
        enough = count >= 2
        mean = torch.where(enough, mean, 0.0)
        std = torch.where(enough, (variance + 1e-6).sqrt(), 1.0)
        return (self._per_keypoint(mean).unsqueeze(-1), self._per_keypoint(std).unsqueeze(-1),
                valid & self._per_keypoint(enough))

    def reconstruction_target(self, pose_values, valid):
        """What the decoder learns to predict, `(B, T', K, D)` with T' the padded frames, and bool `(B, T', K)`:
        where that target is defined (the keypoints the loss may score), and the per-token `(mean, std)` used to
        normalise it (None without `config.norm_target_loss`). `pose_values` may hold anything (NaN too) where
        `valid` is False; the target is 0 there."""
        config = self.config
        pad = -pose_values.shape[1] % config.cubelet_size
        valid = nn.functional.pad(valid, (0, 0, 0, pad))
        target = torch.where(valid.unsqueeze(-1), nn.functional.pad(pose_values, (0, 0, 0, 0, 0, pad)), 0.0)
        if config.reconstruction_target == "velocity":
            target, valid = velocity_target(target, valid, config.cubelet_size)
        statistics = None
        if config.norm_target_loss:
            mean, std, valid = self._token_statistics(target, valid)
            target = torch.where(valid.unsqueeze(-1), (target - mean) / std, 0.0)
            statistics = (mean, std)
        return target, valid, statistics

    def to_positions(self, logits, statistics=None):
        """The inverse of `reconstruction_target` applied to predictions: keypoint positions `(B, T', K, D)`.
        `statistics` is the `(mean, std)` it returned (the tokens' own, from the ground truth, as ViT-MAE's
        pictures use)."""
        if statistics is not None:
            logits = logits * statistics[1].to(logits.dtype) + statistics[0].to(logits.dtype)
        if self.config.reconstruction_target == "velocity":
            # First frame's position plus the summed changes, within each cubelet.
            logits = logits.unflatten(1, (-1, self.config.cubelet_size)).cumsum(2).flatten(1, 2)
        return logits

    def forward_loss(self, pose_values, valid, logits, bool_masked_pos, num_items_in_batch=None):
        """Squared error between `logits` and the reconstruction target (`reconstruction_target`) over detected
        keypoints (`valid`, `(B, T, K)`) of real frames in masked cubelets, averaged per coordinate or per masked
        token (`config.loss_normalization`). `pose_values` may hold anything (NaN too) where `valid` is False.

        `num_items_in_batch` (what `num_loss_items` counts, summed over every process and accumulated batch, as
        transformers' Trainer passes it) divides the summed error instead of this batch's own count, so that the
        loss and its gradients are those of one mean over the global batch, whatever the number of processes."""
        config = self.config
        target, defined, _ = self.reconstruction_target(pose_values, valid)
        weights = self._loss_weights(defined, bool_masked_pos)  # (B, T', K)
        error = torch.where(weights, ((logits - target.to(logits.dtype)) ** 2).mean(-1), 0.0)
        if config.loss_normalization == "coordinate":
            total = error.sum()
        else:
            # Token mean: each (stream, cubelet) token's error averaged over its own detected keypoints, then over
            # the masked tokens that have any.
            token_error, token_count = self._per_token(error), self._per_token(weights.to(error.dtype))
            total = torch.where(token_count > 0, token_error / token_count.clamp(min=1), 0.0).sum()
        count = self._loss_terms(weights).sum() if num_items_in_batch is None else num_items_in_batch
        return total / torch.as_tensor(count, device=total.device).clamp(min=1)

    @torch.no_grad()
    def num_loss_items(self, pose_values, keypoint_mask=None, attention_mask=None, noise=None, bool_masked_pos=None,
                       **kwargs) -> torch.Tensor:
        """How many terms this batch's loss averages (masked detected keypoints, or masked tokens with any under
        `loss_normalization="token"`), from the masking alone, without running the encoder. Summed over the
        processes of a distributed run it is the `num_items_in_batch` that makes their losses one global mean."""
        if noise is None and bool_masked_pos is None:
            raise ValueError("num_loss_items needs the masking: pass the batch's `noise` or `bool_masked_pos`.")
        pose_values, valid, _, cubelet_mask = prepare_inputs(self.config, pose_values, keypoint_mask, attention_mask)
        if bool_masked_pos is None:
            bool_masked_pos, _ = self.msmae.random_masking(cubelet_mask, noise)
        else:
            bool_masked_pos = bool_masked_pos.bool() & cubelet_mask.bool().unsqueeze(1)
        _, defined, _ = self.reconstruction_target(pose_values, valid)
        return self._loss_terms(self._loss_weights(defined, bool_masked_pos)).sum()

    def forward(
        self,
        pose_values: torch.Tensor | None = None,
        keypoint_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MSMAEForPreTrainingOutput | tuple:
        r"""
        pose_values, keypoint_mask, attention_mask: as in `MSMAEModel.forward`.
        noise (`torch.FloatTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
            Noise that decides the masking (see `MSMAEModel.random_masking`; `config.noise_shape` gives the shape);
            drawn here when neither it nor `bool_masked_pos` is given. For reproducible training and evaluation.
        bool_masked_pos (`torch.BoolTensor` of shape `(batch_size, num_streams, num_cubelets)`, *optional*):
            An explicit mask (True = masked) instead of random masking, e.g. to score a fixed masking pattern.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_no_unknown_kwargs(self, kwargs)
        if noise is None and bool_masked_pos is None and pose_values is not None:
            noise = torch.rand((pose_values.shape[0], *self.config.noise_shape(pose_values.shape[1])), device=pose_values.device)
        outputs = self.msmae(
            pose_values,
            keypoint_mask=keypoint_mask,
            attention_mask=attention_mask,
            noise=noise,
            bool_masked_pos=bool_masked_pos,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        visible_mask = outputs.attention_mask.unflatten(1, (self.config.num_streams, -1))
        logits = self.decoder(outputs.last_hidden_state, outputs.visible_indices, visible_mask, outputs.mask)
        valid = valid_keypoints(pose_values, keypoint_mask, attention_mask)
        loss = self.forward_loss(pose_values, valid, logits, outputs.mask, kwargs.get("num_items_in_batch"))
        reconstruction = logits
        if self.config.reconstruction_target != "position" or self.config.norm_target_loss:
            reconstruction = self.to_positions(logits, self.reconstruction_target(pose_values, valid)[2])

        output = MSMAEForPreTrainingOutput(
            loss=loss,
            logits=logits,
            mask=outputs.mask,
            ids_restore=outputs.ids_restore,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            reconstruction=reconstruction,
        )
        return output if return_dict else output.to_tuple()


class MSMAEForSignClassification(TrainableFromConfigMixin, MSMAEPreTrainedModel):
    """MS-MAE encoder with an isolated-sign classifier.

    Fine-tuning (`config.linear_probe=False`): a learnable [CLS] token is prepended and a linear classifier reads
    its output. Linear probing (`config.linear_probe=True`): the encoder is frozen, its outputs are averaged over
    real tokens, and only the linear classifier trains.
    """

    def __init__(self, config: MSMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        config.use_cls_token = not config.linear_probe  # fine-tuning reads [CLS]; linear probing averages
        self.msmae = MSMAEModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()
        self.set_trainable_parameters()

    def frozen_modules(self) -> list[nn.Module]:
        return [self.msmae] if self.config.linear_probe else []

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        """Mean cross-entropy over the labels (other than -100); with `num_items_in_batch` (Trainer's count of
        labels over every process and accumulated batch) the sum divided by it: one mean over the global batch."""
        problem_type = self.config.problem_type
        reduction = "mean" if num_items_in_batch is None else "sum"
        if problem_type == "multi_label_classification":
            if tuple(labels.shape) != tuple(logits.shape):
                raise ValueError(
                    f"Multi-label `labels` must have shape {tuple(logits.shape)} (one 0/1 target per class), got {tuple(labels.shape)}."
                )
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction=reduction)
        elif problem_type not in (None, "single_label_classification"):
            raise ValueError(
                f"`config.problem_type` {problem_type!r} is not supported: use 'single_label_classification' or "
                "'multi_label_classification'."
            )
        else:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1), reduction=reduction)
        if num_items_in_batch is None:
            return loss
        return loss / torch.as_tensor(num_items_in_batch, device=loss.device).clamp(min=1)

    def forward(
        self,
        pose_values: torch.Tensor | None = None,
        keypoint_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput | tuple:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, config.num_labels)`: cross-entropy loss. With `config.problem_type ==
            "multi_label_classification"`, `(batch_size, num_labels)` 0/1 targets instead: binary cross-entropy on
            each logit (as transformers' classification heads do).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_no_unknown_kwargs(self, kwargs)
        outputs = self.msmae(
            pose_values,
            keypoint_mask=keypoint_mask,
            attention_mask=attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))
        loss = None
        if labels is not None:
            loss = self.classification_loss(logits, labels.to(logits.device), kwargs.get("num_items_in_batch"))
        output = ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "MSMAEPreTrainedModel",
    "MSMAEModel",
    "MSMAEForPreTraining",
    "MSMAEForSignClassification",
    "MSMAEModelOutput",
    "MSMAEForPreTrainingOutput",
    "TrainableFromConfigMixin",
]

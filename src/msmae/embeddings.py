"""Clip-level embeddings from an MS-MAE encoder, for retrieval, clustering and similarity search.

    >>> from msmae import MSMAEModel
    >>> from msmae.processing_msmae import MSMAEPoseProcessor
    >>> from msmae.embeddings import embed_clips
    >>> model = MSMAEModel.from_pretrained("path/to/pretrained")            # doctest: +SKIP
    >>> processor = MSMAEPoseProcessor.from_pretrained("path/to/pretrained")  # doctest: +SKIP
    >>> vectors = embed_clips(model, processor, ["a.pose", "b.pose"], normalize=True)  # doctest: +SKIP
    >>> similarity = vectors @ vectors.T                                     # doctest: +SKIP

Pooling:
- `"mean"` (default): the average of the encoder's last hidden states over the clip's real tokens (every stream's
  cubelets, padding and any [CLS] token left out). This is the representation the paper's linear probe reads, and the
  only one a pretrained (CLS-free) encoder has.
- `"cls"`: the [CLS] token's state; only models fine-tuned with a [CLS] token have one (an
  `MSMAEForSignClassification` trained with `linear_probe=False`).
- `"none"`: no pooling; every token's state, `(tokens, hidden)` per clip, in stream-major order (see
  `MSMAEModel.stream_tokens`).

It imports only torch: the models pool with its `masked_mean` and the pipelines with `embed_batch`, so neither
depends on the other.
"""

import torch

POOLINGS = ("mean", "cls", "none")


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Average of `values (..., H)` over `dim` where `mask` (`values`' shape without H) is nonzero.

    The package's one masked mean (pooling, stream fusion). Masked positions are left out with `where`, so NaN or
    inf there cannot reach the result; an all-masked row gives 0.
    """
    keep = mask.bool().unsqueeze(-1)
    total = torch.where(keep, values, 0.0).sum(dim)
    return total / keep.sum(dim).clamp(min=1).to(values.dtype)


def encoder_of(model):
    """The `MSMAEModel` inside any MS-MAE model (the model itself if it is one)."""
    prefix = getattr(model, "base_model_prefix", "msmae")
    encoder = getattr(model, prefix, model)
    if not hasattr(encoder, "embeddings") or not hasattr(encoder, "encoder"):
        raise TypeError(f"{type(model).__name__} holds no MS-MAE encoder; pass an MSMAEModel or one of its task models.")
    return encoder


def pool_hidden_states(last_hidden_state, token_mask, pooling="mean", has_cls_token=False):
    """Pools `last_hidden_state (B, N, H)` with its token mask `(B, N)`.

    Returns `(B, H)` for `"mean"` and `"cls"`, and `(B, N', H)` with its mask `(B, N')` for `"none"` (the [CLS] token,
    if any, removed).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; use one of {POOLINGS}.")
    if pooling == "cls":
        if not has_cls_token:
            raise ValueError(
                "pooling='cls' needs a model with a [CLS] token (a fine-tuned MSMAEForSignClassification); this encoder "
                "has none. Use pooling='mean'."
            )
        return last_hidden_state[:, 0]
    offset = 1 if has_cls_token else 0
    tokens, mask = last_hidden_state[:, offset:], token_mask[:, offset:]
    if pooling == "none":
        return tokens, mask
    return masked_mean(tokens, mask)


@torch.no_grad()
def embed_batch(model, inputs, pooling="mean"):
    """Embeddings of one processed batch (`pose_values`, `keypoint_mask`, `attention_mask` tensors)."""
    encoder = encoder_of(model)
    device = next(encoder.parameters()).device
    outputs = encoder(
        pose_values=inputs["pose_values"].to(device),
        keypoint_mask=inputs["keypoint_mask"].to(device) if inputs.get("keypoint_mask") is not None else None,
        attention_mask=inputs["attention_mask"].to(device) if inputs.get("attention_mask") is not None else None,
        return_dict=True,
    )
    has_cls = getattr(encoder, "cls_token", None) is not None
    return pool_hidden_states(outputs.last_hidden_state, outputs.attention_mask, pooling, has_cls)


def embed_clips(model, processor, clips, pooling="mean", batch_size=16, normalize=False):
    """Embeds clips with an MS-MAE encoder.

    Args:
        model: an `MSMAEModel`, or any MS-MAE task model (its encoder is used, e.g. a fine-tuned classifier's).
        processor: the checkpoint's `MSMAEPoseProcessor` (same streams and normalisation as in training).
        clips: a list of anything the processor accepts: paths (`.pose`, `.npy`, `.npz`, `.json`, videos), `SignPose`s,
            landmark arrays or dataset rows.
        pooling: `"mean"` (default), `"cls"` or `"none"` (see the module docstring).
        batch_size: clips per forward pass.
        normalize: scale each pooled vector to unit L2 norm (dot products are then cosine similarities).

    Returns:
        `torch.FloatTensor (len(clips), hidden_size)` on the CPU; for `pooling="none"`, a list of `(tokens, hidden)`
        tensors, one per clip, with padding removed.
    """
    if not isinstance(clips, (list, tuple)):
        clips = [clips]
    if not clips:
        raise ValueError("embed_clips got no clips.")
    if normalize and pooling == "none":
        raise ValueError("normalize=True applies to pooled vectors; use pooling='mean' or 'cls'.")
    if hasattr(processor, "check_config"):
        processor.check_config(encoder_of(model).config)
    model.eval()
    results = []
    for start in range(0, len(clips), batch_size):
        inputs = processor(list(clips[start : start + batch_size]), return_tensors="pt")
        pooled = embed_batch(model, inputs, pooling)
        if pooling == "none":
            tokens, mask = pooled
            results.extend(t[m.bool()].float().cpu() for t, m in zip(tokens, mask))
        else:
            results.append(pooled.float().cpu())
    if pooling == "none":
        return results
    embeddings = torch.cat(results)
    return torch.nn.functional.normalize(embeddings, dim=-1) if normalize else embeddings


__all__ = ["embed_clips", "embed_batch", "pool_hidden_states", "encoder_of", "POOLINGS"]

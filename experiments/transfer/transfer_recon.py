"""Masked-reconstruction error on held-out clips: the model against linear interpolation and a mean pose.

All three are scored on exactly the model's loss: squared error averaged over x, y, over the detected keypoints
of real frames in masked cubelets, in the processor's normalised coordinates (shoulder width = 1). The masks come
from the model's own `random_masking` with seeded noise, so every method sees the same hidden cubelets.
"""

import math

import numpy as np
import torch

from msmae.keypoint_layout import STREAM_NUM_KEYPOINTS

GROUPS = {"body": ("body",), "hands": ("left_hand", "right_hand"), "all": ("body", "left_hand", "right_hand")}


def windows(clips, window=64):
    """Consecutive non-overlapping `window`-frame pieces of each clip; the last piece is the clip's final
    `window` frames (overlapping the one before) so no frame is dropped; clips shorter than `window` are whole."""
    pieces = []
    for values, mask in clips:
        length = len(values)
        starts = list(range(0, max(length - window, 0) + 1, window))
        if length > window and starts[-1] + window < length:
            starts.append(length - window)
        pieces.extend((values[s : s + window], mask[s : s + window]) for s in starts)
    return pieces


def batch_windows(pieces, streams):
    """Pad pieces into `pose_values (B, T, K, 2)`, `keypoint_mask (B, T, K)`, `attention_mask (B, T)` tensors."""
    length = max(len(v) for v, _ in pieces)
    k = sum(STREAM_NUM_KEYPOINTS[s] for s in streams)
    values = np.zeros((len(pieces), length, k, 2), np.float32)
    mask = np.zeros((len(pieces), length, k), bool)
    frames = np.zeros((len(pieces), length), np.int64)
    for i, (v, m) in enumerate(pieces):
        values[i, : len(v)], mask[i, : len(v)], frames[i, : len(v)] = v, m, 1
    return torch.from_numpy(values), torch.from_numpy(mask), torch.from_numpy(frames)


def masks_for(model, attention_mask, seed, repeat, offset):
    """`bool_masked_pos (B, streams, L)` from the model's masking rule (its ratio and diff/same strategy) and
    noise seeded by `(seed, repeat, window index)`: the same noise for every model and baseline."""
    s = model.config.cubelet_size
    frames = attention_mask.shape[1]
    num_cubelets = math.ceil(frames / s)
    padded = torch.nn.functional.pad(attention_mask, (0, num_cubelets * s - frames))
    cubelet_mask = padded.unflatten(1, (num_cubelets, s)).amax(-1)
    noise = np.stack(
        [np.random.default_rng([seed, repeat, offset + i]).random((model.config.num_streams, num_cubelets)) for i in range(len(attention_mask))]
    ).astype(np.float32)
    bool_masked_pos, _ = model.msmae.random_masking(cubelet_mask, torch.from_numpy(noise).to(attention_mask.device))
    return bool_masked_pos


def frame_mask(bool_masked_pos, streams, cubelet_size, frames):
    """Per-keypoint masked frames `(B, T, K)` from cubelet masks `(B, streams, L)`."""
    per_frame = bool_masked_pos.repeat_interleave(cubelet_size, dim=2)[:, :, :frames]
    sizes = [STREAM_NUM_KEYPOINTS[s] for s in streams]
    return torch.cat([per_frame[:, i : i + 1].expand(-1, n, -1) for i, n in enumerate(sizes)], 1).transpose(1, 2)


def interpolate(values, mask, hidden, fallback):
    """Linear interpolation in time of each hidden keypoint from the nearest visible frames where it was detected
    (the nearest one when only one side has one; `fallback (K, 2)` when neither). Arrays `(B, T, K[, 2])`."""
    known = mask & ~hidden
    b, t, k = known.shape
    time = np.arange(t)[None, :, None]
    prev = np.maximum.accumulate(np.where(known, time, -1), axis=1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(known, time, t), 1), axis=1), 1)
    has_prev, has_next = prev >= 0, nxt < t
    bi, ki = np.arange(b)[:, None, None], np.arange(k)[None, None, :]
    v_prev = values[bi, np.clip(prev, 0, t - 1), ki]
    v_next = values[bi, np.clip(nxt, 0, t - 1), ki]
    span = np.maximum(nxt - prev, 1)[..., None]
    w = ((time - prev)[..., None] / span).astype(np.float32)
    both = (has_prev & has_next)[..., None]
    out = np.where(both, v_prev + w * (v_next - v_prev), np.where(has_prev[..., None], v_prev, v_next))
    neither = ~(has_prev | has_next)
    out = np.where(neither[..., None], fallback[None, None], out)
    return out.astype(np.float32), neither


class ErrorSums:
    """Running sums of squared error and counts per stream group."""

    def __init__(self, streams):
        self.streams = streams
        self.sums = {g: 0.0 for g in GROUPS}
        self.counts = {g: 0 for g in GROUPS}

    def add(self, prediction, target, weights):
        error = ((prediction - target) ** 2).mean(-1) * weights  # (B, T, K)
        start = 0
        per_stream = {}
        for s in self.streams:
            n = STREAM_NUM_KEYPOINTS[s]
            per_stream[s] = (float(error[..., start : start + n].sum()), int(weights[..., start : start + n].sum()))
            start += n
        for group, members in GROUPS.items():
            for s in members:
                if s in per_stream:
                    self.sums[group] += per_stream[s][0]
                    self.counts[group] += per_stream[s][1]

    def means(self):
        return {g: self.sums[g] / self.counts[g] if self.counts[g] else None for g in GROUPS}


@torch.no_grad()
def reconstruction_errors(model, pieces, mean_pose, *, repeats=4, seed=1234, batch_size=64):
    """Held-out masked-reconstruction MSE of `model` (an `MSMAEForPreTraining`), linear interpolation and the
    mean pose, over `repeats` seeded masks of every window. Also checks that the summed error equals the model's
    own loss on the first batch (same keypoints, same units; for a normalised or velocity target the loss is
    in target units, so the check then holds only for the position target)."""
    model.eval()
    device = model.device
    streams = model.config.streams
    s = model.config.cubelet_size
    sums = {name: ErrorSums(streams) for name in ("model", "interpolation", "mean_pose")}
    fallback_count, hidden_count, loss_check = 0, 0, None
    for repeat in range(repeats):
        for start in range(0, len(pieces), batch_size):
            values, kmask, frames = batch_windows(pieces[start : start + batch_size], streams)
            attention_mask = frames.to(device)
            hidden_cubelets = masks_for(model, attention_mask, seed, repeat, start)
            out = model(pose_values=values.to(device), keypoint_mask=kmask.to(device), attention_mask=attention_mask,
                        bool_masked_pos=hidden_cubelets)
            hidden_cubelets, prediction = hidden_cubelets.cpu(), positions(out).float().cpu().numpy()
            t = values.shape[1]
            hidden = frame_mask(hidden_cubelets, streams, s, t).numpy() & frames.bool().numpy()[..., None]
            weights = (hidden & kmask.numpy()).astype(np.float32)
            target = values.numpy()
            sums["model"].add(prediction[:, :t], target, weights)
            interp, neither = interpolate(target, kmask.numpy(), hidden, mean_pose)
            sums["interpolation"].add(interp, target, weights)
            sums["mean_pose"].add(np.broadcast_to(mean_pose, target.shape), target, weights)
            fallback_count += int((neither & (weights > 0)).sum())
            hidden_count += int(weights.sum())
            if loss_check is None:
                batch = ErrorSums(streams)
                batch.add(prediction[:, :t], target, weights)
                loss_check = {"model_loss": float(out.loss), "recomputed": batch.means()["all"]}
    result = {name: acc.means() for name, acc in sums.items()}
    result["scored_keypoints"] = hidden_count
    result["interpolation_fallback_fraction"] = fallback_count / max(hidden_count, 1)
    result["loss_check"] = loss_check
    return result


@torch.no_grad()
def token_mean_errors(model, pieces, *, repeats=4, seed=1234, batch_size=64):
    """The held-out error of predicting every hidden keypoint as its own token's mean over the token's detected
    values (what a normalised target's de-normalisation hands a model for free), on the same masks and keypoints as
    `reconstruction_errors`. `model` gives the masking rule and the token statistics (any `MSMAEForPreTraining`)."""
    streams, s = model.config.streams, model.config.cubelet_size
    sums = ErrorSums(streams)
    for repeat in range(repeats):
        for start in range(0, len(pieces), batch_size):
            values, kmask, frames = batch_windows(pieces[start : start + batch_size], streams)
            hidden_cubelets = masks_for(model, frames, seed, repeat, start)
            t = values.shape[1]
            hidden = frame_mask(hidden_cubelets, streams, s, t).numpy() & frames.bool().numpy()[..., None]
            pad = -t % s
            padded = torch.nn.functional.pad(values, (0, 0, 0, 0, 0, pad))
            valid = torch.nn.functional.pad(kmask, (0, 0, 0, pad))
            mean, _, _ = model._token_statistics(padded, valid)
            prediction = mean.expand_as(padded)[:, :t].numpy()
            sums.add(prediction, values.numpy(), (hidden & kmask.numpy()).astype(np.float32))
    return sums.means()


def positions(output):
    """The model's reconstruction in pose coordinates: de-normalised and integrated where its target is not the
    positions themselves (issue 27), so that every target is scored on the same error."""
    reconstruction = getattr(output, "reconstruction", None)
    return output.logits if reconstruction is None else reconstruction


def mean_pose_of(clips, num_keypoints):
    """Mean normalised position of each keypoint over the frames where it was detected: `(K, 2)`."""
    total = np.zeros((num_keypoints, 2), np.float64)
    count = np.zeros(num_keypoints, np.float64)
    for values, mask in clips:
        total += (values * mask[..., None]).sum(0)
        count += mask.sum(0)
    return (total / np.maximum(count, 1)[:, None]).astype(np.float32)

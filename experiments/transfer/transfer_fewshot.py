"""Few-shot sign recognition on MSL-150: seeded episodes, a linear probe and 1-nearest-neighbour on frozen
features, and fine-tuning of the encoder with a classifier.

An episode draws k clips per class as the support (training) set; every other clip is a query. The same episodes
are used for every feature set and model, so differences between them are paired.
"""

import numpy as np
import torch

from msmae import MSMAEForSignClassification


def episodes(labels, k, count, seed=0):
    """`count` (support, query) index pairs with `k` support clips per class."""
    classes = np.unique(labels)
    result = []
    for e in range(count):
        rng = np.random.default_rng([seed, k, e])
        support = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes])
        query = np.setdiff1d(np.arange(len(labels)), support)
        result.append((support, query))
    return result


@torch.no_grad()
def encoder_features(encoder, values, mask, frames=None, batch_size=64):
    """Mean of the frozen encoder's outputs over the real tokens (`pooler_output` without a [CLS] token)."""
    encoder.eval()
    out = []
    for s in range(0, len(values), batch_size):
        v = torch.as_tensor(values[s : s + batch_size], device=encoder.device)
        m = torch.as_tensor(mask[s : s + batch_size], device=encoder.device)
        out.append(encoder(pose_values=v, keypoint_mask=m).pooler_output.float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def layer_features(encoder, values, mask):
    """Mean over real tokens of every encoder layer's output (index 0 = the cubelet embeddings, before any layer;
    the last is the final layer before the closing LayerNorm): a list of `(N, H)` arrays."""
    encoder.eval()
    out = encoder(pose_values=torch.as_tensor(values, device=encoder.device),
                  keypoint_mask=torch.as_tensor(mask, device=encoder.device), output_hidden_states=True)
    weights = out.attention_mask.unsqueeze(-1).float()
    return [((h.float() * weights).sum(1) / weights.sum(1)).cpu().numpy() for h in out.hidden_states]


def linear_probe_accuracy(features, labels, support, query, weight_decay=1e-3, iterations=100):
    """Multinomial logistic regression on the support set (features centred on the support mean and scaled to
    unit length; L2 penalty), fitted to convergence with L-BFGS; accuracy on the queries."""
    x = torch.as_tensor(features, dtype=torch.float64)
    x = x - x[support].mean(0)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    y = torch.as_tensor(labels)
    num_classes = int(y.max()) + 1
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x[support] @ w + b, y[support]) + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        predictions = (x[query] @ w + b).argmax(1)
    return float((predictions == y[query]).double().mean())


def nearest_neighbour_accuracy(features, labels, support, query):
    """1-nearest-neighbour by cosine similarity."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    similarity = x[query] @ x[support].T
    return float((labels[support][similarity.argmax(1)] == labels[query]).mean())


def fine_tune_accuracy(make_model, values, mask, labels, support, query, *, steps=30, learning_rate=1e-4, seed=0,
                       device="cpu"):
    """Fine-tunes a fresh `MSMAEForSignClassification` from `make_model()` ([CLS] head, whole encoder trained) on
    the support clips, full batch, AdamW with weight decay 1e-3 at a constant rate; accuracy on the queries."""
    torch.manual_seed(seed)
    model: MSMAEForSignClassification = make_model().to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-3)
    v, m, y = (torch.as_tensor(values[support], device=device), torch.as_tensor(mask[support], device=device),
               torch.as_tensor(labels[support], device=device))
    for _ in range(steps):
        loss = model(pose_values=v, keypoint_mask=m, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                model(pose_values=torch.as_tensor(values[q], device=device),
                      keypoint_mask=torch.as_tensor(mask[q], device=device)).logits
                for q in np.array_split(query, max(1, len(query) // 64))
            ]
        )
    return float((logits.argmax(1).cpu().numpy() == labels[query]).mean())


def summarize(accuracies):
    """Mean and 95% normal-approximation confidence half-width, in percent."""
    a = np.asarray(accuracies) * 100
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": float(a.mean()), "ci95": float(half), "episodes": len(a)}


def paired_difference(a, b):
    """Mean of a - b over the same episodes (percentage points) with its 95% half-width."""
    return summarize(np.asarray(a) - np.asarray(b))

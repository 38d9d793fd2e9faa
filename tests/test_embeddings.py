"""Clip embeddings (`msmae.embeddings`): pooling choices, padding invariance, and the embedding pipeline."""

import numpy as np
import pytest
import torch
from conftest import synthetic_clip, tiny_config

from msmae import MSMAEForSignClassification, MSMAEModel
from msmae.embeddings import embed_clips, pool_hidden_states
from msmae.processing_msmae import MSMAEPoseProcessor

@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return MSMAEModel(tiny_config()).eval()


@pytest.fixture(scope="module")
def full_length():
    # Every frame kept, so clips of different lengths pad differently within a batch.
    return MSMAEPoseProcessor(sampling="full")


def test_mean_pooling_is_the_average_of_real_tokens(encoder, full_length):
    clips = [synthetic_clip(13, 0), synthetic_clip(30, 1), synthetic_clip(7, 2)]
    embeddings = embed_clips(encoder, full_length, clips)
    assert embeddings.shape == (3, 32) and embeddings.dtype == torch.float32
    for row, clip in enumerate(clips):
        inputs = full_length(clip, return_tensors="pt")
        with torch.no_grad():
            hidden = encoder(**inputs).last_hidden_state[0]  # one clip, no padding: every token is real
        torch.testing.assert_close(embeddings[row], hidden.mean(0), atol=1e-5, rtol=1e-5)


def test_embeddings_do_not_depend_on_batch_padding(encoder, full_length):
    clips = [synthetic_clip(9, 3), synthetic_clip(41, 4)]
    together = embed_clips(encoder, full_length, clips, batch_size=2)
    alone = torch.cat([embed_clips(encoder, full_length, [clip]) for clip in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_normalize_gives_unit_vectors_and_cosine_similarity(encoder, full_length):
    clips = [synthetic_clip(20, 5), synthetic_clip(20, 5), synthetic_clip(20, 6)]
    vectors = embed_clips(encoder, full_length, clips, normalize=True)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(3))
    similarity = vectors @ vectors.T
    assert similarity[0, 1] == pytest.approx(1.0, abs=1e-5)  # the same clip twice
    assert similarity[0, 2] < 0.9999


def test_cls_pooling_needs_a_cls_token(encoder, full_length):
    clip = synthetic_clip(16, 7)
    with pytest.raises(ValueError, match="pooling='mean'"):
        embed_clips(encoder, full_length, [clip], pooling="cls")
    torch.manual_seed(0)
    classifier = MSMAEForSignClassification(tiny_config(num_labels=3)).eval()
    cls = embed_clips(classifier, full_length, [clip], pooling="cls")
    mean = embed_clips(classifier, full_length, [clip], pooling="mean")
    with torch.no_grad():
        hidden = classifier.msmae(**full_length(clip, return_tensors="pt")).last_hidden_state[0]
    torch.testing.assert_close(cls[0], hidden[0])
    torch.testing.assert_close(mean[0], hidden[1:].mean(0), atol=1e-5, rtol=1e-5)  # the [CLS] token is left out


def test_no_pooling_returns_each_clips_real_tokens(encoder, full_length):
    clips = [synthetic_clip(10, 8), synthetic_clip(25, 9)]
    tokens = embed_clips(encoder, full_length, clips, pooling="none")
    streams = encoder.config.num_streams
    assert [t.shape for t in tokens] == [(streams * 5, 32), (streams * 13, 32)]  # ceil(frames / 2) cubelets a stream


def test_bad_arguments():
    hidden, mask = torch.zeros(1, 4, 8), torch.ones(1, 4)
    with pytest.raises(ValueError, match="Unknown pooling"):
        pool_hidden_states(hidden, mask, pooling="max")
    with pytest.raises(ValueError, match="no clips"):
        embed_clips(MSMAEModel(tiny_config()), MSMAEPoseProcessor(), [])


def test_embedding_pipeline_matches_embed_clips(encoder, full_length):
    from transformers import pipeline

    import msmae.pipeline_msmae  # noqa: F401 - registers the tasks

    clips = [synthetic_clip(12, 10), synthetic_clip(33, 11)]
    pipe = pipeline("sign-language-embedding", model=encoder, feature_extractor=full_length, device="cpu")
    vectors = pipe(clips, batch_size=2, normalize=True)
    assert len(vectors) == 2 and len(vectors[0]) == 32
    expected = embed_clips(encoder, full_length, clips, normalize=True)
    np.testing.assert_allclose(np.array(vectors), expected.numpy(), atol=1e-5)
    tokens = pipe(clips[0], pooling="none", return_tensors=True)
    assert tokens.shape == (encoder.config.num_streams * 6, 32)

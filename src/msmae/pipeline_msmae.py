"""Transformers pipelines for MS-MAE checkpoints: sign recognition, sign translation and clip embeddings.

Tasks (registered with `transformers.pipelines.PIPELINE_REGISTRY`):
- `"sign-language-recognition"`: a clip in, the top-k sign labels with scores out (`MSMAEForSignClassification`).
- `"sign-language-translation"`: a clip in, text out, through `model.generate` (any model with `generate`, e.g. the
  sign translation model).
- `"sign-language-embedding"`: a clip in, one vector out (the Hub's `feature-extraction` task; see
  `embeddings.py` for the pooling choices).

A clip is any of (MediaPipe Holistic runs on videos and frames):
- a video: a path (`.mp4`, `.webm`, `.avi`, `.mov`, `.mkv`), its bytes (`bytes`, `bytearray`, `memoryview`: an upload,
  a request body), a binary file object (anything with `read()`: `open(path, "rb")`, `io.BytesIO`) or an `http://` /
  `https://` URL (downloaded with the standard library). Bytes are decoded in memory; their container (MP4/MOV,
  WebM/MKV, AVI) is recognised from its signature;
- decoded frames: an RGB `uint8` array `(frames, height, width, 3)` (numpy or torch), or a list of PIL images (one
  clip's frames, all one size; converted to RGB);
- poses: a path (`.pose`, `.npy`, `.npz`, `.json`, a folder of per-frame `.npy`), the bytes, file object or URL of a
  `.pose` file, a `SignPose`, a landmark array `(frames, keypoints, 2-4)` in a layout `load_pose` knows (MediaPipe
  Holistic order, the stored 160-keypoint order), or a dataset row;
- model-ready inputs: a dict with `pose_values (frames, K, 2)` (already normalised) and optional
  `keypoint_mask (frames, K)`.

A list (or tuple) of clips is a batch, one answer per clip: `pipe(clips, batch_size=8)`; an empty list gets `[]`.
A batch with clips that cannot be used (a missing file, a corrupt video, no person in view) raises `BadClipsError`
(a `ValueError`) naming each bad clip by its position and what is wrong with it; the good clips are answered all
the same: `error.answers` holds their answers in input order (None for each bad clip), `error.errors` maps each bad
clip's position to its exception. Nothing is returned silently short or reordered. A list whose items are all
PIL images is ONE clip (its frames, one answer); a list of such lists is a batch. A list of single images as arrays
is a batch of one-frame arrays, which are rejected: stack them (`np.stack(frames)`). An array that fits no layout (one
image `(height, width, 3)`, float frames, an unknown shape) raises a `ValueError` naming its shape and dtype and
listing the layouts accepted.

Every checkpoint an msmae model's `save_pretrained` writes carries this file (see `hub_packaging.py`), so
it loads where msmae is not installed, with the task named (`sign-language-*` or the Hub's name, e.g.
`video-classification`) or inferred:

    >>> from transformers import pipeline
    >>> recognizer = pipeline(model="path/or/repo", trust_remote_code=True)  # doctest: +SKIP
    >>> recognizer("hello.mp4", top_k=3)  # doctest: +SKIP
    [{'label': 'HELLO', 'score': 0.91}, ...]
"""

import functools
import os
import sys
from collections.abc import Mapping

import numpy as np
import torch
import transformers
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

from .embeddings import POOLINGS, embed_batch
from .hub_packaging import EMBEDDING_TASK, PIPELINE_CLASSES, RECOGNITION_TASK, TRANSLATION_TASK
from .pose_io import SignPose
from .clips import is_byte_source, is_video, load_pose, read_clip_bytes
from .processing_msmae import MSMAEPoseProcessor

logger = logging.get_logger(__name__)

PROCESSOR_PRESETS = {RECOGNITION_TASK: "recognition", TRANSLATION_TASK: "translation", EMBEDDING_TASK: "recognition"}
_MODEL_INPUTS = ("pose_values", "keypoint_mask", "attention_mask")


class NonFiniteOutputError(ValueError):
    """The model answered NaN or inf: a fault of the checkpoint (inputs reach it finite), never a score."""


class BadClipsError(ValueError):
    """Some clips of a batch could not be used. `answers`: the answer of each clip in input order, None for a bad
    one; `errors`: position -> the exception of each bad clip. The message names each bad clip."""

    def __init__(self, clips, answers, errors):
        self.answers, self.errors = answers, errors
        named = "; ".join(f"clip {index} ({_describe(clips[index])}): {_reason(error, clips[index])}"
                          for index, error in errors.items())
        super().__init__(
            f"{len(errors)} of {len(clips)} clips could not be used: {named}. Fix or remove them; the other clips "
            "were answered (`error.answers`, None for each bad clip)."
        )


# What a clip that cannot be used raises (missing or corrupt file, failed download, no person, no MediaPipe).
CLIP_ERRORS = (OSError, ValueError, ImportError)


def _reason(error, clip) -> str:
    """The error's message without the "Cannot use the clip NAME: " prefix `preprocess` adds (the clip is named)."""
    text = " ".join(str(error).split())
    prefix = f"Cannot use the clip {_describe(clip)}: "
    return text.removeprefix(prefix)


def _check_finite(values, model, what):
    if not torch.isfinite(values).all():
        name = getattr(model, "name_or_path", "") or f"the {type(model).__name__} (not loaded from a checkpoint)"
        raise NonFiniteOutputError(
            f"{name} gave {what} that are not finite (NaN or inf), so no answer is given: its weights hold NaN or "
            "inf (training diverged, or they were damaged before they were saved). Use another checkpoint."
        )


# ---- clips ----------------------------------------------------------------------------------------------------------


def _as_tensor(value, dtype):
    value = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
    return value.to(dtype)


def _model_ready(clip: Mapping, num_keypoints: int) -> dict:
    """Batch-of-one tensors from a dict of model-ready inputs, with the shapes checked."""
    pose_values = _as_tensor(clip["pose_values"], torch.float32)
    if pose_values.dim() == 4 and pose_values.shape[0] == 1:
        pose_values = pose_values[0]
    if pose_values.dim() != 3 or pose_values.shape[1:] != (num_keypoints, 2):
        raise ValueError(
            f"`pose_values` must have shape (frames, {num_keypoints}, 2) for this model, got {tuple(pose_values.shape)}."
        )
    frames = pose_values.shape[0]
    keypoint_mask = clip.get("keypoint_mask")
    keypoint_mask = torch.ones(frames, num_keypoints, dtype=torch.bool) if keypoint_mask is None else _as_tensor(
        keypoint_mask, torch.bool
    ).reshape(frames, num_keypoints)
    attention_mask = clip.get("attention_mask")
    attention_mask = torch.ones(frames, dtype=torch.long) if attention_mask is None else _as_tensor(
        attention_mask, torch.long
    ).reshape(frames)
    return {"pose_values": pose_values[None], "keypoint_mask": keypoint_mask[None], "attention_mask": attention_mask[None]}


def _describe(clip) -> str:
    if isinstance(clip, (str, os.PathLike)):
        return str(clip)
    if clip is None or isinstance(clip, (bool, int, float, complex)):
        return repr(clip)
    if isinstance(clip, SignPose) or type(clip).__name__ == "SignPose":
        return getattr(clip, "source", "") or "SignPose"
    if isinstance(clip, (bytes, bytearray, memoryview)):
        return "given as bytes"
    if _is_image_list(clip):
        return f"({len(clip)} PIL images)"
    if hasattr(clip, "shape"):
        return f"array of shape {tuple(clip.shape)}"
    name = getattr(clip, "name", None) if is_byte_source(clip) else None
    return f"{type(clip).__name__} {name}" if isinstance(name, str) else type(clip).__name__


def _is_image_list(clip) -> bool:
    """Whether `clip` is a non-empty list or tuple of PIL images (one clip's frames)."""
    image = sys.modules.get("PIL.Image")  # no PIL import: without it loaded, nothing can be a PIL image
    return image is not None and isinstance(clip, (list, tuple)) and bool(clip) and all(
        isinstance(item, image.Image) for item in clip
    )


def frames_from_images(images) -> np.ndarray:
    """`(frames, height, width, 3)` RGB uint8 from one clip's frames as PIL images (any mode, converted to RGB)."""
    frames = [np.asarray(image.convert("RGB")) for image in images]
    for index, frame in enumerate(frames):
        if frame.shape != frames[0].shape:
            raise ValueError(f"image {index} is {frame.shape[1]}x{frame.shape[0]} pixels but image 0 is "
                             f"{frames[0].shape[1]}x{frames[0].shape[0]}; a clip's frames must all have one size.")
    return np.stack(frames)


def pad_clips(processor, items):
    """One padded batch from batch-of-one model inputs, through the processor's `pad` (the one padder)."""
    features = [{key: item[key][0] for key in _MODEL_INPUTS} for item in items]
    return {key: value for key, value in processor.pad(features, return_tensors="pt").items() if key in _MODEL_INPUTS}


# ---- the pipelines -------------------------------------------------------------------------------------------------


class SignPosePipeline(Pipeline):
    """Shared input handling: any clip -> `MSMAEPoseProcessor` -> model inputs, batched with frame padding.

    The processor is the checkpoint's `preprocessor_config.json`, or pass `feature_extractor=` (a processor or a path).
    Extra keyword arguments for reading clips (`fps` of frame-image folders and frame arrays, `width`, `height`,
    `layout`, ...) go in `load_kwargs`.
    """

    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    default_task = None

    def __init__(self, model, feature_extractor=None, **kwargs):
        feature_extractor = self._resolve_pose_processor(model, feature_extractor, kwargs.get("task"))
        super().__init__(model=model, feature_extractor=feature_extractor, **kwargs)

    def _resolve_pose_processor(self, model, processor, task):
        if isinstance(processor, (str, os.PathLike)):
            return MSMAEPoseProcessor.from_pretrained(str(processor))
        if processor is not None:
            return processor
        source = getattr(model, "name_or_path", "") or ""
        if source and os.path.isdir(source) and not os.path.isfile(os.path.join(source, "preprocessor_config.json")):
            source = ""
        if source:
            try:
                return MSMAEPoseProcessor.from_pretrained(source)
            except OSError as error:
                logger.warning(f"Could not load the pose processor of {source} ({error}).")
        preset = PROCESSOR_PRESETS.get(task or self.default_task, "recognition")
        streams = self._pose_config(model).streams
        logger.warning(
            f"No preprocessor_config.json with the model: using MSMAEPoseProcessor.from_preset({preset!r}, "
            f"streams={list(streams)}). Save the training processor with the checkpoint so inference normalises "
            "clips the same way."
        )
        return MSMAEPoseProcessor.from_preset(preset, streams=list(streams))

    @staticmethod
    def _pose_config(model):
        """The MS-MAE part of the model's config (the translation config nests it as `encoder`)."""
        nested = getattr(model.config, "encoder", None)
        return nested if hasattr(nested, "streams") else model.config

    @property
    def pose_processor(self):
        return self.feature_extractor

    def _sanitize_parameters(self, load_kwargs=None, **kwargs):
        preprocess = {"load_kwargs": load_kwargs} if load_kwargs is not None else {}
        forward, postprocess = self._sanitize_task_parameters(**kwargs)
        return preprocess, forward, postprocess

    def _sanitize_task_parameters(self, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(kwargs)}.")
        return {}, {}

    def _extractor(self):
        # One MediaPipe graph for all the videos this pipeline reads (start-up costs about a second).
        if getattr(self, "_holistic", None) is None:
            try:  # relative, so that checkpoints carrying this pipeline carry holistic.py too
                from .holistic import HolisticExtractor
            except ImportError as error:
                raise ImportError(f"Reading a video needs MediaPipe and PyAV (msmae's video extra): pip install "
                                  f"'msmae[video]' ({error}).") from error
            self._holistic = HolisticExtractor()
        return self._holistic

    def preprocess(self, clip, load_kwargs=None):
        given = clip
        try:
            config = self._pose_config(self.model)
            if clip is None or isinstance(clip, (bool, int, float, complex)):
                raise ValueError(f"{clip!r} is not a clip; give a video or pose file (a path, its bytes or a URL), "
                                 "frames, landmarks or a SignPose (see the pipeline's docstring).")
            if isinstance(clip, Mapping) and "pose_values" in clip:
                return _model_ready(clip, config.num_keypoints)
            if is_byte_source(clip):  # bytes, file objects, URLs: read once here, the bytes say if MediaPipe must run
                clip, _ = read_clip_bytes(clip)
            elif _is_image_list(clip):
                clip = frames_from_images(clip)
            extractor = self._extractor() if is_video(clip) else None
            loaded = load_pose(clip, extractor=extractor, **(load_kwargs or {}))
            inputs = self.pose_processor([loaded], return_tensors="pt")
        except (ValueError, KeyError) as error:
            raise ValueError(f"Cannot use the clip {_describe(given)}: {error}") from error
        if inputs["pose_values"].shape[2] != config.num_keypoints:
            raise ValueError(
                f"The processor outputs {inputs['pose_values'].shape[2]} keypoints per frame but the model expects "
                f"{config.num_keypoints} (streams {list(config.streams)}); use the checkpoint's own processor."
            )
        return {key: inputs[key] for key in _MODEL_INPUTS}

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        # As Pipeline.get_iterator, with a collate function for pose inputs (transformers' pads only tokenizer and
        # feature-extractor keys it knows).
        from torch.utils.data import DataLoader
        from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

        dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        collate = (lambda items: items[0]) if batch_size == 1 else functools.partial(pad_clips, self.pose_processor)
        loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=collate)
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def __call__(self, inputs, **kwargs):
        """Runs the task on one clip or a list of clips (see the module docstring for what a clip can be)."""
        if _is_image_list(inputs):  # one clip's frames, not a batch
            inputs = frames_from_images(inputs)
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if not isinstance(inputs, list):
            return super().__call__(inputs, **kwargs)
        if not inputs:
            return []
        self._sanitize_parameters(**{k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")})
        try:
            return super().__call__(inputs, **kwargs)
        except NonFiniteOutputError:  # the checkpoint's fault, whatever the clips
            raise
        except CLIP_ERRORS:
            pass  # which clip failed is known only by running them one at a time
        return self._answer_each(inputs, kwargs)

    def _answer_each(self, clips, kwargs):
        """Each clip alone: the answers of the good ones, and `BadClipsError` naming the bad ones if any."""
        kwargs = {k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")}
        answers, errors = [], {}
        for index, clip in enumerate(clips):
            try:
                answers.append(super().__call__(clip, **kwargs))
            except NonFiniteOutputError:
                raise
            except CLIP_ERRORS as error:
                answers.append(None)
                errors[index] = error
        if errors:
            raise BadClipsError(clips, answers, errors)
        return answers


class SignLanguageRecognitionPipeline(SignPosePipeline):
    """Isolated sign recognition: `[{"label": ..., "score": ...}, ...]`, best first, for each clip.

    Call arguments: `top_k` (default 5, at most the number of labels), `function_to_apply` (`"softmax"`, the
    default; `"sigmoid"`, the default for multi-label heads (`problem_type="multi_label_classification"`); `"none"`
    for raw logits).
    """

    default_task = RECOGNITION_TASK

    def _sanitize_task_parameters(self, top_k=None, function_to_apply=None, **kwargs):
        super()._sanitize_task_parameters(**kwargs)
        postprocess = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
                raise ValueError(f"top_k must be at least 1 (a whole number), got {top_k!r}.")
            postprocess["top_k"] = int(top_k)
        if function_to_apply is not None:
            if function_to_apply not in ("softmax", "sigmoid", "none"):
                raise ValueError(f"function_to_apply must be 'softmax', 'sigmoid' or 'none', got {function_to_apply!r}.")
            postprocess["function_to_apply"] = function_to_apply
        return {}, postprocess

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None):
        if function_to_apply is None:  # as the head was trained: independent labels get independent scores
            multi_label = getattr(self.model.config, "problem_type", None) == "multi_label_classification"
            function_to_apply = "sigmoid" if multi_label else "softmax"
        logits = model_outputs["logits"][0].float()
        _check_finite(logits, self.model, "logits")
        if function_to_apply == "softmax":
            scores = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        top_k = min(top_k, scores.shape[-1])
        values, indices = scores.topk(top_k)
        id2label = self.model.config.id2label
        return [{"label": id2label[int(i)], "score": float(v)} for v, i in zip(values, indices)]


class SignLanguageTranslationPipeline(SignPosePipeline):
    """Sign language translation: `[{"translation_text": ...}]` for each clip, through `model.generate`.

    Generation arguments (`max_new_tokens`, `num_beams`, ...) are passed on to `generate`, at construction or per
    call; `generate_kwargs={...}` works too. The text comes from the checkpoint's tokenizer (pass `tokenizer=` to
    override).
    """

    default_task = TRANSLATION_TASK

    def __init__(self, model, tokenizer=None, **kwargs):
        if not hasattr(model, "generate"):
            raise TypeError(f"{type(model).__name__} cannot generate text; sign-language-translation needs a model with generate().")
        # Generated token ids hide NaN logits (the text is just wrong), so the weights are checked here instead.
        for parameter in model.parameters():
            _check_finite(parameter.detach(), model, "weights")
        if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = self._load_text_tokenizer(model, tokenizer)
        super().__init__(model=model, tokenizer=tokenizer, **kwargs)

    @staticmethod
    def _load_text_tokenizer(model, source):
        from transformers import AutoTokenizer

        source = source or getattr(model, "name_or_path", "")
        if not source:
            raise ValueError("sign-language-translation needs a tokenizer: pass tokenizer= (an object or a path).")
        try:
            # The model's config is passed so that the tokenizer does not load (remote) config code a second time.
            return AutoTokenizer.from_pretrained(str(source), config=model.config)
        except (OSError, ValueError) as error:
            raise ValueError(f"No tokenizer could be loaded from {source} ({error}); pass tokenizer=.") from error

    def _sanitize_task_parameters(self, generate_kwargs=None, return_tensors=None, **kwargs):
        forward = {"generate_kwargs": {**(generate_kwargs or {}), **kwargs}}
        postprocess = {"return_tensors": bool(return_tensors)} if return_tensors is not None else {}
        return forward, postprocess

    def _forward(self, model_inputs, generate_kwargs=None):
        return {"output_ids": self.model.generate(**model_inputs, **(generate_kwargs or {}))}

    def postprocess(self, model_outputs, return_tensors=False):
        ids = model_outputs["output_ids"]
        ids = ids[0] if ids.dim() == 2 else ids
        if return_tensors:
            return [{"translation_token_ids": ids}]
        text = self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        return [{"translation_text": text.strip()}]


class SignLanguageEmbeddingPipeline(SignPosePipeline):
    """Clip embeddings from the MS-MAE encoder: a list of `hidden_size` floats per clip.

    Call arguments: `pooling` (`"mean"`, the default: the average over the clip's real tokens, as the paper's linear
    probe; `"cls"`; `"none"` for every token, `(tokens, hidden)`), `normalize` (unit L2 norm), `return_tensors`
    (a `torch.Tensor` instead of lists).
    """

    default_task = EMBEDDING_TASK

    def _sanitize_task_parameters(self, pooling=None, normalize=None, return_tensors=None, **kwargs):
        super()._sanitize_task_parameters(**kwargs)
        forward, postprocess = {}, {}
        if pooling is not None:
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
            forward["pooling"] = pooling
        if normalize is not None:
            postprocess["normalize"] = bool(normalize)
        if return_tensors is not None:
            postprocess["return_tensors"] = bool(return_tensors)
        return forward, postprocess

    def _forward(self, model_inputs, pooling="mean"):
        pooled = embed_batch(self.model, model_inputs, pooling)
        if pooling == "none":
            tokens, mask = pooled
            return {"embedding": tokens, "token_mask": mask}
        return {"embedding": pooled}

    def postprocess(self, model_outputs, normalize=False, return_tensors=False):
        embedding = model_outputs["embedding"][0].float()
        _check_finite(embedding, self.model, "embeddings")
        if "token_mask" in model_outputs:
            embedding = embedding[model_outputs["token_mask"][0].bool()]
        if normalize:
            embedding = torch.nn.functional.normalize(embedding, dim=-1)
        return embedding if return_tensors else embedding.tolist()


# ---- registration --------------------------------------------------------------------------------------------------

# The pipeline class and Auto class of each task, as `hub_packaging.PIPELINE_CLASSES` names them (what checkpoints'
# `custom_pipelines` say).
PIPELINES = {
    task: (globals()[pipeline_class], getattr(transformers, auto_class))
    for task, (pipeline_class, auto_class) in PIPELINE_CLASSES.items()
}


def register_pipelines():
    """Registers the three tasks with transformers (done by `import msmae`). Keeps registrations already made."""
    for task, (pipeline_class, model_class) in PIPELINES.items():
        if task not in PIPELINE_REGISTRY.supported_tasks:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=model_class)


register_pipelines()

__all__ = [
    "SignLanguageRecognitionPipeline",
    "SignLanguageTranslationPipeline",
    "SignLanguageEmbeddingPipeline",
    "NonFiniteOutputError",
    "BadClipsError",
    "PIPELINES",
    "register_pipelines",
    "RECOGNITION_TASK",
    "TRANSLATION_TASK",
    "EMBEDDING_TASK",
]

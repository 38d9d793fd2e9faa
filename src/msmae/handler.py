"""Inference Endpoints handler: every msmae checkpoint carries this file as `handler.py`.

The endpoint runtime (huggingface-inference-toolkit) imports `handler.py` from the repository folder, builds
`EndpointHandler(path)` once and calls it with each request's JSON body:

    {"inputs": "<base64 video>", "parameters": {"top_k": 3}}

With huggingface-inference-toolkit only JSON reaches this file: it refuses `video/*` and `application/octet-stream`
bodies for a video task before calling the handler (README, "Inference Endpoints"). `{"inputs": {"video": "<base64>"}}`
works too, and Vertex AI's `{"instances": [...], "parameters": ...}` gets `{"predictions": [...]}`.

`inputs` is a video (MP4/MOV, WebM/MKV or AVI) or a pose-format `.pose` file as base64 text (a
`data:video/...;base64,` URL works too) or as raw bytes (what a server of your own passes for a binary body), or
model-ready inputs `{"pose_values": [[[x, y], ...]]}`. The bytes go to the checkpoint's pipeline, which recognises the
file from its signature and decodes it in memory; `parameters` go to the pipeline too. The answer is the pipeline's:
`[{"label": ..., "score": ...}, ...]` for recognition, `[{"translation_text": ...}]` for translation, a list of floats
for embeddings.

The pipeline comes from the checkpoint itself (`pipeline(model=path, trust_remote_code=True)`, the task read from
`config.json`), so msmae need not be installed; videos need MediaPipe 0.10.21 and PyAV, which the checkpoint's
`requirements.txt` lists (Inference Endpoints install it). This file is loaded on its own, not as part of a package:
no relative imports.
"""

import base64
import binascii

import torch
from transformers import pipeline


def decode_video(inputs) -> bytes:
    """The video bytes of a request's `inputs`: raw bytes, base64 text or a base64 `data:` URL."""
    if isinstance(inputs, (bytes, bytearray)):
        return bytes(inputs)
    if not isinstance(inputs, str):
        raise ValueError(
            f"`inputs` must be a video as base64 text or raw bytes, or a dict with `pose_values`; got "
            f"{type(inputs).__name__}."
        )
    text = inputs.split(",", 1)[1] if inputs.startswith("data:") else inputs
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"`inputs` is text but not base64 ({error}); encode the video file with base64.") from None


class EndpointHandler:
    """Serves the checkpoint in `path` (the repository folder the endpoint runtime downloaded)."""

    def __init__(self, path: str = ""):
        device = 0 if torch.cuda.is_available() else -1
        self.pipeline = pipeline(model=path or ".", trust_remote_code=True, device=device)

    def __call__(self, data):
        if not isinstance(data, dict) or not ("inputs" in data or "instances" in data):
            raise ValueError('The request must be JSON with "inputs" (and optional "parameters"), or a raw video.')
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ValueError(f'"parameters" must be a JSON object, got {type(parameters).__name__}.')
        if "inputs" not in data:  # Vertex AI's body, as the toolkit passes it: one answer per instance
            if not isinstance(data["instances"], list):
                raise ValueError(f'"instances" must be a JSON list, got {type(data["instances"]).__name__}.')
            return {"predictions": [self.answer(inputs, parameters) for inputs in data["instances"]]}
        return self.answer(data["inputs"], parameters)

    def answer(self, inputs, parameters):
        """The pipeline's answer to one input: a video (base64 text or bytes), `{"video": <base64>}` (a key the
        toolkit's media checks leave alone whatever the endpoint's task) or model-ready `{"pose_values": ...}`."""
        if isinstance(inputs, dict) and "video" in inputs:
            return self.pipeline(decode_video(inputs["video"]), **parameters)
        if isinstance(inputs, dict):  # model-ready inputs
            return self.pipeline(inputs, **parameters)
        return self.pipeline(decode_video(inputs), **parameters)

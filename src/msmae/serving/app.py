"""The web demo of a checkpoint: `msmae app --model CKPT` serves it, `msmae space --model CKPT --output_dir DIR` writes
it as a Hugging Face Space.

A person uploads a video or records one with the webcam, or clicks one of the examples (clips packaged with msmae,
`msmae.sample_data`, drawn as skeletons, with their licences); MediaPipe Holistic extracts the signer's pose, the
checkpoint's pipeline gives the top-5 signs with their scores (a recognition checkpoint) or the translation (a
translation checkpoint), and an animation of the extracted skeleton (with its head: the face's outline) is shown
beside the answer. The page names the model and lists the signs it knows. Each request's animation is written to
one bounded folder (the last `KEEP_ANIMATIONS`; removed when the demo ends), and Gradio's own copies are deleted
after an hour. A person's mistake (no video, no signer in view, an unreadable file) is shown to them and logged as
one line; anything else is a bug, logged with its traceback. Needs the `app` extra: `pip install 'msmae[app]'`
(Gradio, MediaPipe, PyAV, matplotlib).

    >>> from msmae.serving.app import build_app  # doctest: +SKIP
    >>> build_app("path/to/sign-classification").launch()  # doctest: +SKIP
"""

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import weakref
from importlib import metadata
from pathlib import Path

import numpy as np

from ..hub_packaging import RECOGNITION_TASK, checkpoint_task
from ..keypoint_layout import ALL_STREAMS

logger = logging.getLogger(__name__)

ANIMATION_FRAMES = 48  # at most this many frames in the skeleton animation: a GIF stays small and quick to draw
ANIMATION_HEIGHT = 320
# Animations kept on disk: Gradio copies each answer's file into its own cache when the request ends, so older ones
# are only needed while their request is in flight; a few visitors at once fit in this many.
KEEP_ANIMATIONS = 8
# Gradio's cache (uploads and its copies of the answers): checked every `frequency` s, files older than `age` s go.
GRADIO_CACHE_LIFETIME = (600, 3600)
MAX_EXAMPLES = 6
EXAMPLE_HEIGHT = 200
# The packaged clips' sources and licences (msmae/sample_data/README.md), shown under the examples.
SAMPLE_LICENCES = {
    "asl-app-100": "[ASL-App](https://github.com/shravnchandr/ASL-App) (MIT, Copyright (c) 2026 Shravan Chandra)",
    "msl150": "[MSL-150](https://github.com/armandobecerril/MSL-150-Dataset) (MIT, Armando de Jesús Becerril "
              "Carrillo; doi:10.5281/zenodo.17783312)",
}
# Checkpoint folder names that say nothing about the model (a Space's copy is `model/`).
_GENERIC_NAMES = re.compile(r"^(model|models|final|best|output|outputs|checkpoint(-\d+)?|\.)$", re.IGNORECASE)


def checkpoint_name(model) -> str:
    """What to call a checkpoint: a Hub id as given; for a folder, the `model_name` of its card (README.md front
    matter, written by msmae's recipes), else the folder's name, or its parent's when that name is generic."""
    path = Path(str(model))
    if not path.is_dir():
        return str(model)
    card = path / "README.md"
    if card.is_file():
        front = card.read_text(encoding="utf-8", errors="replace").split("---")
        pattern = r"^model_name:\s*['\"]?([^'\"\n]+?)['\"]?\s*$"
        found = re.search(pattern, front[1], re.MULTILINE) if len(front) > 2 else None
        if found:
            return found.group(1)
    path = path.resolve()
    return path.parent.name if _GENERIC_NAMES.match(path.name) and path.parent.name else path.name


class UserError(ValueError):
    """A request the person can fix (no video, no signer in view, an unreadable file): shown, logged as one line."""


class SignDemo:
    """A checkpoint's pipeline and one MediaPipe graph: a video in, the answer and a skeleton animation out."""

    def __init__(self, model, *, device=None, top_k=5, name=None):
        from transformers import pipeline

        from ..holistic import HolisticExtractor

        self.model_name = name or checkpoint_name(model)
        self.task = checkpoint_task(model)
        self.top_k = top_k
        self.pipeline = pipeline(self.task, model=str(model), device=device)
        self.streams = tuple(self.pipeline._pose_config(self.pipeline.model).streams)
        id2label = getattr(self.pipeline.model.config, "id2label", None) or {}
        self.labels = [str(id2label[i]) for i in sorted(id2label)] if self.task == RECOGNITION_TASK else []
        self.extractor = HolisticExtractor()
        self._extractor_lock = threading.Lock()  # one MediaPipe graph: requests take turns
        self.output_dir = Path(tempfile.mkdtemp(prefix="msmae-app-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.output_dir, ignore_errors=True)

    def close(self):
        """Remove the demo's folder of animations (also done when the demo is garbage-collected or Python exits)."""
        self._cleanup()

    def answer(self, pose):
        """The top-k `{label: score}` for recognition, the text for translation."""
        if self.task == RECOGNITION_TASK:
            return {r["label"]: r["score"] for r in self.pipeline(pose, top_k=self.top_k)}
        return self.pipeline(pose)[0]["translation_text"]

    def run(self, video):
        """(answer, path of the skeleton GIF) for a video file; `UserError` for what the person can fix."""
        from ..holistic import ExtractionError

        if not video:
            raise UserError("Upload a video or record one with the webcam first, or click an example.")
        try:
            with self._extractor_lock:
                pose = self.extractor.extract_video(video)
        except ExtractionError as error:  # unreadable, empty or truncated: the file's fault, said in the message
            raise UserError(str(error)) from None
        if not pose.metadata.get("person_detected", bool(pose.keypoint_mask.any())):
            raise UserError(f"No person was found in {Path(video).name}: film the signer from the waist up, facing "
                            "the camera, in good light.")
        return self.answer(pose), str(self.animate(pose))

    def run_example(self, name):
        """(answer, path of the skeleton GIF) for a packaged clip (`msmae.sample_data` name): no MediaPipe needed."""
        from .. import sample_data

        pose = sample_data.load_clip(name)
        return self.answer(pose), str(self.animate(pose))

    def examples(self, limit=MAX_EXAMPLES) -> list[str]:
        """Packaged clips to offer as examples: one per sign the model knows (matched by name, ignoring case),
        else (a model of other signs, or a translation model) the first clips of each set."""
        from .. import sample_data

        names = sample_data.clip_names()
        labels = [sample_data.load_clip(name).metadata.get("label", "") for name in names]
        known, chosen = {label.casefold() for label in self.labels}, {}
        for name, label in zip(names, labels):
            if str(label).casefold() in known:
                chosen.setdefault(str(label).casefold(), name)
        picked = list(chosen.values()) or [names[0], names[-1]]
        return picked[:limit]

    def example_preview(self, name) -> Path:
        """A still of a packaged clip's skeleton (its middle frame), the example's picture."""
        from .. import sample_data
        from .visualization import render

        path = self.output_dir / "examples" / (re.sub(r"[^A-Za-z0-9_-]+", "_", name) + ".png")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            render(sample_data.load_clip(name), path, streams=ALL_STREAMS, height=EXAMPLE_HEIGHT)
        return path

    def animate(self, pose) -> Path:
        """A GIF of the extracted skeleton (every stream, so the head too), at most `ANIMATION_FRAMES` frames."""
        from .visualization import render_frames, save_images

        frames = np.unique(np.linspace(0, pose.num_frames - 1, min(pose.num_frames, ANIMATION_FRAMES)).round().astype(int))
        images = render_frames(pose, streams=ALL_STREAMS, frames=frames, height=ANIMATION_HEIGHT)
        fps = (pose.fps or 25.0) * len(frames) / pose.num_frames  # the animation lasts as long as the video
        return save_images(images, self._animation_path(), fps=fps)

    def _animation_path(self) -> Path:
        """A new GIF path in the demo's folder, after removing all but the newest `KEEP_ANIMATIONS - 1` GIFs."""
        older = sorted(self.output_dir.glob("*.gif"), key=lambda p: p.stat().st_mtime_ns)
        for path in older[: max(0, len(older) - KEEP_ANIMATIONS + 1)]:
            path.unlink(missing_ok=True)
        handle, path = tempfile.mkstemp(suffix=".gif", dir=self.output_dir)
        os.close(handle)  # mkstemp opens it: close the descriptor, or each request leaks one
        return Path(path)


def answer_or_error(gr, function, *args):
    """`function(*args)`, with a person's mistakes (`UserError`, `ValueError`) shown as a Gradio error and logged as
    one line, and anything else (a bug) logged with its traceback and shown as an internal error."""
    try:
        return function(*args)
    except ValueError as error:
        logger.warning("Request refused: %s", " ".join(str(error).split()))
        raise gr.Error(str(error), print_exception=False) from None
    except Exception:
        logger.exception("The demo failed on a request (a bug in msmae or the checkpoint):")
        raise gr.Error("Something went wrong on our side; the error is in the server's log.",
                       print_exception=False) from None


def unmirrored_webcam(gr) -> dict:
    """Webcam settings that keep the picture as the camera sees it: a mirrored image swaps the signer's hands
    (msmae's handedness is the signer's own on unmirrored video)."""
    return {"webcam_options": gr.WebcamOptions(mirror=False)} if hasattr(gr, "WebcamOptions") else {"mirror_webcam": False}


def build_app(model, *, device=None, top_k=5, title=None, model_name=None):
    """The Gradio app (`gradio.Blocks`) for a checkpoint folder or Hub id; `.launch()` serves it. `model_name` is
    what the page calls the model (default: `checkpoint_name(model)`, from its card or folder)."""
    import gradio as gr

    demo = model if isinstance(model, SignDemo) else SignDemo(model, device=device, top_k=top_k, name=model_name)
    recognition = demo.task == RECOGNITION_TASK
    title = title or ("Sign recognition" if recognition else "Sign language translation") + " with MS-MAE"

    def predict(video):
        return answer_or_error(gr, demo.run, video)

    with gr.Blocks(title=title, delete_cache=GRADIO_CACHE_LIFETIME) as app:
        gr.Markdown(
            f"# {title}\nUpload a video of one {'sign' if recognition else 'signed sentence'} or record one with "
            f"the webcam, or click an example below. MediaPipe Holistic extracts the signer's pose; the model "
            f"**{demo.model_name}** reads the pose only, never the pixels.",
            elem_id="intro",
        )
        with gr.Row():
            with gr.Column():
                video = gr.Video(sources=["upload", "webcam"], label="Signing video", height=420, elem_id="sign-video",
                                 **unmirrored_webcam(gr))
                button = gr.Button("Recognise" if recognition else "Translate", variant="primary", elem_id="run")
            with gr.Column():
                if recognition:
                    answer = gr.Label(num_top_classes=top_k, label=f"Top {top_k} signs", elem_id="answer")
                else:
                    answer = gr.Textbox(label="Translation", elem_id="answer")
                skeleton = gr.Image(label="Extracted skeleton", type="filepath", format="gif", height=340, elem_id="skeleton")
        button.click(predict, inputs=video, outputs=[answer, skeleton], api_name="predict")
        add_examples(demo, answer, skeleton)
        if recognition:
            add_known_signs(demo)
            add_live_tab(demo, top_k)
    return app


def add_examples(demo: SignDemo, answer, skeleton):
    """Clickable examples: packaged clips drawn as skeletons; a click answers for the clip's poses."""
    import gradio as gr


    names = demo.examples()
    with gr.Column(elem_id="examples-box"):
        preview = gr.Image(type="filepath", label="Example (packaged poses)", visible=False)
        clip = gr.Textbox(label="Packaged clip", visible=False)
        gr.Examples(
            examples=[[str(demo.example_preview(name)), name] for name in names],
            inputs=[preview, clip], outputs=[answer, skeleton],
            fn=lambda picture, name: answer_or_error(gr, demo.run_example, name),
            run_on_click=True, cache_examples=False, label="Examples: click one (poses packaged with msmae, no video "
            "needed)", elem_id="examples",
        )
        sets = sorted({name.split("/")[0] for name in names})
        gr.Markdown("Example poses: " + "; ".join(f"`{s}` from {SAMPLE_LICENCES[s]}" for s in sets)
                    + ". MediaPipe Holistic keypoints, packaged with msmae (`msmae.sample_data`).",
                    elem_id="example-licences")


def add_known_signs(demo: SignDemo):
    """The signs the model can answer with (its `config.id2label`)."""
    import gradio as gr

    with gr.Accordion(f"The {len(demo.labels)} signs this model knows", open=len(demo.labels) <= 20,
                      elem_id="known-signs"):
        gr.Markdown(", ".join(demo.labels) or "(the checkpoint names none)")


def add_live_tab(demo: SignDemo, top_k: int, window=2.0, every=4):
    """A webcam stream with the running top-k (`msmae.serving.live`): one MediaPipe graph per visitor, `every` frames
    between answers over the last `window` seconds."""
    import time

    import gradio as gr

    from .live import LiveRecognizer

    def step(frame, session):
        if frame is None:
            return gr.update(), session
        if session is None:  # this visitor's first frame
            session = LiveRecognizer(demo.pipeline, window=window, every=every, top_k=top_k), time.perf_counter()
        recognizer, start = session
        update = recognizer.push(np.asarray(frame, dtype=np.uint8), time.perf_counter() - start)
        if update is None:
            return gr.update(), session
        answer = {p["label"]: p["score"] for p in update.predictions} or "(no signer in view)"
        return answer, session

    with gr.Accordion("Live: sign in front of the webcam", open=False):
        gr.Markdown(f"The top {top_k} of the last {window:g} s, updated every {every} frames as you sign.")
        with gr.Row():
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", elem_id="live-camera",
                              **unmirrored_webcam(gr))
            running = gr.Label(num_top_classes=top_k, label="Running top signs", elem_id="live-answer")
        session = gr.State(None)
        camera.stream(step, inputs=[camera, session], outputs=[running, session], stream_every=0.1,
                      concurrency_limit=None)


# ---- the app as a Hugging Face Space -----------------------------------------------------------------------------------

SPACE_APP = '''"""{title}: the msmae web demo (written by `msmae space`)."""

from msmae.serving.app import build_app

demo = build_app({model!r}, title={title!r}, model_name={name!r})

if __name__ == "__main__":
    demo.launch()
'''

# Training leftovers a Space does not need (and a pickle it must not carry).
_NOT_FOR_SPACE = re.compile(r"^(checkpoint-\d+|runs|training_args\.bin|.*_results\.json|trainer_state\.json|"
                            r"predictions_.*|confusion_matrix_.*|reconstructions)$")


def space_requirements() -> list[str]:
    """msmae's own requirements with the extras the app needs (video, viz, app), as pip lines."""
    extras, lines = {"video", "viz", "app"}, []
    for requirement in metadata.requires("msmae") or []:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra and extra.group(1) not in extras:
            continue
        if spec.strip().startswith("msmae"):  # an extra that names others (msmae[video,viz])
            continue
        lines.append(spec.strip())
    return list(dict.fromkeys(lines))


def write_space(model, output_dir, *, title=None) -> Path:
    """Writes the app as a Space: `app.py`, `requirements.txt`, `README.md` (Space metadata), the msmae code it runs
    (`msmae/`) and, for a local checkpoint, the checkpoint itself (`model/`). A Hub id is referenced instead."""
    import gradio

    output_dir = Path(output_dir)
    task = checkpoint_task(model)
    title = title or ("Sign recognition" if task == RECOGNITION_TASK else "Sign language translation") + " with MS-MAE"
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty; give a new --output_dir for the Space.")
    output_dir.mkdir(parents=True, exist_ok=True)
    local = Path(str(model)).is_dir()
    if local:
        shutil.copytree(model, output_dir / "model", ignore=lambda _, names: [n for n in names if _NOT_FOR_SPACE.match(n)])
    package = Path(__file__).resolve().parents[1]  # the whole msmae package, of which this is msmae/serving/app.py
    shutil.copytree(package, output_dir / "msmae", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The Space's copy is `model/`: the real name (its card's, else the folder's) goes into app.py.
    (output_dir / "app.py").write_text(SPACE_APP.format(title=title, model="model" if local else str(model),
                                                        name=checkpoint_name(model)))
    (output_dir / "requirements.txt").write_text("\n".join(space_requirements()) + "\n")
    header = {
        "title": title,
        "emoji": "🤟",
        "colorFrom": "indigo",
        "colorTo": "green",
        "sdk": "gradio",
        "sdk_version": gradio.__version__,
        "app_file": "app.py",
        "pinned": False,
        "license": "apache-2.0",
        "short_description": ("Top-5 signs" if task == RECOGNITION_TASK else "Translation") + " from a signing video",
        "tags": ["sign-language", "msmae", "mediapipe"],
    }
    if not local:
        header["models"] = [str(model)]
    lines = ["---", *(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in header.items()), "---", ""]
    body = (
        f"# {title}\n\nUpload or record a video; MediaPipe Holistic extracts the signer's pose and the MS-MAE checkpoint "
        f"{'in `model/`' if local else f'`{model}`'} answers with "
        f"{'the top 5 signs' if task == RECOGNITION_TASK else 'the translation'}, beside an animation of the skeleton. "
        "No video at hand? Click one of the examples: signing poses packaged with msmae, from "
        f"{' and '.join(SAMPLE_LICENCES.values())}. "
        "Written by `msmae space`; `msmae/` is the code of the msmae package the app runs.\n"
    )
    (output_dir / "README.md").write_text("\n".join(lines) + body, encoding="utf-8")
    return output_dir


__all__ = ["SignDemo", "UserError", "build_app", "add_examples", "add_known_signs", "add_live_tab", "checkpoint_name",
           "write_space", "space_requirements"]

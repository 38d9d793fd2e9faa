"""The web demo of a checkpoint: `msmae app --model CKPT` serves it, `msmae space --model CKPT --output_dir DIR` writes
it as a Hugging Face Space.

A person uploads a video or records one with the webcam; MediaPipe Holistic extracts the signer's pose, the
checkpoint's pipeline gives the top-5 signs with their scores (a recognition checkpoint) or the translation (a
translation checkpoint), and an animation of the extracted skeleton is shown beside the answer. Needs the `app`
extra: `pip install 'msmae[app]'` (Gradio, MediaPipe, PyAV, matplotlib).

    >>> from msmae.serving.app import build_app  # doctest: +SKIP
    >>> build_app("path/to/sign-classification").launch()  # doctest: +SKIP
"""

import json
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from ..hub_packaging import RECOGNITION_TASK, checkpoint_task

ANIMATION_FRAMES = 48  # at most this many frames in the skeleton animation: a GIF stays small and quick to draw
ANIMATION_HEIGHT = 320


class SignDemo:
    """A checkpoint's pipeline and one MediaPipe graph: a video in, the answer and a skeleton animation out."""

    def __init__(self, model, *, device=None, top_k=5):
        from transformers import pipeline

        from ..holistic import HolisticExtractor

        self.model_name = Path(model).name if Path(str(model)).is_dir() else str(model)  # a Hub id, or the folder's name
        self.task = checkpoint_task(model)
        self.top_k = top_k
        self.pipeline = pipeline(self.task, model=str(model), device=device)
        self.streams = tuple(self.pipeline._pose_config(self.pipeline.model).streams)
        self.extractor = HolisticExtractor()
        self.output_dir = Path(tempfile.mkdtemp(prefix="msmae-app-"))

    def answer(self, pose):
        """The top-k `{label: score}` for recognition, the text for translation."""
        if self.task == RECOGNITION_TASK:
            return {r["label"]: r["score"] for r in self.pipeline(pose, top_k=self.top_k)}
        return self.pipeline(pose)[0]["translation_text"]

    def run(self, video):
        """(answer, path of the skeleton GIF) for a video file."""
        if not video:
            raise ValueError("Upload a video or record one with the webcam first.")
        pose = self.extractor.extract_video(video)
        if not pose.metadata.get("person_detected", bool(pose.keypoint_mask.any())):
            raise ValueError(f"No person was found in {Path(video).name}: film the signer from the waist up, facing "
                             "the camera, in good light.")
        return self.answer(pose), str(self.animate(pose))

    def animate(self, pose) -> Path:
        """A GIF of the extracted skeleton (the model's streams), at most `ANIMATION_FRAMES` frames."""
        from .visualization import render_frames, save_images

        frames = np.unique(np.linspace(0, pose.num_frames - 1, min(pose.num_frames, ANIMATION_FRAMES)).round().astype(int))
        images = render_frames(pose, streams=self.streams, frames=frames, height=ANIMATION_HEIGHT)
        fps = (pose.fps or 25.0) * len(frames) / pose.num_frames  # the animation lasts as long as the video
        path = Path(tempfile.mkstemp(suffix=".gif", dir=self.output_dir)[1])
        return save_images(images, path, fps=fps)


def unmirrored_webcam(gr) -> dict:
    """Webcam settings that keep the picture as the camera sees it: a mirrored image swaps the signer's hands
    (msmae's handedness is the signer's own on unmirrored video)."""
    return {"webcam_options": gr.WebcamOptions(mirror=False)} if hasattr(gr, "WebcamOptions") else {"mirror_webcam": False}


def build_app(model, *, device=None, top_k=5, title=None):
    """The Gradio app (`gradio.Blocks`) for a checkpoint folder or Hub id; `.launch()` serves it."""
    import gradio as gr

    demo = model if isinstance(model, SignDemo) else SignDemo(model, device=device, top_k=top_k)
    recognition = demo.task == RECOGNITION_TASK
    title = title or ("Sign recognition" if recognition else "Sign language translation") + " with MS-MAE"

    def predict(video):
        try:
            return demo.run(video)
        except ValueError as error:  # bad or empty videos: shown to the person, not a server error
            raise gr.Error(str(error)) from None

    with gr.Blocks(title=title) as app:
        gr.Markdown(
            f"# {title}\nUpload a video of one {'sign' if recognition else 'signed sentence'} or record one with "
            f"the webcam. MediaPipe Holistic extracts the signer's pose; the model (`{demo.model_name}`) reads the "
            "pose only, never the pixels."
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
        if recognition:
            add_live_tab(demo, top_k)
    return app


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

demo = build_app({model!r}, title={title!r})

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
    (output_dir / "app.py").write_text(SPACE_APP.format(title=title, model="model" if local else str(model)))
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
        "Written by `msmae space`; `msmae/` is the code of the msmae package the app runs.\n"
    )
    (output_dir / "README.md").write_text("\n".join(lines) + body, encoding="utf-8")
    return output_dir


__all__ = ["SignDemo", "build_app", "add_live_tab", "write_space", "space_requirements"]

"""The web demo (`msmae app`, `msmae space`): the app driven in headless Chromium, uploading the real sample video and
reading the answer, clicking an example (packaged poses) and reading its answer, then streaming the video as the
webcam (Chromium's fake camera) and reading the running top 5; the Space folder run where the only msmae is the one
it carries."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from transformers import pipeline

from msmae.pipeline_msmae import RECOGNITION_TASK

pytest.importorskip("gradio")
pytest.importorskip("mediapipe")

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the README's screenshot is written when MSMAE_APP_SCREENSHOT names it (e.g. docs/app-screenshot.png).
SCREENSHOT = os.environ.get("MSMAE_APP_SCREENSHOT")


@pytest.fixture(scope="module")
def classifier_dir(demo_output):
    return demo_output / "sign-classification"


@pytest.fixture(scope="module")
def expected_top5(classifier_dir, sample_video):
    from msmae.holistic import extract_video

    return pipeline(RECOGNITION_TASK, model=str(classifier_dir))(extract_video(sample_video), top_k=5)


def test_app_needs_a_fine_tuned_checkpoint(demo_output):
    from msmae.serving.app import checkpoint_task

    output = demo_output
    assert checkpoint_task(output / "sign-classification") == RECOGNITION_TASK
    with pytest.raises(ValueError, match="pretrained encoder.*run_sign_classification"):
        checkpoint_task(output / "pretraining")


@pytest.mark.slow
def test_demo_answers_and_animates(classifier_dir, sample_video, expected_top5):
    from PIL import Image

    from msmae.serving.app import ANIMATION_FRAMES, SignDemo

    demo = SignDemo(classifier_dir)
    with pytest.raises(ValueError, match="Upload a video"):
        demo.run(None)
    answer, gif = demo.run(str(sample_video))
    assert list(answer) == [r["label"] for r in expected_top5]
    assert list(answer.values()) == pytest.approx([r["score"] for r in expected_top5], abs=1e-5)
    with Image.open(gif) as image:  # the animation covers the video's 58 frames
        assert image.format == "GIF" and image.n_frames == min(58, ANIMATION_FRAMES)


def example_answer(classifier_dir):
    """(name, top 5) of the first example the app offers: the first packaged clip of a sign the model knows."""
    from msmae import sample_data

    labels = set(json.loads((classifier_dir / "config.json").read_text())["id2label"].values())
    name = next(n for n in sample_data.clip_names() if sample_data.load_clip(n).metadata["label"] in labels)
    return name, pipeline(RECOGNITION_TASK, model=str(classifier_dir))(sample_data.load_clip(name), top_k=5)


def chromium():
    """(browser, driver) paths from the OS packages, or a pytest skip saying what is missing."""
    pytest.importorskip("selenium", reason="the browser test drives Chromium with selenium (pip install selenium)")
    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no headless Chromium on this machine: apt-get install chromium chromium-driver (.ci/run does)")
    return browser, driver


def write_y4m(video, path) -> Path:
    """The video as raw YUV4MPEG2, the format Chromium's fake camera plays."""
    import av

    with av.open(str(video)) as source, av.open(str(path), "w", format="yuv4mpegpipe") as target:
        stream = source.streams.video[0]
        output = target.add_stream("rawvideo", rate=round(float(stream.average_rate)))
        output.width, output.height, output.pix_fmt = stream.width, stream.height, "yuv420p"
        for frame in source.decode(stream):
            target.mux(output.encode(frame.reformat(format="yuv420p")))
        target.mux(output.encode())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, process, timeout, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"msmae app exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"msmae app did not answer on {url} within {timeout} s")


@pytest.mark.slow
def test_browser_uploads_the_sample_video_and_reads_the_top5(classifier_dir, sample_video, expected_top5, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver = chromium()
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen(
        [sys.executable, "-m", "msmae.cli", "app", "--model", str(classifier_dir), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
    )
    chrome = None
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", app, timeout=240, log=tmp_path / "app.log")
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        # The live part's webcam is Chromium's fake camera playing the sample video.
        camera = write_y4m(sample_video, tmp_path / "camera.y4m")
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1400,900", "--use-fake-ui-for-media-stream",
                         "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"):
            options.add_argument(argument)
        chrome = webdriver.Chrome(service=Service(driver), options=options)
        chrome.set_page_load_timeout(60)
        chrome.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(chrome, 120)
        upload = wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#sign-video input[type=file]"))[0]
        upload.send_keys(str(sample_video))
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#sign-video video"))
        chrome.find_element(By.CSS_SELECTOR, "#run").click()
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#skeleton img"))
        wait.until(lambda page: "%" in page.find_element(By.CSS_SELECTOR, "#answer").text)
        text = chrome.find_element(By.CSS_SELECTOR, "#answer").text.split("\n")
        # "Top 5 signs", the best label, then label / percentage pairs
        shown = list(zip(text[2::2], text[3::2]))
        assert [label for label, _ in shown] == [r["label"] for r in expected_top5], text
        for (_, percent), result in zip(shown, expected_top5):
            assert abs(float(percent.rstrip("%")) - 100 * result["score"]) <= 1, (percent, result)
        assert chrome.find_element(By.CSS_SELECTOR, "#skeleton img").get_attribute("src")

        # The page names the model and its signs; an example (packaged poses, no video) answers when clicked.
        assert "sign-classification" in chrome.find_element(By.CSS_SELECTOR, "#intro").text
        labels = json.loads((classifier_dir / "config.json").read_text())["id2label"].values()
        assert ", ".join(labels) in chrome.find_element(By.CSS_SELECTOR, "#known-signs").text
        assert "MIT" in chrome.find_element(By.CSS_SELECTOR, "#example-licences").text
        name, expected = example_answer(classifier_dir)
        row = next(r for r in wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#examples tbody tr"))
                   if name in r.text)
        assert row.find_element(By.CSS_SELECTOR, "img").get_attribute("src")  # the clip drawn as a skeleton
        chrome.execute_script("arguments[0].scrollIntoView()", row)
        row.click()

        def example_top5(page):  # the answer once it is the example's (read once: it re-renders while updating)
            text = page.find_element(By.CSS_SELECTOR, "#answer").text.split("\n")
            pairs = list(zip(text[2::2], text[3::2]))
            done = [label for label, _ in pairs] == [r["label"] for r in expected] and all(
                percent.endswith("%") for _, percent in pairs)
            return pairs if done else None

        for (_, percent), result in zip(wait.until(example_top5), expected):
            assert abs(float(percent.rstrip("%")) - 100 * result["score"]) <= 1, (percent, result)
        chrome.execute_script("window.scrollTo(0, 0)")
        shot = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "app-screenshot.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert chrome.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # Live: open the webcam panel, start streaming, read the running top 5.
        next(b for b in chrome.find_elements(By.CSS_SELECTOR, "button") if b.text.startswith("Live")).click()
        wait.until(lambda page: [b for b in page.find_elements(By.CSS_SELECTOR, "#live-camera button")
                                 if "Webcam" in b.text])[0].click()
        wait.until(lambda page: [b for b in page.find_elements(By.CSS_SELECTOR, "#live-camera button")
                                 if b.text == "Record" and b.is_displayed()])[0].click()
        wait.until(lambda page: "%" in page.find_element(By.CSS_SELECTOR, "#live-answer").text)
        live = chrome.find_element(By.CSS_SELECTOR, "#live-answer").text.split("\n")
        start = live.index("Running top signs")
        shown = live[start + 2 :: 2][:5]
        labels = set(json.loads((classifier_dir / "config.json").read_text())["id2label"].values())
        assert len(set(shown)) == 5 and set(shown) <= labels, live
    finally:
        if chrome is not None:
            chrome.quit()
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        log.close()


# The Space, run as Spaces run it (from its folder), in a process where msmae is not installed: the app must use the
# msmae copy the Space carries and the model copied into it.
SPACE_RUN = """
import json, os, sys
sys.path = [p for p in sys.path if not p.rstrip('/').endswith('src') and '__editable__' not in p]
space, video = sys.argv[1], sys.argv[2]
os.chdir(space)
sys.path.insert(0, space)
import app  # builds the Gradio app without launching it
import msmae
answer, gif = app.demo.fns[0].fn(video)
print("SPACE" + json.dumps({"msmae": msmae.__file__, "answer": answer, "gif": os.path.isfile(gif)}))
"""


@pytest.mark.slow
def test_space_runs_with_the_code_and_model_it_carries(classifier_dir, sample_video, expected_top5, tmp_path):
    from msmae.serving.app import write_space

    space = write_space(classifier_dir, tmp_path / "space")
    readme = (space / "README.md").read_text()
    header = dict(line.split(": ", 1) for line in readme.split("---")[1].strip().splitlines())
    assert json.loads(header["sdk"]) == "gradio" and json.loads(header["app_file"]) == "app.py"
    import gradio

    assert json.loads(header["sdk_version"]) == gradio.__version__
    requirements = (space / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("gradio") for r in requirements) and "mediapipe==0.10.21" in requirements
    assert not (space / "model" / "training_args.bin").exists() and not list(space.glob("model/checkpoint-*"))
    with pytest.raises(FileExistsError, match="not empty"):
        write_space(classifier_dir, space)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HOME": str(tmp_path / "hf")})
    result = subprocess.run([sys.executable, "-c", SPACE_RUN, str(space), str(sample_video)], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    ran = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("SPACE"))[5:])
    assert Path(ran["msmae"]).resolve().is_relative_to(space.resolve())
    assert list(ran["answer"]) == [r["label"] for r in expected_top5] and ran["gif"]


def test_commands_refuse_what_they_cannot_serve(demo_output, tmp_path, capsys):
    from msmae.cli import main

    output = demo_output
    with pytest.raises(SystemExit) as exit_info:
        main(["space", "--model", str(output / "pretraining"), "--output_dir", str(tmp_path / "space")])
    assert exit_info.value.code == 2 and "pretrained encoder" in capsys.readouterr().err
    assert not (tmp_path / "space").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["app", "--model", str(output / "sign-classification"), "--top_k", "0"])
    assert exit_info.value.code == 2 and "--top_k must be at least 1" in capsys.readouterr().err
    assert main(["space", "--model", str(output / "sign-classification"), "--output_dir", str(tmp_path / "ok")]) == 0
    assert "Space written to" in capsys.readouterr().out and (tmp_path / "ok" / "app.py").is_file()


def test_translation_checkpoints_answer_with_text(tmp_path):
    from conftest import save_tiny_translator, synthetic_clip

    from msmae.serving.app import SignDemo
    from msmae.modeling_sign_translation import SignTranslationModel
    from msmae.pipeline_msmae import TRANSLATION_TASK

    translator_dir = save_tiny_translator(tmp_path / "translator")
    demo = SignDemo(translator_dir)
    assert demo.task == TRANSLATION_TASK
    clip = synthetic_clip(40, seed=2)
    reference = pipeline(TRANSLATION_TASK, model=SignTranslationModel.from_pretrained(translator_dir))
    assert demo.answer(clip) == reference(clip)[0]["translation_text"]

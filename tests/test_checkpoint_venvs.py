"""A checkpoint loads and answers in a fresh virtual environment that has never seen msmae, under each transformers
release its code is tested with (`hub_packaging.TESTED_TRANSFORMERS`: the newest 4.x, which
huggingface-inference-toolkit images pin, and the newest 5.x), with only what its own `requirements.txt` lists.

Each environment is built once per transformers version and requirements (cached in the temporary folder, keyed by
both): torch first, at the version installed here (an unpinned torch would pull a multi-GB CUDA build), then that
transformers and the checkpoint's requirements.txt, from the package indexes pip is configured with.
"""

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import sample_pose_file, save_tiny_classifier, save_tiny_encoder
from transformers import pipeline

from msmae.hub_packaging import TESTED_TRANSFORMERS
from msmae.pipeline_msmae import EMBEDDING_TASK, RECOGNITION_TASK

VENVS = Path(tempfile.gettempdir()) / "msmae-transformers-venvs"

# Run in the fresh environment: the pipeline transformers builds from the checkpoint (task inferred), the Auto
# classes, the processor reading a video, and a pretrained encoder's embedding pipeline, all from the checkpoints' own
# code. (Translation checkpoints are not among them: see the README.)
SCRIPT = """
import json, sys
import transformers
from transformers import AutoModel, AutoModelForVideoClassification, AutoProcessor, pipeline
folder, pose_file, video, encoder = sys.argv[1:5]
recognizer = pipeline(model=folder, trust_remote_code=True, device="cpu")
answer = {"transformers": transformers.__version__, "class": type(recognizer).__name__,
          "module": type(recognizer).__module__, "pose": recognizer(pose_file, top_k=3)}
answer["encoder"] = type(AutoModel.from_pretrained(folder, trust_remote_code=True)).__name__
answer["classifier"] = type(AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True)).__name__
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
answer["processor"] = type(processor).__name__
embedder = pipeline(model=encoder, trust_remote_code=True, device="cpu")
answer["embedder"] = type(embedder).__name__
answer["embedding"] = embedder(pose_file)
if video:
    answer["video_frames"] = int(processor(video, return_tensors="np")["pose_values"].shape[1])
    answer["video"] = recognizer(video, top_k=3)
try:
    import msmae
except ImportError:
    answer["msmae_importable"] = False
else:
    answer["msmae_importable"] = True
print("ANSWER" + json.dumps(answer))
"""


def pip(python, *arguments, timeout=1800):
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *arguments], capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]


def environment(version: str, requirements: Path) -> Path:
    """The python of a virtual environment with torch (this one's version), transformers `version` and
    `requirements`, built on first use."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    folder = VENVS / f"transformers-{version}-{key}"
    python = folder / "bin" / "python"
    if (folder / "ready").is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True, timeout=300)
    pip(python, f"torch=={torch.__version__.split('+')[0]}")
    pip(python, f"transformers=={version}", "-r", str(requirements))
    (folder / "ready").write_text("")
    return python


@pytest.mark.slow
@pytest.mark.parametrize("version", TESTED_TRANSFORMERS)
def test_a_checkpoint_serves_under_each_tested_transformers_without_msmae(version, tmp_path):
    from conftest import SAMPLE_VIDEO

    checkpoint = save_tiny_classifier(tmp_path / "ckpt")
    encoder = save_tiny_encoder(tmp_path / "encoder")
    pose_file = sample_pose_file(tmp_path)
    video = SAMPLE_VIDEO if SAMPLE_VIDEO.is_file() else ""
    python = environment(version, checkpoint / "requirements.txt")
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(python), "-c", SCRIPT, str(checkpoint), str(pose_file), str(video), str(encoder)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    answer = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("ANSWER"))[6:])
    assert answer["transformers"] == version and answer["msmae_importable"] is False
    assert answer["class"] == "SignLanguageRecognitionPipeline" and answer["module"].startswith("transformers_modules.")
    assert (answer["encoder"], answer["classifier"]) == ("MSMAEModel", "MSMAEForSignClassification")
    assert answer["processor"] == "MSMAEPoseProcessor"

    # The same answers as msmae's own pipeline here.
    recognizer = pipeline(RECOGNITION_TASK, model=str(checkpoint))
    expected = recognizer(str(pose_file), top_k=3)
    assert [r["label"] for r in answer["pose"]] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in answer["pose"]], [r["score"] for r in expected], atol=1e-5)
    assert answer["embedder"] == "SignLanguageEmbeddingPipeline"
    np.testing.assert_allclose(answer["embedding"], pipeline(EMBEDDING_TASK, model=str(encoder))(str(pose_file)),
                               atol=1e-5)
    if video:
        assert answer["video_frames"] > 0
        assert [r["label"] for r in answer["video"]] == [r["label"] for r in recognizer(str(video), top_k=3)]

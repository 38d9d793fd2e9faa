import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the Hub: fail fast instead of waiting on a network that isn't there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny test models gain nothing from threads, and on a busy 2-core machine (or with the 2-process accelerate tests)
# oversubscribed OpenMP threads slow them down many times over. Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI and developers keep the real data beside the checkout; MSMAE_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("MSMAE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real signing data not found at {SHARED_DATA} (set MSMAE_SHARED_DATA)"
)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real signing data not found at {SHARED_DATA} (set MSMAE_SHARED_DATA)")
    return SHARED_DATA


# The package ships poses, not videos: MediaPipe-on-video tests use this real signing video from ../shared.
SAMPLE_VIDEO = SHARED_DATA / "pose-format-samples" / "test_video.mp4"


@pytest.fixture(scope="session")
def sample_video() -> Path:
    if not SAMPLE_VIDEO.is_file():
        pytest.skip(f"the sample signing video is not at {SAMPLE_VIDEO} (set MSMAE_SHARED_DATA)")
    return SAMPLE_VIDEO


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """Real checkpoints made by the package's own recipes, once per test session: the output folder of
    `msmae demo --quick --data packaged` (the signing shipped with msmae), holding `pretraining/` (the MAE encoder)
    and `sign-classification/` (MSL-150 signs). Tests read it and write elsewhere."""
    from msmae.recipes import demo

    output = tmp_path_factory.mktemp("msmae-demo")
    assert demo.main(["--quick", "--data", "packaged", "--output_dir", str(output)]) == 0
    return output


# Preamble of every script run by `run_without_msmae`: drop the source tree and editable installs from sys.path and
# make any `import msmae` fail, so the script sees what a user without the package sees.
WITHOUT_MSMAE_PREAMBLE = """\
import sys
sys.path = [p for p in sys.path if not p.rstrip('/').endswith('src') and '__editable__' not in p]
sys.modules['msmae'] = None
try:  # what every caller relies on: a test passing on the installed package would not show the checkpoint's code works
    import msmae
except ImportError:
    pass
else:
    raise SystemExit('msmae is importable in the fresh process: the test would not show it works without msmae')
"""


def run_without_msmae(script: str, *args, cwd, timeout=300, env=None):
    """Run `script` (Python source) in a fresh interpreter where msmae cannot be imported: trust_remote_code and
    Hub-user paths. Remote code is copied into a fresh modules cache under `cwd`; the Hub stays offline.
    Returns the `subprocess.CompletedProcess` (text output)."""
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    hf_home = Path(cwd) / "hf_home"
    environment.update({"HF_HOME": str(hf_home), "HF_MODULES_CACHE": str(hf_home / "modules"), "HF_HUB_OFFLINE": "1",
                        **(env or {})})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MSMAE_PREAMBLE + script, *map(str, args)],
        capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout,
    )


def write_video(path, frames, fps=10, codec="libx264", rotation=None) -> str:
    """Encode RGB uint8 frames `(T, H, W, 3)` (even H, W) to a video file with msmae's one writer
    (`msmae.serving.visualization.write_video`, needs PyAV); returns the path as text."""
    from msmae.serving.visualization import write_video as write

    return str(write(frames, path, fps, codec=codec, rotation=rotation))


# ---- clip builders shared by several test files ----------------------------------------------------------------------


def synthetic_clip(frames, seed, source=""):
    """A `SignPose` with level shoulders (so shoulder normalisation is defined) and random other keypoints (10%
    undetected)."""
    import numpy as np

    from msmae.keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
    from msmae.pose_io import SignPose

    rng = np.random.default_rng(seed)
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    keypoints[..., :2] = rng.uniform(0.3, 0.7, size=(frames, NUM_STORED_KEYPOINTS, 2))
    body = stream_slices()["body"]
    keypoints[:, body.start, :2], keypoints[:, body.start + 1, :2] = [0.6, 0.4], [0.4, 0.4]
    mask = rng.random((frames, NUM_STORED_KEYPOINTS)) > 0.1
    mask[:, body.start : body.start + 2] = True
    return SignPose(keypoints * mask[..., None], mask, fps=25.0, width=640, height=480, source=source)


def random_pose_inputs(config, batch_size=2, frames=12, second_clip_frames=None, generator=0):
    """Model inputs for `batch_size` clips of Gaussian keypoints, 20% of them missing (zero), the second clip padded
    after `second_clip_frames` frames. `generator`: a seed, or a `torch.Generator` to draw more from afterwards."""
    import torch

    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    shape = (batch_size, frames, config.num_keypoints, config.num_coordinates)
    pose_values = torch.randn(shape, generator=generator)
    keypoint_mask = torch.rand(shape[:3], generator=generator) > 0.2
    attention_mask = torch.ones(shape[:2], dtype=torch.long)
    if second_clip_frames is not None:
        attention_mask[1, second_clip_frames:] = 0
    return {"pose_values": pose_values * keypoint_mask.unsqueeze(-1), "keypoint_mask": keypoint_mask,
            "attention_mask": attention_mask}


def sample_clip_file(folder, name="msl150/doctor/2") -> Path:
    """A packaged real clip (`msmae.sample_data`: MediaPipe poses of real signing, shipped with msmae) saved as a pose
    file msmae reads: an `.npz` of its keypoints, mask, fps and frame size. For tests that need a real pose *file*
    but are not about one reader's format (those use ../shared's .pose/.json files)."""
    import numpy as np

    from msmae import sample_data

    pose = sample_data.load_clip(name)
    path = Path(folder) / f"{name.replace('/', '-')}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, keypoints=pose.keypoints, keypoint_mask=pose.keypoint_mask, fps=pose.fps, width=pose.width,
             height=pose.height)
    return path


def sample_pose_file(folder, name="msl150/doctor/2") -> Path:
    """A packaged real clip written as a pose-format `.pose` file (MediaPipe Holistic component and point names, the
    stored points only, x and y in pixels where the frame size is known), for tests that need the `.pose` format itself (bytes and URLs are
    recognised by its signature) but not an upstream file."""
    import numpy as np
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    from msmae import sample_data
    from msmae.pose_io import HOLISTIC_COMPONENTS, STORED_POINT_NAMES

    pose = sample_data.load_clip(name)
    components, order = [], []
    for component in HOLISTIC_COMPONENTS:
        stored = [i for i, (owner, _) in enumerate(STORED_POINT_NAMES) if owner == component]
        components.append(PoseHeaderComponent(component, [STORED_POINT_NAMES[i][1] for i in stored], [], [], "XYZC"))
        order += stored
    header = PoseHeader(0.1, PoseHeaderDimensions(pose.width, pose.height, 1), components)
    points = pose.keypoints[:, order, :3].copy()
    if pose.width and pose.height:  # as MediaPipe exports write them: x, y in pixels
        points[..., :2] *= np.array([pose.width, pose.height], dtype=np.float32)
    confidence = pose.keypoint_mask[:, order].astype(np.float32)
    body = NumPyPoseBody(pose.fps, points[:, None] * confidence[:, None, :, None], confidence[:, None])
    path = Path(folder) / f"{name.replace('/', '-')}.pose"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        Pose(header, body).write(file)
    return path


# ---- tiny models and checkpoints shared by the test files (no test file imports another) ------------------------------

# The one tiny MS-MAE configuration of the suite. A test that needs another size passes the difference to
# `tiny_config` / `tiny_overrides`, so what differs from the common model is written where it matters.
# tests/test_regression.py pins outputs of seeded models built on it: changing it moves those values.
TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, decoder_hidden_size=32,
    decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
)
# MSL-150's five glosses: the labels of the tiny classifiers.
LABELS = ["ambulancia", "doctor", "dolor", "hoy", "yo"]


def tiny_config(**overrides):
    """An `MSMAEConfig` of `TINY` with `overrides` (which may replace TINY's values)."""
    from msmae import MSMAEConfig

    return MSMAEConfig(**{**TINY, **overrides})


def tiny_overrides(**overrides) -> str:
    """`TINY` with `overrides` as the recipes' `--config_overrides` text ("hidden_size=32,...")."""
    return ",".join(f"{key}={value}" for key, value in {**TINY, **overrides}.items())


def labelled(labels=LABELS) -> dict:
    """`num_labels`, `id2label` and `label2id` config arguments for `labels`."""
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from several threads, and threads waiting on each other on a busy machine make
    them many times slower. Use it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_tiny_classifier(folder, **overrides) -> Path:
    """A fine-tuned-classifier checkpoint as training saves it: weights (seed 0), config with `LABELS`, processor,
    pipeline."""
    import torch

    from msmae import MSMAEForSignClassification
    from msmae.hub_packaging import add_pipeline_to_checkpoint
    from msmae.pipeline_msmae import RECOGNITION_TASK
    from msmae.processing_msmae import MSMAEPoseProcessor

    torch.manual_seed(0)
    config = tiny_config(**labelled(), **overrides)
    MSMAEForSignClassification(config).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("recognition", streams=config.streams).save_pretrained(folder)
    assert add_pipeline_to_checkpoint(folder) == [RECOGNITION_TASK]
    return Path(folder)


def save_tiny_encoder(folder) -> Path:
    """A pretraining checkpoint (seed 1) with its processor and the embedding pipeline."""
    import torch

    from msmae import MSMAEForPreTraining
    from msmae.hub_packaging import add_pipeline_to_checkpoint
    from msmae.pipeline_msmae import EMBEDDING_TASK
    from msmae.processing_msmae import MSMAEPoseProcessor

    torch.manual_seed(1)
    MSMAEForPreTraining(tiny_config()).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("recognition").save_pretrained(folder)
    assert add_pipeline_to_checkpoint(folder) == [EMBEDDING_TASK]
    return Path(folder)


WORDS = ["ich", "du", "heute", "regen", "sonne", "morgen", "wetter", "kalt", "warm", "nord"]


def tiny_tokenizer():
    """A word-level tokenizer of `WORDS` with mBART's special tokens (<s>=0, <pad>=1, </s>=2, <unk>=3)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def save_tiny_translator(folder) -> Path:
    """A sign translation checkpoint: tiny random mBART (saved beside it as `<folder>-text`) + MS-MAE encoder, its
    tokenizer, processor and pipeline."""
    import torch
    from transformers import MBartConfig, MBartForConditionalGeneration

    from msmae.hub_packaging import add_pipeline_to_checkpoint
    from msmae.modeling_sign_translation import SignTranslationModel
    from msmae.pipeline_msmae import TRANSLATION_TASK
    from msmae.processing_msmae import MSMAEPoseProcessor

    folder = Path(folder)
    tokenizer = tiny_tokenizer()
    text_dir = folder.parent / f"{folder.name}-text"
    torch.manual_seed(2)
    text_config = MBartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        dropout=0.0,
    )
    text_model = MBartForConditionalGeneration(text_config)
    text_model.generation_config.max_length = 8
    text_model.save_pretrained(text_dir)
    torch.manual_seed(3)
    model = SignTranslationModel.from_pretrained_parts(
        text_model_name_or_path=str(text_dir), pose_encoder_config=tiny_config(), lora_r=0
    )
    if model._auto_class is None:  # msmae/__init__ registers it; keep the tests independent of that wiring
        SignTranslationModel.register_for_auto_class("AutoModelForSeq2SeqLM")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("translation", streams=model.config.encoder.streams).save_pretrained(folder)
    assert add_pipeline_to_checkpoint(folder) == [TRANSLATION_TASK]
    return folder


# A SignTranslationModel small enough to build per test: the tiny encoder, a 64-token mBART.
TRANSLATION_VOCAB = 64
DE_DE = 60  # a language-code token id of the tiny vocabulary


def tiny_text_config(**overrides):
    """A tiny random-weights `MBartConfig` (64 tokens, d_model 16) with `overrides`."""
    from transformers import MBartConfig

    values = dict(
        vocab_size=TRANSLATION_VOCAB, d_model=16, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=128,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        dropout=0.0, scale_embedding=True,
    )
    return MBartConfig(**{**values, **overrides})


def tiny_translation_model(seed=0, randomize_adapters=True, **kwargs):
    """A tiny `SignTranslationModel` in eval mode. LoRA starts as a no-op (B = 0); `randomize_adapters` gives B random
    values so that tests comparing outputs see the adapters' effect."""
    import torch

    from msmae.configuration_sign_translation import SignTranslationConfig
    from msmae.modeling_sign_translation import SignTranslationModel

    values = dict(encoder=tiny_config(), text_config=tiny_text_config(), lora_r=4, lora_alpha=8, lora_dropout=0.0)
    torch.manual_seed(seed)
    model = SignTranslationModel(SignTranslationConfig(**{**values, **kwargs}))
    if randomize_adapters:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0.0, 0.5)
    return model.eval()


def translation_inputs(num_keypoints=48, frames=(11, 7), seed=1):
    """Model inputs for clips of `frames` frames (uniform random keypoints, all detected), padded to the longest."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    batch, length = len(frames), max(frames)
    attention_mask = torch.zeros(batch, length, dtype=torch.long)
    for i, n in enumerate(frames):
        attention_mask[i, :n] = 1
    pose_values = torch.rand(batch, length, num_keypoints, 2, generator=generator) * attention_mask[..., None, None]
    keypoint_mask = attention_mask[..., None].bool().expand(-1, -1, num_keypoints).clone()
    return {"pose_values": pose_values, "keypoint_mask": keypoint_mask, "attention_mask": attention_mask}


def run_classification_recipe(dataset, output_dir, *arguments, config_overrides=None):
    """Fine-tune a tiny classifier from scratch with the package's own recipe (`msmae.recipes.sign_classification`,
    behind examples/run_sign_classification.py) on one thread: 2 steps of 4 clips of 8 frames, a third of the clips
    each for validation and test, CPU, quiet. `arguments` add to (or, given again, override) these; returns the
    recipe's result."""
    import torch

    from msmae.recipes.sign_classification import main

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main([
            "--dataset_name", str(dataset), "--output_dir", str(output_dir),
            "--config_overrides", config_overrides or tiny_overrides(), "--do_train", "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--num_frames", "8", "--validation_split_percentage", "0.34",
            "--test_split_percentage", "0.34", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
            "--log_level", "warning", *map(str, arguments),
        ])
    finally:
        torch.set_num_threads(threads)


# ---- processes a test started (the cluster tests check that none is left behind) ----


def process_tree(pid) -> dict:
    """{pid: command line} of `pid`'s descendants (from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = {}, list(children.get(pid, []))
    while stack:
        child = stack.pop()
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                found[child] = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        stack.extend(children.get(child, []))
    return found


def alive(pid) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def damage_in_place(path, name=None):
    """Overwrite the first values of one tensor (`name`, or the largest) with NaN: same length, a valid header."""
    import json
    import struct

    import numpy as np

    with open(path, "r+b") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        tensors = {k: v for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32"}
        name = name or max(tensors, key=lambda k: tensors[k]["data_offsets"][1] - tensors[k]["data_offsets"][0])
        start, end = tensors[name]["data_offsets"]
        f.seek(8 + length + start)
        f.write(np.full((end - start) // 4, np.nan, dtype="<f4").tobytes())
    return name


# ---- landmark corpora in their published layouts (Kaggle asl-signs, asl-fingerspelling) ----

PARTS = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))


def write_long_parquet(path, frames, seed, hidden_left=(), nan_face_frames=()):
    """One asl-signs landmark file: 543 rows per frame, float64 x/y/z; `hidden_left` frames have a NaN left
    hand (MediaPipe found none), `nan_face_frames` a NaN face."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {"frame": [], "row_id": [], "type": [], "landmark_index": [], "x": [], "y": [], "z": []}
    published = {}
    for frame in frames:
        for part, size in PARTS:
            values = rng.random((size, 3))
            if (part == "left_hand" and frame in hidden_left) or (part == "face" and frame in nan_face_frames):
                values[:] = np.nan
            published[(frame, part)] = values
            for i in range(size):
                columns["frame"].append(frame)
                columns["row_id"].append(f"{frame}-{part}-{i}")
                columns["type"].append(part)
                columns["landmark_index"].append(i)
                for axis, value in zip("xyz", values[i]):
                    columns[axis].append(float(value))
    table = pa.table({"frame": pa.array(columns["frame"], pa.int16()), "row_id": columns["row_id"],
                      "type": columns["type"], "landmark_index": pa.array(columns["landmark_index"], pa.int16()),
                      "x": columns["x"], "y": columns["y"], "z": columns["z"]})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return published


def asl_signs_root(tmp_path, with_map=True, signers=("16069", "26734", "28656")):
    """Three signers, two sequences each; sequence 1000 starts at frame 20 and skips frame 22; one file missing."""
    import json

    root = tmp_path / "asl-signs"
    published, lines = {}, ["path,participant_id,sequence_id,sign"]
    sequence = 1000
    for s, signer in enumerate(signers):
        for sign in ("TV", "airplane"):
            rel = f"train_landmark_files/{signer}/{sequence}.parquet"
            frames = [20, 21, 23] if sequence == 1000 else [0, 1]
            published[str(sequence)] = (frames, write_long_parquet(root / rel, frames, seed=sequence,
                                                                   hidden_left={21}, nan_face_frames={0}))
            lines.append(f"{rel},{signer},{sequence},{sign}")
            sequence += 1
    lines.append(f"train_landmark_files/{signers[0]}/999.parquet,{signers[0]},999,TV")  # not on disk
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    if with_map:  # the competition's order is not alphabetical
        (root / "sign_to_prediction_index_map.json").write_text(json.dumps({"airplane": 1, "TV": 0, "zoo": 2}))
    return root, published


WIDE_PARTS = ("face", "left_hand", "pose", "right_hand")


def write_wide_parquet(path, sequences, seed):
    """`sequences`: {sequence_id: frame numbers}; returns {sequence_id: {(frame, part): (size, 3) values}}."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = dict(PARTS)
    rows, index, published = [], [], {}
    for sequence, frames in sequences.items():
        for frame in frames:
            row = {"frame": frame}
            for part in WIDE_PARTS:
                values = rng.random((sizes[part], 3)).astype(np.float32)
                if part == "right_hand" and frame % 2:  # no right hand on odd frames
                    values[:] = np.nan
                published.setdefault(sequence, {})[(frame, part)] = values
                for axis, column in zip("xyz", values.T):
                    row.update({f"{axis}_{part}_{i}": v for i, v in enumerate(column)})
            rows.append(row)
            index.append(sequence)
    frame = pd.DataFrame(rows, index=pd.Index(index, name="sequence_id"))
    # The published column order: frame, then all x, all y, all z.
    frame = frame[["frame"] + [f"{a}_{p}_{i}" for a in "xyz" for p in WIDE_PARTS for i in range(sizes[p])]]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return published


def fingerspelling_root(tmp_path):
    import json

    root = tmp_path / "asl-fingerspelling"
    published = {}
    published.update(write_wide_parquet(root / "train_landmarks/5414471.parquet",
                                        {1816796431: [0, 1, 2], 1816825349: [5, 6, 8]}, seed=1))
    published.update(write_wide_parquet(root / "train_landmarks/105143404.parquet", {1817123330: [0, 1]}, seed=2))
    published.update(write_wide_parquet(root / "supplemental_landmarks/33432165.parquet", {1535467051: [3, 4]},
                                        seed=3))
    (root / "train.csv").write_text(
        "path,file_id,sequence_id,participant_id,phrase\n"
        "train_landmarks/5414471.parquet,5414471,1816796431,217,3 Creekhouse\n"
        "train_landmarks/5414471.parquet,5414471,1816825349,107,scales/kuhaylah\n"
        "train_landmarks/105143404.parquet,105143404,1817123330,1,https://jsi.is/hukuoka\n"
        "train_landmarks/105143404.parquet,105143404,42,1,not in the file\n")
    (root / "supplemental_metadata.csv").write_text(
        "path,file_id,sequence_id,participant_id,phrase\n"
        "supplemental_landmarks/33432165.parquet,33432165,1535467051,251,coming up with killer sound bites\n")
    chars = {c: i for i, c in enumerate(" !#$%&'()*+,-./0123456789:;=?@[_~abcdefghijklmnopqrstuvwxyz")}
    (root / "character_to_prediction_index.json").write_text(json.dumps(chars))
    return root, {str(k): v for k, v in published.items()}


# ---- translation parts: a fitted tokenizer, a tiny mBART and a tiny MS-MAE (translation and landmark tests) ----

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # mBART's ids 0-3


def fit_tokenizer(sentences, vocab_size=600):
    """A SentencePiece-style BPE fitted offline, with mBART-50's special tokens and a `de_DE` language code that
    starts every target (`de_DE ... </s>`), as MBart50Tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        sentences, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + ["de_DE"])
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="de_DE $A </s>",
        special_tokens=[("de_DE", tokenizer.token_to_id("de_DE")), ("</s>", tokenizer.token_to_id("</s>"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        additional_special_tokens=["de_DE"],
    )


def make_parts(folder: Path, sentences, normalization=None):
    """A fitted tokenizer with a tiny random mBART, and a tiny random MS-MAE pretraining checkpoint."""
    import torch
    from transformers import MBartConfig, MBartForConditionalGeneration

    from msmae import MSMAEForPreTraining
    from msmae.processing_msmae import MSMAEPoseProcessor

    tokenizer = fit_tokenizer(sentences)
    text_dir, pose_dir = folder / "tiny-mbart", folder / "tiny-msmae"
    tokenizer.save_pretrained(text_dir)
    torch.manual_seed(0)
    text_config = MBartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        scale_embedding=True, dropout=0.0,
    )
    MBartForConditionalGeneration(text_config).save_pretrained(text_dir)
    pose_config = tiny_config(num_hidden_layers=1)
    MSMAEForPreTraining(pose_config).save_pretrained(pose_dir)
    if normalization:  # the pretraining's processor, whose normalisation the translation inherits
        MSMAEPoseProcessor(normalization=normalization).save_pretrained(pose_dir)
    return tokenizer, text_dir, pose_dir


# ---- the Hub, recorded ------------------------------------------------------------------------------------------------


class RecordingHfApi:
    """Stands in for `huggingface_hub.HfApi`: records every commit (repo, revision, message, the files `upload_folder`
    would send and their bytes, weights left out) and the repositories and branches it is asked to create; nothing
    is sent. `existing` lists the files the repository already holds (`file_exists`)."""

    commits: list = []
    repos: list = []
    branches: list = []
    existing: set = set()

    def __init__(self, *args, **kwargs):
        pass

    @classmethod
    def reset(cls):
        cls.commits, cls.repos, cls.branches, cls.existing = [], [], [], set()

    def create_repo(self, repo_id, private=None, exist_ok=False, **kwargs):
        self.repos.append({"repo_id": repo_id, "private": private})
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def create_branch(self, repo_id, *, branch, exist_ok=False, **kwargs):
        self.branches.append((repo_id, branch))

    def file_exists(self, repo_id, filename, revision=None, **kwargs):
        return filename in self.existing

    def upload_folder(self, *, repo_id, folder_path, commit_message, allow_patterns=None, ignore_patterns=None,
                      path_in_repo=None, revision=None, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        folder = os.path.abspath(folder_path)
        paths = sorted(
            os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            for root, _, names in os.walk(folder) for name in names
        )
        files = sorted(filter_repo_objects(paths, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
        contents = {name: open(os.path.join(folder, name), "rb").read() for name in files if not name.endswith(".safetensors")}
        self.commits.append({"repo_id": repo_id, "revision": revision, "message": commit_message, "files": files,
                             "contents": contents})
        if kwargs.get("run_as_future"):
            from concurrent.futures import Future

            future = Future()
            future.set_result(None)
            return future
        return None


# ---- a stand-in MediaPipe Holistic graph (tests about extraction folders and frame selection, not landmarks) ----


class StandInHolistic:
    """`mediapipe.solutions.holistic.Holistic` without the models: a body in every frame, whose x and y are the
    frame's mean brightness / 255 (which says which frame it saw); no hands, no face."""

    def __init__(self, **settings):
        pass

    def process(self, image):
        import types

        value = float(image.mean()) / 255
        point = types.SimpleNamespace(x=value, y=value, z=0.0, visibility=1.0)
        return types.SimpleNamespace(pose_landmarks=types.SimpleNamespace(landmark=[point] * 33),
                                     left_hand_landmarks=None, right_hand_landmarks=None, face_landmarks=None)

    def reset(self):
        pass

    def close(self):
        pass


def use_stand_in_holistic(monkeypatch):
    """Extraction in this test runs `StandInHolistic` instead of MediaPipe's graph."""
    import types

    import mediapipe

    import msmae.holistic as holistic

    monkeypatch.setattr(holistic, "_import_mediapipe",
                        lambda: (mediapipe, types.SimpleNamespace(Holistic=StandInHolistic)))


def predict_cli(argv):
    """`msmae predict ARGV` in this process; its exit code."""
    import argparse

    from msmae.cli.predict import add_predict_arguments, run_predict

    parser = argparse.ArgumentParser(prog="msmae predict")
    add_predict_arguments(parser)
    return run_predict(parser.parse_args(argv), parser)

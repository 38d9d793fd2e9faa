"""`--output_dir s3://...` against a real S3-compatible server (moto's, on 127.0.0.1, reached over HTTP by s3fs with
credentials and endpoint from the environment, as on a cloud machine): extract into a bucket, kill the run, resume
it, read the result back with `datasets`, and train a few steps streaming from the bucket. Nothing is patched."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, tiny_overrides, write_video

pytest.importorskip("s3fs", reason="object storage needs s3fs: pip install 'msmae[cluster]'")
moto_server = pytest.importorskip("moto.server", reason="the S3 test server needs moto[server] (the dev extra)")

MSMAE = str(Path(sys.executable).with_name("msmae"))
BUCKET = "msmae-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 and the environment that points s3fs at it (for this process and children)."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as error:  # noqa: BLE001  (no server: say why and skip)
        pytest.skip(f"the moto S3 server could not start on 127.0.0.1:{port}: {error}")
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    saved = {key: os.environ.get(key) for key in (*env, "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")}
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        os.environ.pop(key, None)
    os.environ.update(env)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir(BUCKET)
        yield os.environ.copy()
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()


def objects(prefix) -> list:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    return sorted(fs.find(f"{BUCKET}/{prefix}"))


@pytest.fixture
def videos(tmp_path):
    pytest.importorskip("mediapipe")
    pytest.importorskip("av")
    real = [SHARED_DATA / "pose-format-samples" / "test_video.mp4",
            *sorted((SHARED_DATA / "msl150" / "data" / "original_source").glob("*.mp4"))[:2]]
    if not all(path.is_file() for path in real):
        pytest.skip(f"the sample videos are not under {SHARED_DATA} (set MSMAE_SHARED_DATA)")
    if not Path(MSMAE).exists():
        pytest.skip("the msmae console script is not installed beside this interpreter")
    blank = write_video(tmp_path / "blank.mp4", np.zeros((2, 32, 32, 3), np.uint8))  # no person: a failure record
    return [*map(str, real), blank]


@pytest.mark.slow
@pytest.mark.shared_data
def test_extract_into_a_bucket_resume_after_a_kill_load_and_train(s3, videos, tmp_path):
    url = f"s3://{BUCKET}/poses"
    command = [MSMAE, "extract", *videos, "--output_dir", url, "--no_progress"]
    run = subprocess.Popen(command, env=s3, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not [o for o in objects("poses/data") if o.endswith(".parquet")]:
            assert run.poll() is None, run.stdout.read()
            assert time.monotonic() < deadline, "no part reached the bucket"
            time.sleep(0.2)
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=30)
    done_before = [o for o in objects("poses/data") if o.endswith(".parquet")]
    assert 1 <= len(done_before) < 3 and all(o.rsplit("/", 1)[1].startswith("train-") for o in done_before)
    logged_before = int(f"{BUCKET}/poses/failures.jsonl" in objects("poses"))  # the blank video, if it came first

    result = subprocess.run(command, env=s3, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before) + logged_before} already done" in result.stderr, result.stderr
    names = objects("poses")
    assert len([o for o in names if o.endswith(".parquet")]) == 3
    assert f"{BUCKET}/poses/extraction_info.json" in names and f"{BUCKET}/poses/README.md" in names
    assert not [o for o in names if "partial" in o or "lock" in o]
    import s3fs

    log = s3fs.S3FileSystem().cat_file(f"{BUCKET}/poses/failures.jsonl").decode()
    failures = [json.loads(line) for line in log.splitlines()]
    assert [(f["path"], f["kind"]) for f in failures] == [(videos[3], "no_person")]

    # A third run has nothing to do.
    again = subprocess.run(command, env=s3, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "4 already done" in again.stderr, again.stderr

    # Read back with datasets itself and msmae's loaders, then train a few steps reading the corpus from the bucket
    # as it goes. In a child process: `datasets` reaches no URL at all in offline mode (which the tests' own process
    # keeps on); the Hub endpoint points at a closed port on 127.0.0.1, so nothing leaves the machine.
    env = {**s3, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9",
           "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, "-c", READ_AND_TRAIN, url, str(tmp_path), tiny_overrides()], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, [line for line in result.stderr.splitlines() if "%|" not in line][-40:]
    sources, extracted, shape, steps, compacted = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(sources) == sorted(videos[:3]) and extracted == 3 and shape == [160, 4] and steps == 2
    assert compacted == 3
    assert any(o.endswith(".arrow") for o in objects("compact/train"))
    assert f"{BUCKET}/compact/README.md" in objects("compact")


@pytest.mark.slow
@pytest.mark.shared_data
def test_prepare_into_a_bucket(s3, videos, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"path,start,end,label,signer,split\n{videos[0]},0,0.6,hello,a,train\n"
                        f"{videos[0]},0.6,1.2,thanks,a,test\n")
    url = f"s3://{BUCKET}/prepared"
    env = {**s3, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9",
           "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([MSMAE, "prepare", "manifest", str(manifest), "--output_dir", url, "--no_progress"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    names = objects("prepared")
    for name in ("dataset_dict.json", "prepare_info.json", "README.md", "missing.txt",
                 "extracted/extraction_info.json"):
        assert f"{BUCKET}/prepared/{name}" in names, names
    check = ("import sys, json; from msmae.data.loading import load_sign_dataset; d = load_sign_dataset(sys.argv[1]); "
             "print(json.dumps({k: list(v['label']) for k, v in d.items()}))")
    loaded = subprocess.run([sys.executable, "-c", check, url], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == {"train": [0], "validation": [], "test": [1]}


READ_AND_TRAIN = """
import json, sys
from pathlib import Path
import numpy as np
from datasets import load_dataset
from msmae.data.loading import load_sign_dataset
from msmae.data.parts import load_extracted
from msmae.data.windows import compact
from msmae.recipes import pretraining

url, tmp, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
direct = load_dataset("parquet", data_files=f"{url}/data/*.parquet", split="train", cache_dir=str(tmp / "cache"))
extracted = len(load_extracted(url, cache_dir=str(tmp / "cache2")))
first = next(iter(load_sign_dataset(url, streaming=True)))
pretraining.main([
    "--output_dir", str(tmp / "model"), "--config_overrides", overrides, "--do_train",
    "--dataset_name", url, "--validation_dataset_name", url, "--streaming", "--max_steps", "2",
    "--per_device_train_batch_size", "2", "--window_size", "48", "--num_frames", "24",
    "--shuffle_buffer_size", "4", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
    "--log_level", "warning", "--dataloader_num_workers", "0",
])
steps = json.loads((tmp / "model" / "trainer_state.json").read_text())["global_step"]
compacted = compact(url, url.rsplit("/", 1)[0] + "/compact")
print(json.dumps([list(direct["source"]), extracted, list(np.asarray(first["keypoints"]).shape[1:]), steps,
                  len(load_sign_dataset(url.rsplit("/", 1)[0] + "/compact", split="train"))]))
"""


def test_unreachable_bucket_is_named(s3, tmp_path):
    from msmae.data.loading import load_sign_dataset

    with pytest.raises(FileNotFoundError, match=f"No dataset at s3://{BUCKET}/nothing-here"):
        load_sign_dataset(f"s3://{BUCKET}/nothing-here")

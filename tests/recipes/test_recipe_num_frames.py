"""Issue 26, point 4: `--num_frames 100000000` is refused, naming the flag and the model's limit, before any clip is
stretched to that many frames (it allocated 36 GiB and crashed)."""

import resource

import pytest

from conftest import run_classification_recipe, tiny_overrides
from msmae.recipes import pretraining
from msmae.training.synthetic import synthetic_pretraining_dataset, synthetic_sign_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

MESSAGE = r"--num_frames 100000000 is more frames than the model covers: at most 2048 \(max_position_embeddings 1024 x cubelet_size 2\)"


@pytest.fixture
def memory_limit():
    """At most 4 GiB of address space more than now: an allocation of the stretched clips fails fast instead of
    taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as file:
        used = int(file.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (4 << 30), hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_sign_classification_refuses_a_huge_num_frames(tmp_path, memory_limit):
    data = tmp_path / "signs"
    synthetic_sign_dataset(clips_per_class=3, seed=0, cache_dir=str(tmp_path / "cache")).save_to_disk(str(data))
    with pytest.raises(ValueError, match=MESSAGE):
        run_classification_recipe(data, tmp_path / "out", "--num_frames", "100000000")


def test_pretraining_refuses_a_huge_num_frames(tmp_path, memory_limit):
    data = tmp_path / "corpus"
    synthetic_pretraining_dataset(num_clips=6, seed=0, cache_dir=str(tmp_path / "cache")).save_to_disk(str(data))
    with pytest.raises(ValueError, match=MESSAGE):
        pretraining.main([
            "--dataset_name", str(data), "--output_dir", str(tmp_path / "out"), "--config_overrides", tiny_overrides(),
            "--do_train", "--max_steps", "1", "--per_device_train_batch_size", "2", "--window_size", "100000000",
            "--num_frames", "100000000", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
            "--log_level", "warning",
        ])

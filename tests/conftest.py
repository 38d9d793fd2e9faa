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

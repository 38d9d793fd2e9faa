"""Real checkpoints for the serving tests (handler, app, live), written once per test session by `msmae demo --quick`
on the signing packaged with msmae: `pretraining/` (the MAE encoder) and `sign-classification/` (MSL-150 signs)."""

from pathlib import Path

_WRITTEN = {}


def demo_checkpoints(tmp_path_factory) -> Path:
    """The output folder of one quick demo run (shared by every test module that asks in this session)."""
    if "output" not in _WRITTEN:
        from msmae.recipes import demo

        output = tmp_path_factory.mktemp("msmae-demo")
        assert demo.main(["--quick", "--data", "packaged", "--output_dir", str(output)]) == 0
        _WRITTEN["output"] = output
    return _WRITTEN["output"]

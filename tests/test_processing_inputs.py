"""Issue 26, point 4: `MSMAEPoseProcessor.from_pretrained` names a source that holds no pose processor: the model's
`config.json` given for the processor's (it loaded a processor with default settings, silently), a missing local
path (transformers' `Repo id must be in the form ...`)."""

import pytest

from msmae import MSMAEPoseProcessor
from conftest import save_tiny_classifier


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier") / "classifier")


def test_the_models_config_given_for_the_processor_is_named(checkpoint):
    config = checkpoint / "config.json"
    with pytest.raises(OSError, match=rf"{config} is a model's configuration, not a pose processor's: give "
                                      rf"{checkpoint}/preprocessor_config.json or the checkpoint folder"):
        MSMAEPoseProcessor.from_pretrained(config)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(OSError, match=rf"No processor folder {tmp_path}/nothere: give the checkpoint folder"):
        MSMAEPoseProcessor.from_pretrained(str(tmp_path / "nothere"))


def test_the_processor_file_and_folder_still_load(checkpoint):
    by_folder = MSMAEPoseProcessor.from_pretrained(checkpoint)
    by_file = MSMAEPoseProcessor.from_pretrained(checkpoint / "preprocessor_config.json")
    assert by_folder.to_dict() == by_file.to_dict() and by_folder.streams == ["body", "left_hand", "right_hand"]


@pytest.mark.parametrize("spelling", ["./nothere", "../nothere", "~/msmae-nothere-26"])
def test_every_local_spelling_of_a_missing_folder_is_named_by_both_loaders(spelling, tmp_path, monkeypatch):
    """The processor and the model read a missing path spelled as local the same way: named by both, never sent to
    the Hub as a repository id (each loader has its own check: one shared helper would tie hub_packaging and
    processing_msmae in an import circle)."""
    from msmae import MSMAEForSignClassification

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(OSError, match=rf"No processor folder {spelling}: give"):
        MSMAEPoseProcessor.from_pretrained(spelling)
    with pytest.raises(OSError, match=rf"No checkpoint folder {spelling}: give"):
        MSMAEForSignClassification.from_pretrained(spelling)

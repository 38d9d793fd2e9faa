"""Issue 26, point 4: checkpoint folders that cannot load are named with what to do (`hub_packaging.
check_checkpoint_folder`, run by every msmae model's `from_pretrained`, the Auto classes' included, and by
`msmae predict`), before transformers' own messages (`Unrecognized model ... model_type`, a table of mismatched
shapes, `Repo id must be in the form ...`)."""

import json
import shutil

import pytest
from transformers import AutoModelForVideoClassification

from msmae import MSMAEForSignClassification
from conftest import save_tiny_classifier


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier") / "classifier")


def copy_of(checkpoint, folder):
    shutil.copytree(checkpoint, folder)
    return folder


def test_a_folder_without_config_json_is_named(checkpoint, tmp_path):
    folder = copy_of(checkpoint, tmp_path / "weights-only")
    (folder / "config.json").unlink()
    with pytest.raises(OSError, match=rf"{folder} has no config.json, so it is not a complete checkpoint \(it holds "
                                      r".*model.safetensors.*put back its config.json"):
        MSMAEForSignClassification.from_pretrained(folder)


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(OSError, match=rf"No checkpoint folder {tmp_path}/nothere: give the folder"):
        MSMAEForSignClassification.from_pretrained(str(tmp_path / "nothere"))


def test_a_config_whose_labels_do_not_match_the_weights_is_named(checkpoint, tmp_path, capsys):
    folder = copy_of(checkpoint, tmp_path / "edited")
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"sign-{i}" for i in range(7)}
    config["label2id"] = {f"sign-{i}": i for i in range(7)}
    (folder / "config.json").write_text(json.dumps(config))
    for load in (MSMAEForSignClassification.from_pretrained, AutoModelForVideoClassification.from_pretrained):
        with pytest.raises(ValueError, match=rf"{folder}: the config names 7 labels .* but the classifier in its "
                                             r"weights has 5"):
            load(folder)
    assert "LOAD REPORT" not in capsys.readouterr().err  # refused before transformers prints its table
    # Training a new head from these weights stays possible, as transformers offers it.
    model = MSMAEForSignClassification.from_pretrained(folder, ignore_mismatched_sizes=True)
    assert model.config.num_labels == 7


def test_a_weights_file_given_for_the_folder_is_named(checkpoint):
    weights = checkpoint / "model.safetensors"
    with pytest.raises(OSError, match=rf"{weights} is a file, not a checkpoint folder: give the folder that holds "
                                      r"config.json and the weights"):
        MSMAEForSignClassification.from_pretrained(weights)

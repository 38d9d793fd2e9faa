"""Transformers conventions: half-precision loading, PEFT with gradient checkpointing, unknown inputs, the [CLS]
token as a config field, multi-label classification and `input_modalities`."""

import json

import pytest
import torch

from transformers import AutoModel, PreTrainedModel

from conftest import DE_DE, tiny_config, tiny_translation_model, translation_inputs

from msmae import MSMAEForPreTraining, MSMAEForSignClassification, MSMAEModel

pytestmark = pytest.mark.usefixtures("one_thread")


def classifier(**kwargs):
    torch.manual_seed(0)
    return MSMAEForSignClassification(tiny_config(num_labels=3, **kwargs))


# ---- half precision -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [MSMAEModel, MSMAEForPreTraining, MSMAEForSignClassification])
def test_bfloat16_checkpoint_runs_on_float32_inputs(tmp_path, model_class):
    classifier().save_pretrained(tmp_path)
    model = model_class.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert next(model.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        out = model(**translation_inputs())  # float32 pose_values
    values = out.last_hidden_state if model_class is MSMAEModel else out.logits
    assert values.dtype == torch.bfloat16 and torch.isfinite(values.float()).all()


def test_bfloat16_translation_model_generates(tmp_path):
    tiny_translation_model().save_pretrained(tmp_path)
    model = type(tiny_translation_model()).from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert model.projection.weight.dtype == torch.bfloat16
    tokens = model.generate(**translation_inputs(), max_new_tokens=3, forced_bos_token_id=DE_DE)
    assert tokens.shape[0] == 2 and (tokens[:, 1] == DE_DE).all()


# ---- PEFT with gradient checkpointing ---------------------------------------------------------------------------------


def lora_trains(model, inputs, target_modules):
    peft = pytest.importorskip("peft")
    # Reentrant checkpointing passes no gradient through layers whose inputs do not require grad: PEFT then relies
    # on `enable_input_require_grads`, a hook on `get_input_embeddings()`'s output.
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    peft_model = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=target_modules))
    peft_model.train()
    peft_model(**inputs).loss.backward()
    lora = {name: p for name, p in peft_model.named_parameters() if "lora_B" in name}
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.values())
    assert all(p.grad is None for name, p in peft_model.named_parameters() if "lora_" not in name)


def test_peft_lora_with_gradient_checkpointing_trains_the_classifier():
    lora_trains(classifier(), {**translation_inputs(), "labels": torch.tensor([0, 2])}, ["q_proj", "v_proj"])


def test_peft_lora_with_gradient_checkpointing_trains_the_translation_model():
    model = tiny_translation_model(lora_r=0)
    labels = torch.tensor([[DE_DE, 5, 6, 2], [DE_DE, 8, 2, -100]])
    lora_trains(model, {**translation_inputs(), "labels": labels}, ["q_proj", "v_proj"])


# ---- unknown inputs -------------------------------------------------------------------------------------------------


def test_misspelled_input_is_an_error():
    inputs = translation_inputs()
    with pytest.raises(TypeError, match=r"keypoints_mask.*keypoint_mask"):
        classifier()(pose_values=inputs["pose_values"], keypoints_mask=inputs["keypoint_mask"])
    with pytest.raises(TypeError, match=r"MSMAEForPreTraining.*\['labels'\]"):
        MSMAEForPreTraining(tiny_config())(**inputs, labels=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="MSMAEModel"):
        MSMAEModel(tiny_config())(**inputs, label=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"SignTranslationModel.*\['keypoints_mask'\]"):
        tiny_translation_model()(pose_values=inputs["pose_values"], keypoints_mask=inputs["keypoint_mask"], labels=torch.tensor([[DE_DE, 2]]))


def test_trainer_keyword_still_accepted():
    out = classifier()(**translation_inputs(), labels=torch.tensor([0, 1]), num_items_in_batch=torch.tensor(2))
    assert out.loss is not None


# ---- [CLS] token as a config field ----------------------------------------------------------------------------------


def test_every_auto_class_loads_the_trained_cls_token(tmp_path):
    model = classifier().eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["use_cls_token"] is True
    encoder = AutoModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(encoder.cls_token, model.msmae.cls_token)
    inputs = translation_inputs()
    with torch.no_grad():
        torch.testing.assert_close(encoder(**inputs).pooler_output, model.msmae(**inputs).pooler_output)


def test_checkpoint_saved_without_the_field_keeps_its_cls_token(tmp_path):
    model = classifier().eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["use_cls_token"]  # as saved before the field existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.testing.assert_close(MSMAEModel.from_pretrained(tmp_path).cls_token, model.msmae.cls_token)
    assert MSMAEForSignClassification.from_pretrained(tmp_path).msmae.cls_token is not None


def test_pretraining_and_linear_probe_have_no_cls_token(tmp_path):
    classifier().save_pretrained(tmp_path)
    assert MSMAEForPreTraining.from_pretrained(tmp_path).msmae.cls_token is None
    assert MSMAEForSignClassification.from_pretrained(tmp_path, linear_probe=True).msmae.cls_token is None
    assert MSMAEModel(tiny_config()).cls_token is None


# ---- classification problem type and modalities ---------------------------------------------------------------------


def test_multi_label_classification_uses_binary_cross_entropy():
    model = classifier(problem_type="multi_label_classification")
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = model(**translation_inputs(), labels=labels)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels))
    with pytest.raises(ValueError, match="Multi-label `labels` must have shape"):
        model(**translation_inputs(), labels=torch.tensor([0, 1]))


def test_single_label_is_cross_entropy_and_regression_is_refused():
    model = classifier()
    out = model(**translation_inputs(), labels=torch.tensor([0, 2]))
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 2])))
    model.config.problem_type = "regression"
    with pytest.raises(ValueError, match="problem_type"):
        model(**translation_inputs(), labels=torch.tensor([0, 2]))


def test_input_modalities():
    assert PreTrainedModel.input_modalities == "text"  # the attribute transformers defines
    for model_class in (MSMAEModel, MSMAEForPreTraining, MSMAEForSignClassification):
        assert model_class.input_modalities == ("video",)


# ---- processor.pad as a Trainer collator ----------------------------------------------------------------------------


def test_processor_pad_is_a_trainer_collator(tmp_path):
    from transformers import Trainer, TrainingArguments

    from msmae import MSMAEPoseProcessor

    generator = torch.Generator().manual_seed(0)
    dataset = [
        {"pose_values": torch.rand(n, 48, 2, generator=generator).numpy(), "keypoint_mask": torch.ones(n, 48).bool().numpy(), "labels": n % 3}
        for n in (9, 6, 12, 7)
    ]
    model = classifier()
    before = model.classifier.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, learning_rate=1e-2, report_to=[],
        use_cpu=True, save_strategy="no", logging_steps=1, dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=MSMAEPoseProcessor().pad)
    result = trainer.train()
    assert result.global_step == 1 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.classifier.weight.detach(), before)


def test_bfloat16_recognition_pipeline(tmp_path):
    from conftest import LABELS, save_tiny_classifier, synthetic_clip
    from transformers import pipeline

    from msmae import MSMAEPoseProcessor
    from msmae.pipeline_msmae import RECOGNITION_TASK

    folder = save_tiny_classifier(tmp_path / "classifier")
    model = MSMAEForSignClassification.from_pretrained(folder, dtype=torch.bfloat16)
    recognizer = pipeline(RECOGNITION_TASK, model=model, feature_extractor=MSMAEPoseProcessor.from_pretrained(folder))
    results = recognizer(synthetic_clip(20, seed=0), top_k=5)
    assert sorted(r["label"] for r in results) == sorted(LABELS)
    assert abs(sum(r["score"] for r in results) - 1.0) < 1e-2


def test_multi_label_recognition_pipeline_scores_each_label_independently(tmp_path):
    from conftest import save_tiny_classifier, synthetic_clip
    from transformers import pipeline

    from msmae import MSMAEPoseProcessor
    from msmae.pipeline_msmae import RECOGNITION_TASK

    folder = save_tiny_classifier(tmp_path / "classifier")
    model = MSMAEForSignClassification.from_pretrained(folder).eval()
    processor = MSMAEPoseProcessor.from_pretrained(folder)
    clip = synthetic_clip(20, seed=0)
    with torch.no_grad():
        logits = model(**processor([clip], return_tensors="pt")).logits[0]
    model.config.problem_type = "multi_label_classification"
    results = pipeline(RECOGNITION_TASK, model=model, feature_extractor=processor)(clip, top_k=len(logits))
    expected = {model.config.id2label[i]: float(p) for i, p in enumerate(logits.sigmoid())}
    assert {r["label"]: pytest.approx(r["score"], abs=1e-5) for r in results} == expected
    single = pipeline(RECOGNITION_TASK, model=model, feature_extractor=processor)(clip, function_to_apply="softmax")
    assert abs(sum(r["score"] for r in single) - 1.0) < 1e-5

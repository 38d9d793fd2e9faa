"""Model cards (README.md with Hub metadata) for the checkpoints msmae's scripts save.

`write_model_card(output_dir, task=...)` reads the saved folder (config.json, preprocessor_config.json) and writes a
`huggingface_hub.ModelCard`:
- metadata: `library_name: transformers` (the models load with transformers' Auto classes and
  `trust_remote_code=True`, which is what the Hub's "Use this model" button shows), `pipeline_tag` for the task
  (`feature-extraction` for pretrained encoders, `video-classification` for sign recognition, `translation`),
  tags, license, Hub dataset ids, `base_model` when fine-tuned from a Hub checkpoint, the sign languages seen (ISO
  639-3 codes), and the evaluation results as a model-index;
- a usage snippet that runs when pasted, with the advice to pin a revision;
- intended use and limitations: what the training data covered and how pose quality bounds the model.

The function is generic over tasks so other training scripts (translation) write their cards with it too.
"""

import json
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..hub_packaging import EMBEDDING_TASK, HUB_PIPELINE_TAGS, RECOGNITION_TASK, TRANSLATION_TASK, install_command

TAGS = ["sign-language", "pose", "mediapipe", "msmae", "ms-mae"]

# `pipeline_tag` is the name the checkpoint's `custom_pipelines` lists its pipeline under, so the widget finds it.
TASKS = {
    "pretraining": {
        "pipeline_tag": HUB_PIPELINE_TAGS[EMBEDDING_TASK],
        "auto_classes": ("AutoModel", "AutoModelForPreTraining"),
        "summary": "an MS-MAE encoder pretrained by masked pose modelling (reconstructing masked cubelets of "
        "MediaPipe keypoint streams)",
        "tags": ["masked-auto-encoding"],
    },
    "sign-classification": {
        "pipeline_tag": HUB_PIPELINE_TAGS[RECOGNITION_TASK],
        "auto_classes": ("AutoModelForVideoClassification",),
        "summary": "an MS-MAE model for isolated sign recognition (one gloss per clip)",
        "tags": ["sign-language-recognition"],
    },
    "translation": {
        "pipeline_tag": HUB_PIPELINE_TAGS[TRANSLATION_TASK],
        "auto_classes": ("AutoModelForSeq2SeqLM", "AutoModelForVision2Seq", "AutoModel"),
        "summary": "an MS-MAE sign language translation model (pose sequence in, text out)",
        "tags": ["sign-language-translation"],
    },
}

# ISO 639-3 codes of the sign languages in the datasets msmae knows by name (matched in dataset names/paths).
SIGN_LANGUAGES_BY_DATASET = {
    "signsuisse": ("sgg", "Swiss German Sign Language (DSGS)"),
    "asl": ("ase", "American Sign Language (ASL)"),
    "msl150": ("mfs", "Mexican Sign Language (LSM)"),
    "msl-150": ("mfs", "Mexican Sign Language (LSM)"),
    "phoenix": ("gsg", "German Sign Language (DGS)"),
    "how2sign": ("ase", "American Sign Language (ASL)"),
    "wlasl": ("ase", "American Sign Language (ASL)"),
    "slovo": ("rsl", "Russian Sign Language (RSL)"),
    "csl": ("csl", "Chinese Sign Language (CSL)"),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name) -> bool:
    """Whether `name` looks like a Hub repository id (`owner/name`) and is not a local path."""
    return bool(name) and bool(_HUB_ID.match(str(name))) and not Path(str(name)).exists()


def dataset_display_name(source) -> str:
    """How a training source is named in a card: a Hub id as is, a local path by its folder or file name (a card
    is public; the path on the machine that trained it means nothing to readers)."""
    source = str(source)
    return source if is_hub_id(source) or "/" not in source else Path(source).name or source


def sign_languages_of(datasets) -> list[tuple[str, str]]:
    """(code, name) of the sign languages in `datasets`, guessed from their names; unknown datasets add nothing."""
    found = []
    for dataset in datasets or []:
        lowered = str(dataset).lower()
        for key, language in SIGN_LANGUAGES_BY_DATASET.items():
            if key in lowered and language not in found:
                found.append(language)
    return found


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _base_model_languages(base_model) -> list[str]:
    """Languages in the card of a local base checkpoint (what its pretraining saw)."""
    if base_model and (Path(str(base_model)) / "README.md").exists():
        language = ModelCard.load(Path(str(base_model)) / "README.md").data.to_dict().get("language") or []
        return [language] if isinstance(language, str) else list(language)
    return []


def usage_snippet(task: str, repo_id: str, model_auto_class: str, processor_auto_class: str | None) -> str:
    """Python that loads the model from `repo_id` and runs it on a MediaPipe Holistic `.pose` file."""
    if processor_auto_class:
        processor_import = f"from transformers import {processor_auto_class}, {model_auto_class}"
        processor_load = (
            f"processor = {processor_auto_class}.from_pretrained(repo_id, trust_remote_code=True, revision=revision)"
        )
    else:
        processor_import = (
            f"from transformers import {model_auto_class}\nfrom msmae import MSMAEPoseProcessor  # pip install msmae"
        )
        processor_load = "processor = MSMAEPoseProcessor.from_pretrained(repo_id, revision=revision)"
    head = f'''import torch
{processor_import}

repo_id = "{repo_id}"
# trust_remote_code runs this repository's Python files: read them, then pin the commit you read.
revision = "main"  # replace with a commit hash from the repository's history
{processor_load}
model = {model_auto_class}.from_pretrained(repo_id, trust_remote_code=True, revision=revision).eval()

# A MediaPipe Holistic pose file (pip install pose-format); see msmae's README for videos and arrays.
inputs = processor("sign.pose", return_tensors="pt")
with torch.no_grad():
'''
    if task == "sign-classification":
        body = '''    probabilities = model(**inputs).logits.softmax(-1)[0]
top = probabilities.topk(min(5, model.config.num_labels))
for score, index in zip(top.values.tolist(), top.indices.tolist()):
    print(f"{model.config.id2label[index]}: {score:.3f}")
'''
    elif task == "pretraining":
        body = '''    outputs = model(**inputs)
# One vector per clip: the mean of the encoder's token states over real frames.
embedding = outputs.pooler_output  # (1, hidden_size)
print(embedding.shape)
'''
    else:
        body = '''    generated = model.generate(**inputs, max_new_tokens=64)
print(processor.batch_decode(generated, skip_special_tokens=True))
'''
    return head + body


def _format_metric(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def build_model_card(
    output_dir,
    *,
    task: str,
    model_name: str | None = None,
    repo_id: str | None = None,
    base_model: str | None = None,
    datasets=None,
    eval_results=None,
    sign_languages=None,
    license: str = "apache-2.0",
    tags=(),
    hyperparameters: dict | None = None,
    usage: str | None = None,
    notes: str | None = None,
    generation: dict | None = None,
) -> ModelCard:
    """A `ModelCard` for the model saved in `output_dir`.

    Args:
        task: `"pretraining"`, `"sign-classification"` or `"translation"` (sets pipeline_tag and the snippet).
        repo_id: the Hub repository the snippet loads (default: `<your-username>/<folder name>`).
        base_model: the checkpoint this model was fine-tuned or continued from (Hub id or path). Only Hub ids go in
            the metadata; a local path is named in the text.
        datasets: names, paths or Hub ids of the training data; Hub ids go in the metadata.
        eval_results: list of dicts `{"metric": "top1", "value": 0.93, "dataset": "MSL-150", "split": "test",
            "name": "Top-1 accuracy", "type": "accuracy", "dataset_id": <Hub id or None>}` (name/type/dataset_id
            optional).
        sign_languages: ISO 639-3 codes; default: guessed from `datasets` plus those of a local base model's card.
            A translation model's text language (`target_lang` in its config, e.g. `de_DE` -> `de`) is added.
        hyperparameters: shown in a "Training procedure" table.
        usage: replaces the generated usage snippet (Python code).
        notes: extra Markdown appended to the description (e.g. how the data was split).
        generation: settings that produced the evaluated outputs (beam size, length penalty, maximum length, which
            checkpoint was kept), shown in a "Generation" table.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; use one of {sorted(TASKS)}.")
    spec = TASKS[task]
    output_dir = Path(output_dir)
    config = _read_json(output_dir / "config.json")
    processor_config = _read_json(output_dir / "preprocessor_config.json")
    model_name = model_name or output_dir.resolve().name
    repo_id = repo_id or f"<your-username>/{model_name}"
    datasets = [str(d) for d in (datasets or [])]

    auto_map = config.get("auto_map") or {}
    model_auto_class = next((c for c in spec["auto_classes"] if c in auto_map), spec["auto_classes"][0])
    processor_auto_class = next(iter(processor_config.get("auto_map") or {}), None)

    languages = sign_languages_of(datasets)
    codes = list(sign_languages) if sign_languages else [code for code, _ in languages]
    base_languages = _base_model_languages(base_model)
    if task == "translation" and config.get("target_lang"):
        base_languages = [*base_languages, str(config["target_lang"]).split("_")[0]]  # mBART-50 code: language_REGION
    for code in base_languages:
        if code not in codes:
            codes.append(code)

    results = []
    for result in eval_results or []:
        results.append(
            EvalResult(
                task_type=spec["pipeline_tag"],
                dataset_type=result.get("dataset_id") or str(result["dataset"]),
                dataset_name=dataset_display_name(result["dataset"]),
                dataset_split=result.get("split"),
                metric_type=result.get("type", result["metric"]),
                metric_name=result.get("name", result["metric"]),
                metric_value=float(result["value"]),
            )
        )
    # The model-index's dataset `type` is a Hub dataset id: results on other data are in the card's table only.
    hub_results = [r for r in results if is_hub_id(r.dataset_type)]

    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=spec["pipeline_tag"],
        license=license,
        language=codes or None,
        tags=list(dict.fromkeys([*TAGS, *spec["tags"], *tags])),
        datasets=[d for d in datasets if is_hub_id(d)] or None,
        base_model=base_model if is_hub_id(base_model) else None,
        model_name=model_name,
        eval_results=hub_results or None,
        metrics=sorted({r.metric_type for r in hub_results}) or None,
    )

    lines = [f"# {model_name}", "", f"This is {spec['summary']}, trained with msmae on 🤗 Transformers."]
    if base_model:
        lines.append(f"It was trained from the checkpoint `{dataset_display_name(base_model)}`.")
    lines += ["", "## Model", ""]
    if config:
        lines += [
            f"- Streams: {', '.join(config.get('streams', []))} (MediaPipe Holistic keypoints, x and y)",
            f"- Encoder: {config.get('num_hidden_layers')} layers, hidden size {config.get('hidden_size')}, "
            f"{config.get('num_attention_heads')} heads; cubelet size {config.get('cubelet_size')} frames",
        ]
        if task == "pretraining":
            lines.append(
                f"- Decoder: {config.get('decoder_num_hidden_layers')} layers, hidden size "
                f"{config.get('decoder_hidden_size')}; mask ratio {config.get('mask_ratio')}, "
                f"{'DiffMask' if config.get('masking_strategy') == 'diff' else 'SameMask'}"
            )
        if task == "sign-classification" and config.get("id2label"):
            mode = "linear probe (frozen encoder)" if config.get("linear_probe") else "fine-tuned with a [CLS] token"
            lines.append(f"- Classifier: {len(config['id2label'])} signs, {mode}; names in `config.id2label`")
    if processor_config:
        lines.append(
            f"- Input processing: `{processor_config.get('normalization', '?')}` normalisation, "
            f"`{processor_config.get('sampling', '?')}` frame sampling"
            + (f" of {processor_config['num_frames']} frames" if processor_config.get("num_frames") else "")
        )

    lines += ["", "## Training data", ""]
    lines += [f"- `{dataset_display_name(d)}`" for d in datasets] or ["- (not recorded)"]
    if languages:
        lines.append("")
        lines.append("Sign languages: " + ", ".join(f"{name} (`{code}`)" for code, name in languages) + ".")
    if notes:
        lines += ["", notes]

    if results:
        lines += ["", "## Evaluation", "", "| dataset | split | metric | value |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {r.dataset_name} | {r.dataset_split or ''} | {r.metric_name} | {_format_metric(r.metric_value)} |"
            for r in results
        ]
        if task == "translation":
            lines += [
                "",
                "BLEU-n: corpus BLEU with 1..n-grams (signjoey's, no smoothing); ROUGE-L: TwoStreamSLT's "
                "sentence-level F-measure, averaged; words as tokens, characters for Chinese (`msmae.metrics.sign_translation`). "
                "References are the dataset's text as it is. Scores are after mapping full-width punctuation to "
                "half-width, as mBART's tokenizer generates it; \"no width correction\" scores the raw text.",
            ]
        if task == "sign-classification":
            lines += [
                "",
                "`top1`/`top5`: fraction of clips whose true sign is among the 1/5 highest-scoring signs (per-instance "
                "top-k accuracy); `*_per_class`: the same averaged within each sign, then over signs.",
            ]

    if generation:
        lines += ["", "## Generation", "", "| setting | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in generation.items()]  # as given, not rounded

    snippet = usage or usage_snippet(task, repo_id, model_auto_class, processor_auto_class)
    # First the packages the repository's code imports (its requirements.txt), at the versions tested.
    lines += ["", "## How to use", "", "```bash", install_command(output_dir), "```", "", "```python", snippet.rstrip(), "```"]

    seen = ", ".join(base_languages + [c for c in codes if c not in base_languages]) or "only the data listed above"
    lines += [
        "",
        "## Intended use and limitations",
        "",
        "- Input is MediaPipe Holistic keypoints, not pixels. The model only knows what the pose estimator saw: "
        "fast handshapes, occluded or out-of-frame hands, low resolution and motion blur lose keypoints, and "
        "recognition degrades with them. Extract poses the same way as the training data (MediaPipe Holistic, "
        "`msmae extract`).",
        f"- Sign languages seen in training (ISO 639-3): {seen}. Other sign languages, signers, camera set-ups and "
        "vocabularies are out of distribution; evaluate before relying on it.",
        "- Not a sign language interpreter. Do not use it for decisions about people (access to services, "
        "assessment of signers) without human review.",
    ]
    if task == "sign-classification":
        lines.append("- It chooses among the signs in `config.id2label` only; anything else gets one of those labels.")

    if hyperparameters:
        lines += ["", "## Training procedure", "", "| hyperparameter | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in hyperparameters.items()]  # 5e-05 stays 5e-05

    lines += ["", "## Framework versions", ""]
    lines += [f"- {name} {version}" for name, version in _versions().items()]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def _versions() -> dict:
    import datasets
    import torch
    import transformers

    from importlib.metadata import version

    return {
        "msmae": version("msmae"),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "datasets": datasets.__version__,
    }


def write_model_card(output_dir, **kwargs) -> Path:
    """`build_model_card(output_dir, **kwargs)` saved as `output_dir/README.md`; returns its path."""
    path = Path(output_dir) / "README.md"
    build_model_card(output_dir, **kwargs).save(path)
    return path

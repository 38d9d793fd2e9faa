"""`msmae predict`: sign recognition or translation of videos and pose files with a saved checkpoint.

The task follows the checkpoint (`hub_packaging.checkpoint_task`, the rule `msmae app` and `msmae live` use): an
`MSMAEForSignClassification` gives the top-k signs with scores, a `SignTranslationModel` gives text; a pretrained
encoder is refused. Each input (a path or URL) is handed as it is to the task's pipeline, which reads it (download,
MediaPipe, preprocessing). Exit codes: 0 every input was predicted; 1 the model could not be loaded (damaged weights
included) or gave non-finite outputs (never printed as scores); 2 bad arguments
(checked before the model loads: a missing input, an unsupported file type), or an input whose content cannot be read
(empty, corrupt, no person found: the other inputs are still predicted and printed).
"""

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger("msmae")

PREDICT_HELP = "recognise or translate signing in videos and pose files with a trained checkpoint"
EXIT_OK, EXIT_MODEL, EXIT_INPUT = 0, 1, 2

PREDICT_EPILOG = """\
inputs:
  videos (.mp4 .webm .avi .mov .mkv; MediaPipe Holistic runs on them, needs the video extra),
  folders of frame images (.png .jpg, read at --fps), pose files (.pose .npy .npz, ASL-App .json) or folders of
  per-frame .npy landmark files.

examples:
  msmae predict hello.mp4 --model ./my-sign-classifier
  msmae predict clips/*.pose --model ./my-sign-classifier --top_k 3 --format json
  msmae predict sentence.mp4 --model ./my-translation-model --num_beams 4 --device cuda

exit codes: 0 all inputs predicted, 1 the model could not be loaded or gave NaN outputs, 2 bad arguments or an
unreadable input.
"""


def add_predict_arguments(parser):
    parser.description = __doc__.splitlines()[0].removeprefix("`msmae predict`: ").capitalize()
    parser.epilog = PREDICT_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, pose files or per-frame .npy folders")
    parser.add_argument("--model", required=True, help="checkpoint folder (or Hub repo id) of a trained model")
    parser.add_argument("--top_k", type=int, default=5, help="labels shown per input for recognition (default: 5)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per forward pass (default: 8)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of folders of frame images, which do not record one (e.g. 25)")
    parser.add_argument("--num_beams", type=int, default=None, help="beam size for translation (default: the model's)")
    parser.add_argument("--max_new_tokens", type=int, default=None,
                        help="longest translation in tokens (default: the model's generation config)")


def run_predict(args, parser) -> int:
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        parser.error(f"--batch_size must be at least 1, got {args.batch_size}")
    if args.fps is not None and not 0 < args.fps < float("inf"):
        parser.error(f"--fps must be a positive number of frames per second (e.g. 25), got {args.fps}")
    problems = [problem for problem in map(check_input, args.inputs) if problem]
    if problems:
        for problem in problems:
            logger.error("%s", problem)
        return EXIT_INPUT
    device = _resolve_device(args.device, parser)

    try:
        pipe, task = load_predictor(args.model, device)
    except Exception as error:  # noqa: BLE001 - any load failure is reported with the path and exit code 1
        missing = not Path(args.model).exists() and args.model.startswith(("/", ".", "~"))
        logger.error("Could not load a model from %s: %s", args.model, "no such checkpoint folder" if missing else error)
        return EXIT_MODEL

    from ..clips import is_video
    from ..pipeline_msmae import RECOGNITION_TASK, NonFiniteOutputError

    call_kwargs = {"top_k": args.top_k} if task == RECOGNITION_TASK else {
        key: value for key, value in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens))
        if value is not None
    }
    if args.fps is not None:
        call_kwargs["load_kwargs"] = {"fps": args.fps}
    if any(map(is_video, args.inputs)):
        from ..holistic import filter_native_stderr

        filter_native_stderr()  # MediaPipe's native start-up lines are noise here
    try:
        answers = predict_each(pipe, args.inputs, args.batch_size, call_kwargs)
    except NonFiniteOutputError as error:  # the checkpoint's fault, whatever the input
        logger.error("%s", error)
        return EXIT_MODEL
    results, failed = [], 0
    for path, answer in zip(args.inputs, answers):
        if isinstance(answer, Exception):
            failed += 1
            logger.error("Cannot read %s: %s", path, answer)
            results.append({"input": path, "error": str(answer)})
        elif task == RECOGNITION_TASK:
            results.append({"input": path, "predictions": answer})
        else:
            results.append({"input": path, "translation": answer[0]["translation_text"]})
    print(format_results(results, args.format, task))
    return EXIT_INPUT if failed else EXIT_OK


def predict_each(pipe, inputs, batch_size, call_kwargs) -> list:
    """The pipeline's answer for each input, or the exception it raised for that input, in input order.

    The pipeline reads every input itself. Inputs go through it `batch_size` at a time (one pipeline call, so one
    padded forward pass); a batch with unreadable inputs raises `BadClipsError`, which holds the other inputs'
    answers and each bad input's exception. Non-finite outputs (`NonFiniteOutputError`) are the model's fault, not an
    input's: they propagate.
    """
    from ..pipeline_msmae import BadClipsError

    answers = []
    for start in range(0, len(inputs), batch_size):
        batch = list(inputs[start:start + batch_size])
        try:
            answers += pipe(batch, batch_size=batch_size, **call_kwargs)
        except BadClipsError as error:
            answers += [error.errors.get(index, answer) for index, answer in enumerate(error.answers)]
    return answers


def check_input(path) -> str | None:
    """A message naming what is wrong with an input path (missing, unsupported type), or None."""
    from ..clips import is_video
    from ..pose_io import POSE_SUFFIXES, VIDEO_SUFFIXES

    if str(path).startswith(("http://", "https://")):
        return None  # downloaded by the pipeline, which names the URL if that fails
    candidate = Path(path)
    if not candidate.exists():
        return f"Input not found: {path}"
    if not candidate.is_dir() and not candidate.is_file():
        from ..clips import not_a_file_message

        return not_a_file_message(path)
    if candidate.is_dir():
        if not any(candidate.glob("*.npy")) and not is_video(candidate):
            return (f"{path} is a folder without per-frame .npy files or frame images; give video or pose files, or "
                    "such a folder.")
        return None
    if candidate.suffix.lower() not in VIDEO_SUFFIXES + POSE_SUFFIXES:
        supported = " ".join(VIDEO_SUFFIXES + POSE_SUFFIXES)
        return f"{path}: unsupported file type {candidate.suffix or '(none)'!r}; use one of {supported}."
    return None


def _resolve_device(device, parser):
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parser.error(f"--device {device!r} is not a device; use cpu, cuda or cuda:N")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    return device


def load_predictor(model, device):
    """The pipeline for a checkpoint and its task (`hub_packaging.checkpoint_task`: recognition or translation)."""
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from .. import pipeline_msmae as pipelines
    from ..hub_packaging import checkpoint_task

    hf_logging.disable_progress_bar()
    task = checkpoint_task(model)  # raises, naming the architecture, for a pretrained encoder
    if task == pipelines.RECOGNITION_TASK:
        from ..modeling_msmae import MSMAEForSignClassification as model_class
    else:
        from ..modeling_sign_translation import SignTranslationModel as model_class
    loaded = model_class.from_pretrained(model)
    return pipeline(task, model=loaded, pipeline_class=pipelines.PIPELINES[task][0], device=device), task


def format_results(results, output_format, task) -> str:
    from ..pipeline_msmae import RECOGNITION_TASK

    if output_format == "json":
        return json.dumps(results, indent=2, ensure_ascii=False)
    if task == RECOGNITION_TASK:
        rows = [("input", "rank", "label", "score")]
        for result in results:
            if "error" in result:
                rows.append((result["input"], "-", "error", "-"))
                continue
            for rank, prediction in enumerate(result["predictions"], start=1):
                rows.append((result["input"] if rank == 1 else "", str(rank), prediction["label"], f"{prediction['score']:.4f}"))
    else:
        rows = [("input", "translation")]
        rows += [(result["input"], result.get("translation", "error")) for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)

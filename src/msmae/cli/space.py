"""`msmae space`: write a checkpoint's web demo as a Hugging Face Space folder (see `msmae.serving.app.write_space`)."""

SPACE_HELP = "write the web demo of a checkpoint as a Hugging Face Space (app.py, requirements.txt, README.md)"


def add_space_arguments(parser):
    parser.add_argument("--model", required=True, help="a fine-tuned recognition or translation checkpoint: a folder "
                                                       "(copied into the Space) or a Hub id (referenced)")
    parser.add_argument("--output_dir", required=True, help="the Space folder to write (new or empty)")
    parser.add_argument("--title", default=None, help="the Space's title (default: from the task)")


def run_space(args, parser) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        parser.error("msmae space needs Gradio (its version goes into the Space metadata): pip install 'msmae[app]'")
    from ..serving.app import write_space

    try:
        folder = write_space(args.model, args.output_dir, title=args.title)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    print(f"Space written to {folder}; upload it with: hf upload --repo-type space USER/NAME {folder} .")
    return 0

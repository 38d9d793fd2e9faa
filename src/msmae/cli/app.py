"""`msmae app`: the web demo of a checkpoint (Gradio), served on this machine (see `msmae.serving.app`)."""

APP_HELP = "web demo: upload or record a video, see the top-5 signs (or the translation) and the extracted skeleton"


def add_app_arguments(parser):
    parser.add_argument("--model", required=True, help="a fine-tuned recognition or translation checkpoint (folder "
                                                       "or Hub id)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--top_k", type=int, default=5, help="signs shown for a recognition checkpoint")
    parser.add_argument("--device", default=None, help="torch device of the model (default: the pipeline's choice)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")


def run_app(args, parser) -> int:
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # serving a demo needs no calls home
    if args.top_k < 1:
        parser.error(f"--top_k must be at least 1, got {args.top_k}")
    try:
        import gradio  # noqa: F401
    except ImportError:
        parser.error("msmae app needs Gradio: pip install 'msmae[app]'")
    from ..serving.app import build_app

    try:
        app = build_app(args.model, device=args.device, top_k=args.top_k)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    app.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0

"""`msmae live`: live sign recognition from a camera or a video (see `msmae.serving.live`)."""

LIVE_HELP = "live sign recognition: MediaPipe over a camera or video, a running top-k printed as the person signs"


def add_live_arguments(parser):
    parser.add_argument("--model", required=True, help="a sign recognition checkpoint (folder or Hub id)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=None, help="camera index (default 0 when --video is not given)")
    source.add_argument("--video", default=None, help="a video file instead of a camera")
    parser.add_argument("--realtime", action="store_true",
                        help="play --video at its own frame rate, skipping frames that arrive while busy (as a camera)")
    parser.add_argument("--window", type=float, default=2.0, help="seconds of signing each answer looks at")
    parser.add_argument("--every", type=int, default=4, help="frames between answers")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--device", default=None, help="torch device of the model")


def run_live(args, parser) -> int:
    from ..serving import live

    if args.window <= 0 or args.every < 1 or args.top_k < 1:
        parser.error("--window must be positive, --every and --top_k at least 1")
    if args.realtime and args.video is None:
        parser.error("--realtime paces a --video; a camera runs in real time anyway")
    try:
        recognizer = live.LiveRecognizer(args.model, window=args.window, every=args.every, top_k=args.top_k,
                                         device=args.device)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    stats = {}
    frames = live.video_frames(args.video, realtime=args.realtime, stats=stats) if args.video else \
        live.camera_frames(args.camera or 0)
    print(f"msmae live: {args.model} on {args.video or f'camera {args.camera or 0}'}: "
          f"the top {args.top_k} of the last {args.window:g} s every {args.every} frames (Ctrl-C stops)", flush=True)
    try:
        updates = live.run_live(recognizer, frames, on_update=lambda update: print(update.line(), flush=True))
    except KeyboardInterrupt:
        return 0
    finally:
        recognizer.close()
    skipped = f", {stats['dropped']} skipped to keep real time" if stats.get("dropped") else ""
    if updates:
        latencies = sorted(u.latency for u in updates)
        print(f"{recognizer.count} frames processed{skipped}; {len(updates)} answers, median latency "
              f"{1000 * latencies[len(latencies) // 2]:.0f} ms")
    else:
        print(f"{recognizer.count} frames processed{skipped}; no answer: the stream ended before its frames spanned "
              f"half of --window ({args.window:g} s)")
    return 0

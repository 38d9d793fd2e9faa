"""`msmae visualize`: draw a pose clip (any input `msmae.clips.load_pose` reads) as a skeleton."""

import logging
from pathlib import Path

logger = logging.getLogger("msmae")

VISUALIZE_HELP = "draw a pose clip as a skeleton to .png, .gif or .mp4"


def add_visualize_arguments(parser):
    parser.add_argument("input", metavar="INPUT",
                        help="a pose clip (.pose, .npy/.npz, ASL-App .json, a folder of per-frame .npy), a video "
                             "(extracted with MediaPipe first) or an `msmae extract` output folder (see --index)")
    parser.add_argument("--output", required=True, help="out.png (one frame), out.gif or out.mp4 (the clip)")
    parser.add_argument("--index", type=int, default=None,
                        help="row of an `msmae extract` output folder to draw (default: the first)")
    parser.add_argument("--frame", type=int, default=None, help="frame drawn into a .png (default: the middle one)")
    parser.add_argument("--streams", nargs="+", default=None,
                        help="streams to draw (default: body left_hand right_hand face)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate of a .gif/.mp4 (default: the clip's)")
    parser.add_argument("--size", type=int, default=512, help="height of the image in pixels")


def run_visualize(args, parser) -> int:
    from ..clips import is_video, load_pose
    from ..serving.visualization import render

    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".gif", ".mp4"):
        parser.error(f"--output must end in .png, .gif or .mp4, got {output.name}")
    if args.size < 16:
        parser.error(f"--size is the image height in pixels: at least 16, got {args.size}")
    if args.fps is not None and not args.fps > 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    if is_video(args.input):
        from ..holistic import filter_native_stderr

        filter_native_stderr()  # MediaPipe's native start-up lines are noise here
    try:
        pose = load_pose(args.input, index=args.index)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    if not pose.keypoint_mask.any():
        logger.warning("%s: no keypoint is detected in any of its %d frames (no person in view?); the picture will "
                       "be empty.", args.input, pose.num_frames)
    elif (output.suffix.lower() == ".png" and args.frame is not None and -pose.num_frames <= args.frame < pose.num_frames
          and not pose.keypoint_mask[args.frame].any()):
        logger.warning("%s: nothing is detected in frame %d; the picture will be empty.", args.input, args.frame)
    try:
        render(pose, output, streams=args.streams, frame=args.frame, fps=args.fps, height=args.size)
    except ValueError as error:  # a frame or stream that the clip does not have
        logger.error("%s: %s", args.input, error)
        return 2
    except OSError as error:
        logger.error("Cannot write %s: %s", output, error.strerror or error)
        return 1
    logger.info("Wrote %s (%d frames of %s).", output, pose.num_frames, args.input)
    return 0

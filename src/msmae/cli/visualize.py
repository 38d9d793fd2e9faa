"""`msmae visualize`: draw a pose clip (any input `msmae.pose_io.load_pose` reads) as a skeleton."""

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
    from ..pose_io import load_pose
    from ..visualization import render

    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".gif", ".mp4"):
        parser.error(f"--output must end in .png, .gif or .mp4, got {output.name}")
    try:
        pose = load_pose(args.input, index=args.index)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    render(pose, output, streams=args.streams, frame=args.frame, fps=args.fps, height=args.size)
    logger.info("Wrote %s (%d frames of %s).", output, pose.num_frames, args.input)
    return 0

"""The `msmae` command line: one module per command (see `COMMANDS`).

A command `NAME` is a module with `NAME_HELP` (one line), `add_NAME_arguments(parser)` and
`run_NAME(args, parser) -> int` (the exit code), `-` in NAME written `_`. Add a command by writing its module (here,
e.g. `msmae/cli/prepare.py`) and one line in `COMMANDS`. Keep heavy imports (torch, MediaPipe, datasets,
matplotlib) inside `add_`/`run_` functions: `msmae --help` imports only the command modules, and only the chosen
command's arguments are built.
"""

import argparse
import importlib
import logging
import sys

logger = logging.getLogger("msmae")

# command -> its module
COMMANDS = {
    "demo": "msmae.cli.demo",
    "extract": "msmae.cli.extract",
    "prepare": "msmae.cli.prepare",
    "compact": "msmae.cli.compact",
    "visualize": "msmae.cli.visualize",
    "predict": "msmae.cli.predict",
    "export-onnx": "msmae.cli.export_onnx",
    "export-pose": "msmae.cli.export_pose",
    "app": "msmae.cli.app",
    "space": "msmae.cli.space",
    "live": "msmae.cli.live",
    "push": "msmae.cli.push",
}


def _command(name):
    """(help, add_arguments, run) of a command, from its module."""
    module, attr = importlib.import_module(COMMANDS[name]), name.replace("-", "_")
    return getattr(module, f"{attr.upper()}_HELP"), getattr(module, f"add_{attr}_arguments"), getattr(module, f"run_{attr}")


def build_parser(command=None) -> argparse.ArgumentParser:
    """The `msmae` parser; only `command`'s own arguments are declared (the others' help lines are listed)."""
    parser = argparse.ArgumentParser(prog="msmae", description="Multi-Stream Masked Autoencoders for sign language.")
    parser.add_argument("--log_level", default="info", choices=("debug", "info", "warning", "error"))
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        help_text, add_arguments, run = _command(name)
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            add_arguments(subparser)
            subparser.set_defaults(run=run, subparser=subparser)
    return parser


# Exit code of a run stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

# What a command stopped with Ctrl-C keeps, formatted with its arguments; other commands write nothing part way.
KEPT_ON_INTERRUPT = {
    "extract": "the clips extracted so far are kept in {output_dir}; run the same command again to extract the rest",
    "prepare": "what was prepared so far is kept in {output_dir}; run the same command again to go on from there",
    "compact": "{source} is untouched; {output_dir} may be incomplete: delete it and run the same command again",
    "demo": "the files written so far are kept and listed in {output_dir}/msmae-demo-files.json; run again with "
            "--overwrite_output_dir to start over",
}


def interrupted_message(command, args=None) -> str:
    """The one line printed when Ctrl-C stops `command`: what was kept and how to go on."""
    kept = "files already written are kept"
    if command in KEPT_ON_INTERRUPT and args is not None:
        try:
            kept = KEPT_ON_INTERRUPT[command].format(**vars(args))
        except (KeyError, AttributeError, IndexError):
            pass
    return f"msmae {command or ''}: interrupted (Ctrl-C); {kept}.".replace("msmae :", "msmae:")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if arg in COMMANDS), None)
    args = None
    try:
        args = build_parser(command).parse_args(argv)
        return _run(args)
    except KeyboardInterrupt:
        print(interrupted_message(command, args), file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _run(args) -> int:
    # Our messages at --log_level; other libraries' only from warnings up.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.WARNING, stream=sys.stderr)
    logger.setLevel(getattr(logging, args.log_level.upper()))
    return args.run(args, args.subparser)

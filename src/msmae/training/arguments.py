"""Command-line parsing for the training scripts: `HfArgumentParser` with script-specific defaults.

The scripts change some `TrainingArguments` defaults (the paper's optimiser and schedule). `parse_arguments`
applies them only where the user gave no value, on the command line or in a single `.json`/`.yaml` file, and
`--help` shows them.
"""

import json
import os
import sys
from pathlib import Path

from transformers import HfArgumentParser


def parse_arguments(dataclass_types, defaults=None, args=None):
    """Parse `args` (default: `sys.argv[1:]`) into instances of `dataclass_types`.

    A single argument ending in `.json`, `.yaml` or `.yml` is read as a file of `{argument: value}`. `defaults`
    (`{argument: value}`) override the dataclasses' own defaults.
    """
    parser = HfArgumentParser(dataclass_types)
    args = sys.argv[1:] if args is None else [str(a) for a in args]
    defaults = dict(defaults or {})
    if len(args) == 1 and args[0].endswith((".json", ".yaml", ".yml")):
        path = Path(os.path.abspath(args[0]))
        if not path.exists():
            raise FileNotFoundError(f"No such arguments file: {path}")
        if path.suffix == ".json":
            values = json.loads(path.read_text())
        else:
            import yaml

            values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of argument names to values.")
        return parser.parse_dict({**defaults, **values})
    parser.set_defaults(**defaults)
    return parser.parse_args_into_dataclasses(args=args)


def given(name: str, args=None) -> bool:
    """Whether the command line (or arguments file) sets `--name`; for defaults that depend on other values."""
    args = sys.argv[1:] if args is None else [str(a) for a in args]
    if len(args) == 1 and args[0].endswith(".json"):
        return name in json.loads(Path(args[0]).read_text())
    if len(args) == 1 and args[0].endswith((".yaml", ".yml")):
        import yaml

        return name in (yaml.safe_load(Path(args[0]).read_text()) or {})
    flags = {f"--{name}", f"--{name.replace('_', '-')}", f"--no_{name}", f"--no-{name.replace('_', '-')}"}
    return any(a.split("=", 1)[0] in flags for a in args)

"""Training recipes: the code behind `examples/run_*.py` and `msmae demo`, shipped in the package so both work from
an installed wheel (no checkout, no file paths).

The pattern, one module per task (`pretraining`, `sign_classification`, `sign_translation`):

- `msmae/recipes/<task>.py` holds everything the script did, in transformers' `examples/pytorch` style: the
  module docstring (what it trains, the data it reads, a command line, the paper's defaults), `PAPER_DEFAULTS` /
  `SCRIPT_DEFAULTS`, the `ModelArguments` and `DataTrainingArguments` dataclasses (`field(metadata={"help": ...})`),
  the helpers (`load_splits`, `build_config`, ...), and `main(args: list[str] | None = None)`, which parses with
  `HfArgumentParser` (through `msmae.training.arguments.parse_arguments`, so a single `.json` file also works),
  builds a `Trainer`, trains / evaluates / predicts, writes the model card and returns a small dict of results.
  Imports are absolute (`from msmae.training.collator import ...`), as a user's copy of the recipe would have them.
- `examples/run_<task>.py` becomes a thin entry point that keeps the command line unchanged and runs under
  `python` or `accelerate launch`::

      #!/usr/bin/env python
      \"\"\"<one line>: see msmae.recipes.<task> for the arguments and defaults.\"\"\"
      from msmae.recipes.<task> import main

      if __name__ == "__main__":
          main()

- Callers import the recipe (`from msmae.recipes.pretraining import main`; `msmae.recipes.demo` does), never load
  `examples/*.py` by path. Tests import the dataclasses and `main` from `msmae.recipes.<task>`.
- `demo` is `msmae demo`: the pretraining and classification recipes end to end, then prediction.
- Nothing heavy is imported by this package's `__init__`: importing `msmae.recipes` costs nothing; each recipe
  module imports torch, datasets and transformers at its top, as the scripts did.
"""

"""What the training recipes (`msmae.recipes`) share, one module per job:

- `arguments`: `HfArgumentParser` with the recipes' defaults (a single `.json` file works too).
- `collator`: per-clip processing with reproducible randomness (seeded by seed, epoch and clip index) and the
  padding collator.
- `callbacks`: epoch seeding and the reconstruction picture at evaluation.
- `resume`: where a run in `--output_dir` starts.
- `trainer`: the pretraining Trainer, whose loss is one mean over the global batch on any number of processes.
- `model_card`: Hub model cards (metadata, usage snippet, limitations) for any msmae checkpoint.
- `hub`: uploading an output folder with its card.
- `synthetic`: procedurally generated signing-like clips for running without real data.

Datasets are in `msmae.data.loading`, metrics in `msmae.metrics`. Import from the modules; this package's
`__init__` imports nothing.
"""

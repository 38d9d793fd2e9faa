"""The data side of msmae. One module per job:

- `schema`: the stored row's columns (`ROW_COLUMNS`, `CLIP_COLUMNS`, `row_features`).
- `manifest`: the one manifest reader (CSV/TSV/JSON/JSON lines; labels and signer ids as text).
- `discovery`: the one way to find videos or clips in folders and list files (`find_clips`).
- `sources`: the clips to extract (`ClipSource`, `clips_from_inputs`), shared by `corpora` and `extract`.
- `extract`: the `msmae extract` runner (clips, videos, frame folders -> a resumable dataset of stored rows).
- `parts`: the folder that runner writes (part files, failure log, lock) and `load_extracted`, its reader.
- `corpora`, `prepare`: readers of the paper's corpora in their official layouts, and `msmae prepare`.
- `loading`: loading, building and splitting pose datasets for training.
- `windows`: window-level reads and compaction of long recordings.

The one clip loader (`load_pose`) lives in the flat `msmae.clips`, beside what inference needs (`holistic`,
`processing_msmae`, ...); nothing here is needed by a Hub checkpoint. Importing this package (or `manifest`,
`discovery`) loads no torch.
"""

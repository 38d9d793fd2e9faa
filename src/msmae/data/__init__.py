"""The data side of msmae. One module per job:

- `manifest`: the one manifest reader (CSV/TSV/JSON/JSON lines; labels and signer ids as text).
- `discovery`: the one way to find videos or clips in folders and list files (`find_clips`).
- `extract`: the `msmae extract` runner (clips, videos, frame folders -> a resumable dataset of stored rows).
- `corpora`, `prepare`: readers of the paper's corpora in their official layouts, and `msmae prepare`.
- `loading`: loading, building and splitting pose datasets for training.
- `windows`: window-level reads and compaction of long recordings.

The stored row's schema (`ROW_COLUMNS`, `row_features`) and the one clip loader (`load_pose`) live in the flat
`msmae.pose_io`, beside what inference needs (`holistic`, `processing_msmae`, ...); nothing here is needed by a Hub
checkpoint. Importing this package (or `manifest`, `discovery`) loads no torch.
"""

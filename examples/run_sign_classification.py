#!/usr/bin/env python
"""Isolated sign recognition with MS-MAE (fine-tuning or `--freeze_encoder` linear probing): the recipe is
`msmae.recipes.sign_classification` (its docstring lists the data it reads, the arguments and the paper's defaults).

    python examples/run_sign_classification.py --model_name_or_path msmae-pretrained --dataset_name labelled_poses/ \\
        --output_dir msmae-signs --do_train --do_eval --do_predict
"""

from msmae.recipes.sign_classification import main

if __name__ == "__main__":
    main()

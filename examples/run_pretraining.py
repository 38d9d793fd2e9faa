#!/usr/bin/env python
"""Pretraining an MS-MAE on sign language pose sequences: the recipe is `msmae.recipes.pretraining` (its docstring
lists the data it reads, the arguments and the paper's defaults).

    python examples/run_pretraining.py --dataset_name poses/ --output_dir msmae-pretrained --do_train --do_eval
    accelerate launch --config_file examples/accelerate_configs/ddp_multi_gpu.yaml examples/run_pretraining.py ...
"""

from msmae.recipes.pretraining import main

if __name__ == "__main__":
    main()

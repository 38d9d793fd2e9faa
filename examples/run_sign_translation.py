#!/usr/bin/env python
"""Fine-tuning an MS-MAE encoder with mBART-50 for sign language translation: the recipe is
`msmae.recipes.sign_translation` (its docstring lists the data it reads, the arguments, the paper's defaults and the
generation and checkpoint-selection settings).

    python examples/run_sign_translation.py --pose_encoder_name_or_path ./msmae-pretrained \\
        --phoenix_dir ../shared/data/phoenix14t-sample --target_lang de_DE --dataset_preset phoenix14t \\
        --output_dir ./msmae-phoenix --do_train --do_eval --do_predict
"""

from msmae.recipes.sign_translation import main

if __name__ == "__main__":
    main()

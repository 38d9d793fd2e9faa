"""`msmae demo`: the end-to-end demo (`msmae.recipes.demo`)."""

DEMO_HELP = "pretrain, fine-tune, evaluate and predict end to end, offline (the main job)"


def add_demo_arguments(parser):
    from ..recipes import demo

    demo.add_arguments(parser)


def run_demo(args, parser) -> int:
    from ..recipes import demo

    return demo.run(args)

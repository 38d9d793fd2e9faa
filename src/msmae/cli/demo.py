"""`msmae demo`: the end-to-end demo (`msmae.training.demo`)."""

DEMO_HELP = "pretrain, fine-tune, evaluate and predict end to end, offline (the main job)"


def add_demo_arguments(parser):
    from ..training import demo

    demo.add_arguments(parser)


def run_demo(args, parser) -> int:
    from ..training import demo

    return demo.run(args)

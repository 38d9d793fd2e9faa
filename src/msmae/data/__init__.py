"""The data side of msmae: extraction runs (`extract`), loading and splitting pose datasets (`loading`).

Nothing here is needed by a Hub checkpoint: the flat modules beside this package (`pose_io`, `holistic`,
`processing_msmae`, ...) hold what inference needs.
"""

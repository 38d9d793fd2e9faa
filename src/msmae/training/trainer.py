"""The pretraining `Trainer`: one loss mean over the global batch, however many processes share it.

MS-MAE's reconstruction loss is a mean over the masked, detected keypoints of a batch, whose number varies from
clip to clip. Each process of a distributed run (and each accumulated micro-batch) would otherwise average its own
part, and DDP then averages those means: a different number than one mean over the same global batch, so results
would depend on how many processes or machines ran them. transformers' Trainer fixes the same thing for token
losses with `num_items_in_batch`, counted from `labels` (which the classification recipes have) and summed over the
processes; pretraining has no labels, so here the model counts its loss terms (`num_loss_items`, from the
masking noise alone). Trainer then passes the count to the forward and scales the loss for DDP's averaging.

A streamed training set that is already this node's part (`StreamingPoseClipDataset.node`, from
`msmae.data.windows.stream_for_node`) is read whole by this process: accelerate would otherwise split it again.
"""

import torch
from transformers import Trainer


class GlobalMeanTrainer(Trainer):
    """`Trainer` that, for a model with `num_loss_items` and batches without `labels`, counts the loss terms of
    each optimizer step's batches over every process and hands the count to the forward as `num_items_in_batch`
    (`--average_tokens_across_devices`, on by default, sums it over the processes)."""

    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        if getattr(self.train_dataset, "node", None) is not None and self.args.world_size > 1:
            shard = loader.dataset  # accelerate's IterableDatasetShard, keeping 1 batch in world_size: keep all
            if not hasattr(shard, "num_processes"):
                raise ValueError(
                    "The training stream is this node's own part, but accelerate dispatches batches from the main "
                    "process; set accelerator_config dispatch_batches=False (the pretraining recipe does)."
                )
            shard.num_processes, shard.process_index = 1, 0
        return loader

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        count = getattr(self.accelerator.unwrap_model(self.model), "num_loss_items", None)
        if num_items is not None or count is None or any("labels" in batch for batch in batch_samples):
            return batch_samples, num_items
        # Every process gets here once per step, also with no batch left: the gather below must not wait on one.
        num_items = sum((count(**batch).to(device) for batch in batch_samples), torch.zeros((), dtype=torch.int64, device=device))
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            num_items = self.accelerator.gather(num_items).sum()
        return batch_samples, num_items

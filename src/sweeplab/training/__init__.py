"""The one training loop every family uses (see ARCHITECTURE.md, "Training")."""

from sweeplab.training.checkpoints import CheckpointSlot, CheckpointStore
from sweeplab.training.loop import RunRecord, TrainerConfig, failed_record, train

__all__ = ["CheckpointSlot", "CheckpointStore", "RunRecord", "TrainerConfig", "failed_record", "train"]

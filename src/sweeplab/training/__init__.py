"""The one training loop every family uses (see ARCHITECTURE.md, "Training")."""

from sweeplab.training.checkpoints import CheckpointSlot, CheckpointStore, fingerprint
from sweeplab.training.loop import RunRecord, TrainerConfig, train

__all__ = ["CheckpointSlot", "CheckpointStore", "RunRecord", "TrainerConfig", "fingerprint", "train"]

"""The one training loop every family uses (see ARCHITECTURE.md, "Training")."""

from sweeplab.training.checkpoints import CheckpointSlot, CheckpointStore, fingerprint
from sweeplab.training.loop import (
           RunRecord,
           Stop,
           TrainerConfig,
           Training,
           evaluate,
           reproducible,
           train,
)

__all__ = ["CheckpointSlot", "CheckpointStore", "RunRecord", "Stop", "TrainerConfig", "Training", "evaluate", "fingerprint", "reproducible",
           "train"]

"""Project settings: hooks and the config loader."""

import warnings

from kedro.config import OmegaConfigLoader

from sweeplab.integration import logs, session
from sweeplab.integration.hooks import (
    CodeChangeHook,
    DevicesHook,
    FailedVariantsHook,
    FailFastHook,
    InputFilesHook,
    ProvenanceHook,
    RunVersionsHook,
    SweepConfigHook,
    SweepProgressHook,
)
from sweeplab.integration.tracking import MlflowHook, TensorBoardHook, WandbHook

# Kedro 1.7's config loader calls an OmegaConf function deprecated since; nothing a user can act on
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

# pluggy calls the last registered first: the trackers close their runs before FailedVariantsHook
# raises for a failed variant, and a missing device stops the run before a tracker opens one
HOOKS = (SweepConfigHook(), ProvenanceHook(), CodeChangeHook(), InputFilesHook(), RunVersionsHook(), SweepProgressHook(),
         FailedVariantsHook(), FailFastHook(), MlflowHook(), TensorBoardHook(), WandbHook(),
         DevicesHook())

# kedro-viz's run hooks (dataset statistics, run events) serve only a sequential run and fail in
# ParallelRunner's workers, a warning per saved dataset; `kedro viz` draws the lineage without them
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# routine log lines at DEBUG, none that grows with the sweep (sweeplab.integration.logs)
logs.install()

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = session.CONFIG_LOADER_ARGS

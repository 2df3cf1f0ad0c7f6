"""Project settings: hooks and the config loader."""

import warnings

from kedro.config import OmegaConfigLoader

from sweeplab import logs
from sweeplab.hooks import (
    CodeChangeHook,
    FailedVariantsHook,
    InputFilesHook,
    ProvenanceHook,
    RunVersionsHook,
    SweepConfigHook,
    SweepProgressHook,
)
from sweeplab.tracking import MlflowHook, TensorBoardHook

# Kedro 1.7's config loader calls an OmegaConf function deprecated since; nothing a user can act on
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

# pluggy calls the last registered first: the trackers close their runs before FailedVariantsHook
# raises for a failed variant
HOOKS = (SweepConfigHook(), ProvenanceHook(), CodeChangeHook(), InputFilesHook(), RunVersionsHook(), SweepProgressHook(),
         FailedVariantsHook(), MlflowHook(), TensorBoardHook())

# routine log lines at DEBUG, none that grows with the sweep (sweeplab.logs)
logs.install()

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of the base parameters (e.g. ae.trainer.epochs),
    # not whole top-level entries
    "merge_strategy": {"parameters": "soft"},
}

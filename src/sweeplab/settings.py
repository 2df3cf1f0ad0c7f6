"""Project settings: hooks and the config loader."""

from kedro.config import OmegaConfigLoader

from sweeplab.hooks import FailedVariantsHook, InputFilesHook, RunVersionsHook, SweepConfigHook

HOOKS = (SweepConfigHook(), InputFilesHook(), RunVersionsHook(), FailedVariantsHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment overrides single keys of the base parameters (e.g. ae.trainer.epochs),
    # not whole top-level entries
    "merge_strategy": {"parameters": "soft"},
}

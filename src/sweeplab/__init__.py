"""Sweeplab: reproducible machine-learning experiment sweeps as Kedro pipelines."""

__version__ = "0.1.0"

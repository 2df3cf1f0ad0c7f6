"""Shared fixtures: small real HDF5 event files and throwaway copies of the Kedro project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from sweeplab.datasets.hdf5 import ArrayStream, H5ArraysDataset  # noqa: E402
from sweeplab.pipelines.events.synthetic import generate_events  # noqa: E402
from sweeplab.sweeps import Plan, plan  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Property tests: a quick default for CI and the edit loop; ``HYPOTHESIS_PROFILE=thorough``
# runs every property at 2,000 examples (the figure the input-safety issues ask for).
THOROUGH_EXAMPLES = 2000
settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=THOROUGH_EXAMPLES)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def examples(n: int) -> settings:
    """Settings for a property that wants ``n`` examples in the default profile; the thorough
    profile's count when that is larger."""
    return settings(max_examples=max(n, settings.default.max_examples))

# A sweep small enough for a few seconds: 4 variants, 2 epochs, 3,000 events.
TINY_PARAMS = {
    "events": {"synthetic": {"n_events": 3000}},
    "ae": {"trainer": {"epochs": 2, "batch_size": 256}},
    "ae_sweep": {"grid": {"model": {"latent_space": "none vq"}, "loss": {"globals_beta": "0 1"}}},
}


def write_h5(path: Path, data: dict | ArrayStream) -> Path:
    H5ArraysDataset(filepath=str(path)).save(data)
    return path


@pytest.fixture
def unsplit_file(tmp_path: Path) -> Path:
    """A real unsplit event file of 3,000 synthetic events."""
    return write_h5(tmp_path / "unsplit.h5", generate_events({"n_events": 3000, "seed": 1}))


@pytest.fixture
def ae_defaults() -> dict:
    """The autoencoder family's defaults, as the project's conf has them."""
    return yaml.safe_load((REPO / "conf/base/parameters_ae.yml").read_text())["ae"]


@pytest.fixture
def kedro_project(tmp_path: Path) -> Path:
    """A copy of the project's conf and pyproject in a temporary folder (its own data/)."""
    return copy_project(tmp_path / "project")


def copy_project(project: Path) -> Path:
    shutil.copytree(REPO / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()  # bootstrap wants the folder; the package itself is installed
    return project


def planned(spec: dict, name: str = "sweep") -> Plan:
    """A sweep spec as the registry plans it, for calling report nodes directly."""
    return plan(name, spec)

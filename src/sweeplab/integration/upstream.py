"""The private points of Kedro 1.7 that the project relies on, each behind one function.

Kedro has no public way to copy a node under another namespace with renamed datasets (its
own ``pipeline(..., namespace=...)`` builds and sorts a ``Pipeline`` per call, which costs
seconds at a thousand variants), nor to pin a dataset's load version after the catalog is
made (``--load-versions`` does it only at creation). Each point is pinned, by name and
signature, in ``tests/test_upstream_contract.py``, which names this file when an upgrade
moves one. The runners' overridden methods (``runners.py``), kedro-viz's tree methods
(``viz.py``) and the log texts (``logs.py``) are pinned there too, and so is the one private
point of Optuna (a trial's storage id, :func:`live_trial`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kedro.io import AbstractVersionedDataset, Version
from kedro.pipeline import Node
from kedro.pipeline.transcoding import _strip_transcoding


def copy_node(node: Node, **changes: Any) -> Node:
    """``node`` with some of ``inputs``, ``outputs``, ``name``, ``namespace`` replaced, as
    Kedro's namespacing copies it (``Node._copy``)."""
    return node._copy(**changes)  # noqa: SLF001


def node_inputs(node: Node) -> Any:
    """The inputs as the node was given them (a name, a list, or a mapping of argument names);
    ``node.inputs`` flattens a mapping to its values."""
    return node._inputs  # noqa: SLF001


def node_outputs(node: Node) -> Any:
    return node._outputs  # noqa: SLF001


def load_version(dataset: Any) -> Version | None:
    """A versioned dataset's ``Version``; None for a dataset that is not versioned."""
    return getattr(dataset, "_version", None) if isinstance(dataset, AbstractVersionedDataset) else None


def pin_version(dataset: AbstractVersionedDataset, version: str) -> None:
    """Load and save ``dataset`` at ``version``, as ``--load-versions`` would have."""
    dataset._version = Version(load=version, save=version)  # noqa: SLF001


VERSION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z$")  # Kedro's version folder names


def saved_versions(dataset: Any) -> tuple[Path, list[str]] | None:
    """A versioned file dataset's folder and the versions saved in it, oldest first; None: not
    versioned. Kedro keeps a versioned dataset's path in ``_filepath``, for its own datasets and
    kedro-datasets' alike."""
    filepath = getattr(dataset, "_filepath", None)
    if load_version(dataset) is None or filepath is None:
        return None
    base = Path(str(filepath))
    names = sorted(p.name for p in base.iterdir() if p.is_dir() and VERSION.match(p.name)) if base.is_dir() else []
    return base, names


def strip_transcoding(name: str) -> str:
    """``a@pandas`` -> ``a``: the dataset a transcoded name refers to."""
    return _strip_transcoding(name)


def live_trial(study: Any, number: int) -> Any:
    """Trial ``number`` of an Optuna study as a live trial, in any process: to report a trial's
    epochs and ask the pruner from the node that trains it. Optuna names a trial to its storage
    by an id that only ``FrozenTrial._trial_id`` holds."""
    import optuna  # noqa: PLC0415 - only a search imports Optuna

    frozen = study.get_trials(deepcopy=False)[number]
    return optuna.trial.Trial(study, frozen._trial_id)  # noqa: SLF001

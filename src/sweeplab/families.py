"""Model families: what each brings to the sweep machinery, and the code they all share.

A family is a folder ``pipelines/<family>/`` whose ``pipeline.py`` defines ``FAMILY``: its
typed config, its data prep, the model inputs that data prep writes and a ``training``
function (typed config + model inputs -> :class:`Training`, what the loop needs). That one
definition registers it (:func:`discover`). The per-variant template is the same for every
family (resolved config -> train -> run record -> loss curves, plus the family's own figure
nodes), and so is the node that trains (:func:`train_variant`), so a family never writes the
``from_dict -> slot_for -> train -> as_outputs`` adapter or a catalog block of its own: the
run record's datasets are the generic ``{sweep}.{variant}.<name>`` patterns of ``catalog.yml``.

The same definition rebuilds a saved variant after the run (:meth:`Family.rebuild`): its
resolved config, the model inputs and its weights give back the model and its setup, so a
notebook can evaluate it as the loop did (``notebooks/explore_sweep.ipynb``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from kedro.pipeline import Node, Pipeline
from torch import nn

from sweeplab import code_identity, fail_fast, search
from sweeplab.code_identity import CodeIdentity, SourceTree
from sweeplab.config import ConfigError, from_dict
from sweeplab.errors import DataFileError
from sweeplab.figures import plot_history
from sweeplab.pipelines import node_function
from sweeplab.run_records import CODE_KEPT, KEEP
from sweeplab.training import CheckpointSlot, CheckpointStore, evaluate, train
from sweeplab.training.loop import (
    RunRecord,
    Training,
    not_trained,
    restored,
)

CHECKPOINT_STORE = "checkpoint_store"  # one store for every variant of every sweep: never namespaced
STUDIES = "search_studies"  # every search's study (sweeplab.search): never namespaced
RUN_RECORD = ("model", "history", "summary")  # what every training node returns (ARCHITECTURE.md)


@dataclass(frozen=True)
class RebuiltVariant:
    """A saved variant brought back: its typed config, its family's setup and its model, which
    holds the saved weights and is in eval mode."""

    config: Any  # the family's typed config; ``config.trainer`` as in the run
    setup: Training
    model: nn.Module

    def evaluate(self, data: Mapping[str, Any] | None = None, *, epoch: int | None = None) -> dict[str, float]:
        """The model's metrics over a whole split (default: the validation split), computed as
        the loop computes its validation metrics: batches of ``trainer.eval_batch_size``, the
        family's ``batch_metrics`` and ``split_metrics``.

        ``epoch``: first call the family's ``on_epoch`` with it, for metrics that follow a
        schedule (a KL weight's warm-up); with the summary's ``best_epoch`` and the saved (best)
        weights this gives back the summary's ``best.val`` metrics.
        """
        if epoch is not None and self.setup.on_epoch is not None:
            self.setup.on_epoch(epoch)
        return evaluate(self.model, self.setup.batch_metrics, self.setup.val_data if data is None else data,
                        batch_size=self.config.trainer.eval_batch_size, split_metrics=self.setup.split_metrics)


def no_figures() -> list[Node]:
    return []


@dataclass(frozen=True)
class Family:
    """What a model family gives the sweep machinery."""

    name: str  # its defaults live in ``params:<name>``
    config_type: type  # the typed config its nodes build from the resolved dict; has ``trainer``
    data_prep: Callable[[Mapping[str, Any]], Pipeline]  # run parameters -> shared input nodes
    training: Callable[[Any, dict[str, Any]], Training]  # typed config + model inputs -> the setup
    train_node: str = ""  # the training node's name; default ``train_<name>``
    figures: Callable[[], list[Node]] = no_figures  # per-variant nodes after the run record
    shared_inputs: frozenset[str] = field(default_factory=frozenset)  # other data prep outputs they read
    data_sections: Mapping[str, type] = field(default_factory=dict)  # parameters its data prep reads -> type

    @property
    def inputs(self) -> str:
        """The model inputs its data prep writes and every variant loads (catalog.yml's one
        ``{family}_inputs`` pattern), holding a ``fingerprint`` of the data."""
        return f"{self.name}_inputs"

    @property
    def shared(self) -> frozenset[str]:
        """Datasets every variant reads unnamespaced."""
        return frozenset({self.inputs, CHECKPOINT_STORE, STUDIES, *self.shared_inputs})

    def template(self, searched_by: str | None = None) -> Pipeline:
        """One variant's nodes; ``config`` comes from the sweep's resolve node. A search's
        trials (``searched_by``: the sweep) also read the study and the sweep's spec."""
        func = train_trial if searched_by else train_variant
        train = node_function(func, family=self)
        study = [STUDIES, f"params:{searched_by}"] if searched_by else []
        trains = Node(train, ["config", self.inputs, CHECKPOINT_STORE, *study],
                      [*RUN_RECORD, *(["outcome"] if searched_by else [])], name=self.train_node or f"train_{self.name}",
                      tags=["training"])
        losses = Node(plot_history, ["history", "summary"], "losses_plot", name="plot_losses")
        return Pipeline([trains, losses, *self.figures()])

    def setup(self, config: Mapping[str, Any], inputs: dict[str, Any]) -> tuple[Any, Training]:
        """A variant's typed config and training setup, from its resolved config (what
        ``<sweep>.<variant>.config`` holds) and the model inputs."""
        cfg = from_dict(self.config_type, config["config"], where=self.name)  # checked when the sweep expanded
        return cfg, self.training(cfg, inputs)

    def rebuild(self, config: Mapping[str, Any], inputs: dict[str, Any],
                weights: Mapping[str, torch.Tensor]) -> RebuiltVariant:
        """A saved variant's model, built as its training built it and holding its saved weights
        (the best epoch's), on the CPU and in eval mode, with the setup to evaluate it."""
        where = f"{config.get('sweep')}.{config.get('variant')}"
        if config.get("family") != self.name:
            raise ConfigError(f"{where}: its config is of family {config.get('family')!r}, not '{self.name}'")
        if not weights:
            raise DataFileError(f"{where}: its saved weights are empty (it failed before finishing an epoch)")
        cfg, setup = self.setup(config, inputs)
        model = setup.build_model()
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:  # torch lists every missing, unexpected or mis-shaped tensor, a line each
            raise DataFileError(f"{where}: its saved weights do not fit the model its config builds: "
                                f"{' '.join(str(exc).split())}") from None
        return RebuiltVariant(config=cfg, setup=setup, model=model.eval())

    def code_identity(self, tree: SourceTree | None = None) -> CodeIdentity:
        """The code its variants' numbers depend on (``sweeplab.code_identity``): the family's
        package and what it imports inside the project, the training loop included. Of the
        running code (computed once a process), or of another copy of the project's source."""
        modules = {obj.__module__ for obj in (self.training, self.config_type)}
        source = tree or code_identity.installed()
        roots = tuple(sorted({root for module in modules for root in source.package_modules(module.rpartition(".")[0])}
                             | modules))
        return code_identity.of_modules(roots) if tree is None else tree.identity(roots)

    def check(self) -> None:
        """Every input of the template is made by it, a parameter, or declared shared."""
        template = self.template()
        free = template.inputs() - {"config"} - self.shared
        stray = sorted(name for name in free if not name.startswith("params:"))
        if stray:
            raise ConfigError(f"family '{self.name}': its per-variant nodes read {stray}, which no node of the "
                              f"template makes; declare them in shared_inputs (now {sorted(self.shared)})")

    def check_data_prep(self, prep: Pipeline) -> None:
        missing = sorted(self.shared - {CHECKPOINT_STORE, STUDIES} - prep.all_outputs())  # its inputs included
        if missing:
            raise ConfigError(f"family '{self.name}': its data prep does not make {missing}, which its "
                              "per-variant nodes read")


def train_variant(config: dict[str, Any], inputs: dict[str, Any], checkpoint_store: CheckpointStore,
                  studies: search.StudyStore | None = None, sweep_spec: dict[str, Any] | None = None, *,
                  family: Family) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]]:
    """Node: train one variant; returns (weights, history, summary), the run record.

    The checkpoint slot is keyed by the config hash, the inputs' fingerprint and the family's
    code identity, so neither a changed config, changed data nor changed code ever reuses a
    checkpoint. Only with ``<sweep>.resume.code: keep`` is a run finished by other code
    restored, and its summary then says ``code_kept``.

    A search's trial (``studies`` and its sweep's spec given) reports each epoch to the pruner
    and tells the study how it ended (``sweeplab.search``).
    """
    data = inputs.get("fingerprint")
    if not isinstance(data, str):  # what keys the checkpoints on the data: every builder must say it
        raise ConfigError(f"family '{family.name}': its model inputs ({family.inputs}) hold no 'fingerprint'; "
                          "its data prep must set inputs['fingerprint'] = sweeplab.training.fingerprint(...)")
    cfg, setup = family.setup(config, inputs)
    code = family.code_identity()
    run = {**config, "code_identity": code.digest, "code_version": code_identity.source_version()}
    trial = None
    if studies is not None and search.trial_of(config):
        trial = search.checked(config["sweep"], sweep_spec["search"], config[search.SECTION]["seeds"])
        setup = dataclasses.replace(setup, stop_rules=(*setup.stop_rules, search.PruneRule(studies, config, trial)))
    if (stop := fail_fast.not_started(config)) is not None:
        record = not_trained(run, cfg.trainer, stop)
    elif (why := search.not_reevaluated(config)) is not None:
        record = not_trained(run, cfg.trainer, search.NothingToReevaluate(why))
    else:
        slot = checkpoint_store.slot_for(config, data, code.digest)
        record = kept_record(config, checkpoint_store, slot, data, code.digest)
        if record is None:
            slot.record_code(code.as_dict())
            record = train(setup, trainer=cfg.trainer, checkpoint=slot, run=run)
        fail_fast.note(config, record.summary)
    if trial is not None:
        search.tell(studies, config, trial, record.summary)
    record.summary.update(setup.summary)
    return record.as_outputs()


def train_trial(config: dict[str, Any], inputs: dict[str, Any], checkpoint_store: CheckpointStore,
                studies: search.StudyStore, sweep_spec: dict[str, Any], *, family: Family) -> tuple:
    """Node: ``train_variant`` of a search's trial, and the trial's outcome (``search.outcome``)."""
    weights, history, summary = train_variant(config, inputs, checkpoint_store, studies, sweep_spec, family=family)
    # the spec was checked by train_variant (and before the run): its objective's name is all the outcome needs
    return weights, history, summary, search.outcome(summary, sweep_spec["search"]["objective"]["metric"])


def keeps_older_code(config: Mapping[str, Any]) -> bool:
    """Whether a variant's sweep restores runs finished by other code (``resume.code: keep``)."""
    return (config.get("resume") or {}).get("code") == KEEP


def kept_record(config: dict[str, Any], store: CheckpointStore, slot: CheckpointSlot, data_fingerprint: str,
                code: str) -> RunRecord | None:
    """With ``resume.code: keep``, and no run of this code finished: the newest run of this
    config and data that other code finished, marked ``code_kept``."""
    if not keeps_older_code(config) or slot.finished():
        return None
    name = f"{config['sweep']}.{config['variant']}"
    for older in (s for s in store.finished(config, data_fingerprint) if s.code_digest != code):
        if (record := restored(older, name, "kept the run that earlier code finished")) is not None:
            record.summary[CODE_KEPT] = True
            return record
    return None


@dataclass(frozen=True)
class OtherCode:
    """A sweep's variants whose config a run of other code finished, and none of this code: a
    re-run retrains them (or keeps them, with ``resume.code: keep``)."""

    variants: tuple[str, ...]
    changed: tuple[str, ...]  # files changed since (``CodeIdentity.changes_since``)
    unrecorded: int  # of them, runs from before code identities were recorded


def finished_by_other_code(family: Family, configs: Sequence[Mapping[str, Any]], store: CheckpointStore) -> OtherCode:
    """Which of these resolved variant configs have a finished run of other code than the
    family's now, and none of this code (the data is not known before data prep: any counts)."""
    code = family.code_identity()
    variants, changed, unrecorded = [], set(), 0
    for config in configs:
        finished = store.finished(config)
        if finished and all(slot.code_digest != code.digest for slot in finished):
            variants.append(config["variant"])
            earlier = finished[0].code()
            unrecorded += earlier is None
            changed.update(code.changes_since(earlier))
    return OtherCode(tuple(variants), tuple(sorted(changed)), unrecorded)


@functools.cache
def discover() -> dict[str, Family]:
    """Every family of the project: each ``sweeplab.pipelines.<x>.pipeline`` that defines ``FAMILY``."""
    import sweeplab.pipelines as package  # noqa: PLC0415 - the pipelines import this module

    found: dict[str, Family] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}.pipeline")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package.__name__}.{info.name}.pipeline":
                raise
            continue
        family = getattr(module, "FAMILY", None)
        if isinstance(family, Family):
            if family.name in found:
                raise ConfigError(f"two families are named '{family.name}'")
            found[family.name] = family
    return found

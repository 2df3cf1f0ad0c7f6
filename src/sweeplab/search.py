"""Adaptive search: a sweep's ``search:`` section, its trials as variants, and its study.

A sweep may search instead of listing its conditions::

    ae_search:
      family: ae
      search:
        space:                         # dotted keys into the family's defaults
          trainer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
          model.hidden_dim: {type: int, low: 16, high: 128, log: true}
          model.latent_space: {type: categorical, choices: [linear, vq]}
          model.codebook_size: {type: int, low: 32, high: 256, when: {model.latent_space: vq}}
        objective: {metric: rec_globals, direction: min}
        trials: 30                     # the study's budget, however many processes run it
        sampler: tpe                   # tpe | random | grid (grid: categorical keys only)
        pruner: {type: hyperband, min_epochs: 1}   # none | successive_halving | hyperband
        parallel: 2                    # trials in flight at once (workers, a job array's throttle)
        reevaluate: [100, 101, 102]    # fresh seeds for the best trial's config
      seeds: [0]                       # seeds of every trial

Trials are variants known before the run: ``t000_s0`` ... (trial x seed), and ``best_s100``
... for the re-evaluation. Each keeps what every variant has (its resolved config, run record,
checkpoint slot and code identity), so failure isolation, resume, the report, kedro-viz and
tracking work unchanged. What differs is where a trial's config comes from: its config node
asks the study (Optuna, with a journal file in the data folder: it survives ``kill -9`` and
locks with a file created exclusively, which works on NFS). The first time, the sampler
chooses its values; after that, a re-run finds the same trial and its values, so a finished
trial is restored, and an interrupted one continues from its checkpoint; one told failed runs
again with its values as a new Optuna trial. The train node reports each epoch's value to
the pruner (a stop rule: status ``pruned``) and tells the study how the trial ended, from
its run record. Trial k's config node also reads the outcome of trial k - ``parallel``, so
under any runner, and on a cluster, at most ``parallel`` trials are in flight and the
sampler has seen every result but the last ``parallel - 1`` (``sweeps.asked_after``).

The study is named by the sweep and a hash of what its trials compute (the space, objective,
sampler, pruner, seeds, the family's defaults and code identity): a changed space or model is
a new study. The budget and ``parallel`` are not in it: raising ``trials`` continues the study.
Optuna is imported only by a sweep that searches.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from sweeplab.config import ConfigError, PositiveInt, Range, config_hash, from_dict
from sweeplab.errors import shown
from sweeplab.run_records import SHOWN, has_result
from sweeplab.run_records import metrics as summary_metrics

if TYPE_CHECKING:
    import optuna

SECTION = "search"  # in a trial's resolved config: its study, Optuna trial, values and the trial seeds
TRIAL_AXIS = "trial"  # the search's one condition axis: t000, t001, ..., best
BEST = "best"  # the re-evaluation's variants: best_s<seed>
PRUNED = "pruned"  # a run record's status when the pruner stopped it
VARIANT_ATTR = "variant"  # a trial's user attribute: the trial's name (t003), shared by its seeds
ReductionFactor = Annotated[int, Range(low=2)]


class SearchError(ConfigError):
    """A search section that cannot be run; the message names the sweep and key."""


class NothingToReevaluate(RuntimeError):
    """Why a re-evaluation variant was not trained: no trial of its search gave a result."""


@dataclass(frozen=True)
class Param:
    """One key of the space: a float or int range (``log`` spaced, or in ``step``s), or choices;
    with ``when``, sampled only when other keys of the space have these values."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    when: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise ConfigError("choices: missing; a categorical key needs a list of values")
            if any(not isinstance(c, str | int | float | bool | None) for c in self.choices):
                raise ConfigError(f"choices: got {shown(list(self.choices))}; expected single values")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ConfigError("choices: a categorical key takes no low, high, log or step")
            return
        if self.choices is not None:
            raise ConfigError(f"choices: a {self.type} key takes low and high, not choices")
        if self.low is None or self.high is None:
            raise ConfigError(f"{'low' if self.low is None else 'high'}: missing; a {self.type} key needs low and high")
        if self.type == "int" and any(v is not None and not float(v).is_integer() for v in (self.low, self.high, self.step)):
            raise ConfigError(f"low: an int key's low, high and step are whole numbers; got {self.low}, {self.high}")
        if self.low > self.high:
            raise ConfigError(f"low: got {self.low:g} above high {self.high:g}")
        if self.log and self.low <= 0:
            raise ConfigError(f"low: got {self.low:g}; a log-spaced key needs low > 0")
        if self.log and self.step is not None:
            raise ConfigError("step: a log-spaced key takes no step")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"step: got {self.step:g}; expected a number > 0")

    def distribution(self) -> optuna.distributions.BaseDistribution:
        from optuna import distributions  # noqa: PLC0415 - only a search imports Optuna

        if self.type == "categorical":
            return distributions.CategoricalDistribution(list(self.choices))
        if self.type == "int":
            return distributions.IntDistribution(int(self.low), int(self.high), log=self.log,
                                                 step=int(self.step or 1))
        return distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def corners(self) -> list[Any]:
        """The values that bound what the sampler can choose: checked against the family's config."""
        if self.type == "categorical":
            return list(self.choices)
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]


@dataclass(frozen=True)
class Objective:
    metric: str  # a validation metric of the run record, at the best epoch (``trainer.monitor``'s)
    direction: Literal["min", "max"] = "min"


@dataclass(frozen=True)
class PrunerSpec:
    type: Literal["none", "successive_halving", "hyperband"] = "none"
    metric: str | None = None  # the val metric reported each epoch; default: the objective's
    min_epochs: PositiveInt = 1  # the first rung
    reduction_factor: ReductionFactor = 3  # a rung keeps the best 1/reduction_factor of its trials


@dataclass(frozen=True)
class SearchSpec:
    space: dict[str, Any]  # dotted key -> Param (nested keys are flattened)
    objective: Objective
    trials: PositiveInt
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 0  # the sampler's
    startup_trials: PositiveInt = 10  # TPE: random trials before it models the results
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    # trials in flight at once, under any runner and on a cluster: trial k is asked once trial
    # k - parallel has ended, so the sampler has seen all results but the last parallel - 1
    parallel: PositiveInt = 1
    reevaluate: tuple[int, ...] = ()  # fresh seeds on which the best trial's config is trained again

    @property
    def params(self) -> dict[str, Param]:
        return self.space  # checked into Params by ``checked``

    @property
    def prune_metric(self) -> str:
        return self.pruner.metric or self.objective.metric

    def identity(self) -> dict[str, Any]:
        """What the trials compute: all but the budget and how many run at once."""
        return {"space": {k: vars(p) for k, p in self.params.items()}, "objective": vars(self.objective),
                "sampler": self.sampler, "seed": self.seed, "startup_trials": self.startup_trials,
                "pruner": vars(self.pruner)}


def flatten_space(space: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """Nested or dotted keys -> {dotted key: the key's spec}; a mapping with ``type`` is a spec."""
    if not isinstance(space, Mapping):
        raise SearchError(f"{where}: got {shown(space)}; expected a mapping of parameter -> its range or choices")
    flat: dict[str, Any] = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "type" not in value:
            flat.update(flatten_space(value, where, f"{path}."))
        else:
            flat[path] = value
    return flat


def checked(sweep: str, spec: Any, seeds: list[int]) -> SearchSpec:
    """The ``search:`` section typed and checked; errors name ``<sweep>.search.<key>``."""
    where = f"{sweep}.search"
    if not isinstance(spec, Mapping):
        raise SearchError(f"{where}: got {shown(spec)}; expected a mapping (space, objective, trials, ...)")
    raw = dict(spec)
    space = flatten_space(raw.get("space", {}), f"{where}.space")
    typed = from_dict(SearchSpec, {**raw, "space": {}}, where=where)
    if not space:
        raise SearchError(f"{where}.space: empty; expected at least one parameter to search")
    params = {key: from_dict(Param, value, where=f"{where}.space.{key}") for key, value in space.items()}
    for key, param in params.items():
        for other, value in param.when.items():
            if other not in params or other == key:
                raise SearchError(f"{where}.space.{key}.when.{other}: not another key of the space {sorted(params)}")
            if params[other].when:
                raise SearchError(f"{where}.space.{key}.when.{other}: depends on a key that has a 'when' itself")
            allowed = params[other].corners() if params[other].type == "categorical" else None
            if allowed is not None and value not in allowed and not (isinstance(value, list) and
                                                                      set(value) <= set(allowed)):
                raise SearchError(f"{where}.space.{key}.when.{other}: got {shown(value)}; expected one of {allowed}")
    if typed.sampler == "grid":
        loose = [k for k, p in params.items() if p.type != "categorical" or p.when]
        if loose:
            raise SearchError(f"{where}.sampler: grid searches categorical keys without 'when'; "
                              f"{loose[0]} is {params[loose[0]].type}")
        size = math.prod(len(p.choices) for p in params.values())
        if typed.trials > size:
            raise SearchError(f"{where}.trials: got {typed.trials}; the grid holds {size} points")
    fresh = [s for s in typed.reevaluate if s in seeds]
    if fresh:
        raise SearchError(f"{where}.reevaluate: seed {fresh[0]} is a trial seed too; the best config is "
                          "re-evaluated on fresh seeds")
    if len(set(typed.reevaluate)) != len(typed.reevaluate) or any(s < 0 for s in typed.reevaluate):
        raise SearchError(f"{where}.reevaluate: got {shown(list(typed.reevaluate))}; expected distinct "
                          "non-negative seeds")
    return SearchSpec(**{**vars(typed), "space": params})


def trial_names(spec: SearchSpec) -> list[str]:
    width = max(3, len(str(spec.trials - 1)))
    return [f"t{k:0{width}d}" for k in range(spec.trials)]


def active(params: Mapping[str, Param], values: Mapping[str, Any]) -> dict[str, Param]:
    """The keys sampled given the values of the unconditional ones."""
    def holds(param: Param) -> bool:
        return all(values.get(k) == v or (isinstance(v, list) and values.get(k) in v) for k, v in param.when.items())

    return {k: p for k, p in params.items() if not p.when or holds(p)}


# ----------------------------------------------------------------------------------------------
# the study


def optuna_module() -> Any:
    import optuna  # noqa: PLC0415 - only a search imports Optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its per-trial lines duplicate the project's log
    return optuna


class StudyStore:
    """Where a project's studies live (``search_studies`` in the catalog): one journal file
    per sweep and study hash. The journal appends one line per change, under a lock file made
    with ``O_EXCL``; a process killed between writes leaves it whole."""

    def __init__(self, path: str | Path):
        self.root = Path(path)

    def journal(self, sweep: str, key: str) -> Path:
        return self.root / sweep / f"{key}.journal"

    def open(self, sweep: str, key: str, spec: SearchSpec, *, epochs: int | None = None,
             sampler_seed: int | None = None) -> optuna.Study:
        optuna = optuna_module()
        from optuna.storages import JournalStorage  # noqa: PLC0415
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock  # noqa: PLC0415

        path = self.journal(sweep, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
        # neither sampler nor pruner is stored: the same ones on every open
        return optuna.create_study(storage=storage, study_name=f"{sweep}-{key}", load_if_exists=True,
                                   direction="minimize" if spec.objective.direction == "min" else "maximize",
                                   sampler=sampler(spec, sampler_seed), pruner=pruner(spec, epochs))

    def lock(self, sweep: str, key: str) -> Any:
        """A lock for asking: two seeds of one trial must not both ask for it."""
        from optuna.storages.journal import JournalFileOpenLock  # noqa: PLC0415

        path = self.journal(sweep, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalFileOpenLock(f"{path}.ask")


def sampler(spec: SearchSpec, seed: int | None) -> Any:
    optuna = optuna_module()
    seed = spec.seed if seed is None else seed
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":  # its order is shuffled by the seed: the sweep's own, never a per-ask one
        return optuna.samplers.GridSampler({k: list(p.choices) for k, p in spec.params.items()}, seed=spec.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate/group are marked experimental
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials, multivariate=True,
                                          group=any(p.when for p in spec.params.values()), constant_liar=True)


def pruner(spec: SearchSpec, epochs: int | None) -> Any:
    optuna = optuna_module()
    kind = spec.pruner
    if kind.type == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=kind.min_epochs,
                                                      reduction_factor=kind.reduction_factor)
    if kind.type == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=kind.min_epochs, max_resource=epochs or "auto",
                                              reduction_factor=kind.reduction_factor)
    return optuna.pruners.NopPruner()


def study_key(spec: SearchSpec, defaults: Mapping[str, Any], seeds: list[int], code: str) -> str:
    return config_hash({"search": spec.identity(), "defaults": defaults, "seeds": seeds, "code": code})


def newest_trials(study: optuna.Study) -> dict[str, Any]:
    """Trial name -> its newest Optuna trial (a failed trial's retry is newer than it)."""
    return {t.user_attrs[VARIANT_ATTR]: t for t in study.get_trials(deepcopy=False) if VARIANT_ATTR in t.user_attrs}


def ask(store: StudyStore, sweep: str, key: str, spec: SearchSpec, trial: str, *, epochs: int
        ) -> tuple[int, dict[str, Any]]:
    """The Optuna trial (its number and values) that trial ``trial`` runs: the one asked
    before (a re-run restores it, or continues it from its checkpoint), or a new one. One told
    failed is run again as a new trial with the same values, as a re-run retries any failed
    variant; the failed one stays in the study, counted as failed."""
    optuna = optuna_module()
    lock = store.lock(sweep, key)
    lock.acquire()  # waits; a lock left by a killed process is broken after 30 s
    try:
        study = store.open(sweep, key, spec, epochs=epochs)
        found = newest_trials(study).get(trial)
        if found is not None and found.state != optuna.trial.TrialState.FAIL:
            return found.number, dict(found.params)
        # seeded by how many trials exist: a restarted process does not repeat the first values
        study.sampler = sampler(spec, spec.seed + len(study.get_trials(deepcopy=False)))
        if found is not None:
            study.enqueue_trial(dict(found.params), user_attrs={VARIANT_ATTR: trial, "retry_of": found.number})
        unconditional = {k: p.distribution() for k, p in spec.params.items() if not p.when}
        asked = study.ask(unconditional)
        for name, param in active(spec.params, asked.params).items():
            if param.when:
                suggest(asked, name, param)  # define-by-run, after the keys it depends on
        asked.set_user_attr(VARIANT_ATTR, trial)
        return asked.number, dict(asked.params)
    finally:
        lock.release()


def suggest(trial: Any, name: str, param: Param) -> Any:
    if param.type == "categorical":
        return trial.suggest_categorical(name, list(param.choices))
    if param.type == "int":
        return trial.suggest_int(name, int(param.low), int(param.high), log=param.log, step=int(param.step or 1))
    return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)


# ----------------------------------------------------------------------------------------------
# trials as runs: what the train node and the re-evaluation do with the study


def outcome(summary: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """A trial run's outcome, as it was told: its summary's identity, status and reason, and the
    objective alone. Saved as ``<sweep>.<variant>.outcome`` (no kedro-viz layer) for the nodes
    that wait on it: a trial's config node reads trial k - parallel's, the re-evaluation every
    one. Reading the summaries (model_output) into a config (models) would loop kedro-viz's
    layers back, and it would then draw none."""
    value = summary_metrics(summary, *SHOWN).get(metric)
    return {**{k: summary.get(k) for k in ("sweep", "variant", "condition", "seed", "status", "reason")},
            "best": {"val": {metric: value} if value is not None else {}}}


def trial_results(spec: SearchSpec, summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, list[float]]:
    """Trial name -> the objective of each of its seeds that gave a result (a pruned run gives
    none), from their summaries or outcomes."""
    found: dict[str, list[float]] = {}
    for summary in summaries.values():
        trial = (summary.get("condition") or {}).get(TRIAL_AXIS)
        if trial is None or not has_result(summary.get("status", "")) or summary.get("status") == PRUNED:
            continue
        value = summary_metrics(summary, *SHOWN).get(spec.objective.metric)
        if value is not None and math.isfinite(value):
            found.setdefault(trial, []).append(float(value))
    return found


def best_trial(spec: SearchSpec, summaries: Mapping[str, Mapping[str, Any]]) -> tuple[str, float] | None:
    """The trial whose seeds' mean objective is best, and that mean; None when no trial gave one."""
    means = {trial: statistics.fmean(values) for trial, values in trial_results(spec, summaries).items()}
    if not means:
        return None
    pick = min if spec.objective.direction == "min" else max
    best = pick(sorted(means), key=means.__getitem__)
    return best, means[best]


class PruneRule:
    """A stop rule: report each epoch's value to the trial, and stop when the pruner says so.

    The trial's first seed reports; its other seeds stop once the trial is pruned. A run on
    several ranks is never pruned: each rank would ask the pruner and might hear otherwise."""

    def __init__(self, studies: StudyStore, config: Mapping[str, Any], spec: SearchSpec):
        self.studies, self.spec = studies, spec
        section = config[SECTION]
        self.sweep, self.key, self.number = config["sweep"], section["study"], section["trial"]
        self.reports = config["seed"] == section["seeds"][0]
        self.epochs = config["config"]["trainer"]["epochs"]
        self._trial: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_trial": None}

    def __call__(self, history: list[dict[str, Any]]) -> Any:
        import torch.distributed  # noqa: PLC0415 - the loop has imported it; the sweep engine must not

        from sweeplab.training.loop import Stop  # noqa: PLC0415

        row = next(r for r in reversed(history) if r.get("split") == "val")
        metric, epoch = self.spec.prune_metric, int(row["epoch"])
        # a family's metrics are known once it computes them: a misnamed one ends the search at
        # the first epoch, in one line (``tell`` raises it), before another trial runs
        for key, name in (("objective.metric", self.spec.objective.metric), ("pruner.metric", metric)):
            if name not in row:
                metrics = sorted(k for k in row if k not in ("epoch", "split"))
                raise SearchError(f"{self.sweep}.search.{key}: got {name!r}; the runs' val metrics are {metrics}")
        if self.spec.pruner.type == "none" or (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return None
        if epoch >= self.epochs:  # its last epoch: a finished trial is a result, whatever a rung would say
            return None
        if self._trial is None:
            from sweeplab.integration import upstream  # noqa: PLC0415

            study = self.studies.open(self.sweep, self.key, self.spec, epochs=self.epochs)
            self._trial = upstream.live_trial(study, self.number)
        if self.reports:
            value = float(row[metric])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a resumed run reports its epochs again; the first value stays
                self._trial.report(value if math.isfinite(value) else math.inf, epoch)
            if self._trial.should_prune():
                return Stop(PRUNED, f"pruned at epoch {epoch} (val {metric} {value:.4g})")
        elif self._trial.study.get_trials(deepcopy=False)[self.number].state.name == "PRUNED":
            return Stop(PRUNED, f"pruned at epoch {epoch}: its trial's first seed was pruned")
        return None


def tell(studies: StudyStore, config: Mapping[str, Any], spec: SearchSpec, summary: Mapping[str, Any]) -> None:
    """Note this seed's outcome on the trial; once every seed of the trial has one, tell the
    study: pruned if any seed was, else the mean objective of the seeds with a result, else
    failed with the first reason. A trial told already (a re-run restored it) is left as is."""
    from sweeplab.integration import upstream  # noqa: PLC0415 - it imports Kedro, which the sweep engine must not

    optuna = optuna_module()
    section = config[SECTION]
    if summary.get("reason", "").startswith(f"{SearchError.__name__}:"):
        raise SearchError(summary["reason"].split(": ", 1)[1])
    value = summary_metrics(summary, *SHOWN).get(spec.objective.metric)
    if has_result(summary["status"]) and value is None:
        metrics = sorted(summary_metrics(summary, *SHOWN))
        raise SearchError(f"{config['sweep']}.search.objective.metric: got {spec.objective.metric!r}; the runs' val "
                          f"metrics are {metrics}")
    study = studies.open(config["sweep"], section["study"], spec, epochs=config["config"]["trainer"]["epochs"])
    frozen = study.get_trials(deepcopy=False)[section["trial"]]
    if frozen.state.is_finished():
        return
    trial = upstream.live_trial(study, section["trial"])
    trial.set_user_attr(f"seed_{config['seed']}", {"status": summary["status"], "reason": summary.get("reason"),
                                                     "value": value if has_result(summary["status"]) else None})
    outcomes = [study.get_trials(deepcopy=False)[section["trial"]].user_attrs.get(f"seed_{s}") for s in section["seeds"]]
    if any(o is None for o in outcomes):
        return
    values = [o["value"] for o in outcomes if o["status"] != PRUNED and o["value"] is not None
              and math.isfinite(o["value"])]
    try:
        if any(o["status"] == PRUNED for o in outcomes):
            study.tell(section["trial"], state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
        elif values:
            study.tell(section["trial"], statistics.fmean(values), skip_if_finished=True)
        else:
            trial.set_user_attr("reason", next(o["reason"] for o in outcomes))
            study.tell(section["trial"], state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
    except RuntimeError as exc:  # the grid's last point: Optuna stores it, then asks to stop an optimize loop
        if "Study.stop" not in str(exc):
            raise


def trial_of(config: Mapping[str, Any]) -> bool:
    """Whether a resolved config is a search trial's (not a re-evaluation's, nor a grid's)."""
    return "trial" in (config.get(SECTION) or {})


def not_reevaluated(config: Mapping[str, Any]) -> str | None:
    """Why a re-evaluation variant has nothing to train, or None."""
    section = config.get(SECTION) or {}
    return section.get("why") if "best_of" in section and section["best_of"] is None else None

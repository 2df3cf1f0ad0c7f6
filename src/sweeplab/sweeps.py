"""Sweeps: a spec in parameters -> variants (condition x seed) -> resolved configs.

A sweep is a top-level parameters entry with a ``family``, and a ``grid``, a list of named
``experiments``, or both::

    ae_sweep:
      family: ae                      # whose defaults the grid overrides (``params:ae``)
      grid:                           # nested keys or dotted keys into the defaults
        model: {latent_space: [none, linear, vq]}
        loss.globals_beta: [0, 1, 10]
      labels: {loss.globals_beta: beta}   # short names for variant names and tables
      seeds: [0]

    vae_configs:
      family: vae
      experiments:                    # name -> overrides of the defaults, each a hypothesis
        conv1d_base: {model.latent_dim: 256, loss.beta_max: 1.0}
        conv1d_512d_beta0: {model.latent_dim: 512, loss.beta_max: 0.0}
      only: null                      # a subset of the experiments ("a b" from --params)

    ae_search:
      family: ae
      search: {space: ..., objective: ..., trials: 30}   # an adaptive search (sweeplab.search)

Variants are experiments x grid x seeds; ``experiment`` is then the first axis of every
condition, a categorical one. Every variant is the family's template pipeline under the
namespace ``<sweep>.<variant>``. Its first node writes the fully resolved config, which is
the one truth about the run.

A search's variants are its trials x seeds (``t000_s0``, ...), and the re-evaluation of its
best trial on fresh seeds (``best_s100``, ...); their condition is the trial. A trial's config
node asks the study for its values (:func:`trial_config`), a re-evaluation's reads the trials'
outcomes (:func:`best_config`).

A spec and the family's defaults in, variants and resolved configs out; only a search's config
nodes touch a file (its study). The Kedro side (the run's parameters, the nodes per variant)
is ``sweeplab.integration``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sweeplab import search
from sweeplab.config import (
    INT64,
    ConfigError,
    closest,
    config_hash,
    from_dict,
    representable,
    to_dict,
)
from sweeplab.errors import shown
from sweeplab.run_records import RETRAIN
from sweeplab.search import BEST, SECTION, TRIAL_AXIS, StudyStore


class FamilyConfig(Protocol):
    """What resolving a variant's config needs of its family (``sweeplab.families.Family``)."""

    name: str
    config_type: type


class SweepError(ConfigError):
    """A sweep spec that cannot be expanded; the message names the sweep and key."""


EXPERIMENT = "experiment"  # the axis of named experiments, in conditions and report tables


@dataclass(frozen=True)
class ResumeSpec:
    """What a re-run does with a variant that other code finished (its code identity differs):
    ``retrain`` it, or ``keep`` its result, which the report then marks."""

    code: Literal["retrain", "keep"] = RETRAIN


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as declared in parameters; checked like every other section."""

    family: str  # whose defaults the grid and experiments override
    grid: dict[str, Any] = field(default_factory=dict)  # nested or dotted keys -> list of values ("a b c" too)
    experiments: dict[str, Any] | None = None  # name -> {nested or dotted key: one value}
    only: Any = None  # the experiments to run: a list, or "a b" from --params; None: all
    title: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # grid key -> short name
    seeds: Any = field(default_factory=lambda: [0])  # integers, or "0 1 2" from --params; checked in ``expand``
    report: dict[str, Any] = field(default_factory=dict)  # checked by the reporting pipeline
    resume: ResumeSpec = field(default_factory=ResumeSpec)
    fail_fast: int | None = None  # K: once the first K variants to finish all failed alike, start no more
    search: dict[str, Any] | None = None  # an adaptive search instead of a grid (checked by sweeplab.search)

    def __post_init__(self) -> None:
        if self.fail_fast is not None and (isinstance(self.fail_fast, bool) or self.fail_fast < 1):
            raise ConfigError(f"fail_fast: got {self.fail_fast!r}; expected a whole number of variants, 1 or more "
                              "(or null: off)")


@dataclass(frozen=True)
class Experiment:
    name: str
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), as written


@dataclass(frozen=True)
class Variant:
    sweep: str
    name: str
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), in grid order
    seed: int
    experiment: Experiment | None = None
    resume_code: str = RETRAIN  # the sweep's resume.code
    fail_fast: int | None = None  # the sweep's fail_fast
    trial: str | None = None  # a search's trial (t003), or "best": its values come from the study
    parallel: int | None = None  # a search's trials in flight at once

    @property
    def condition(self) -> dict[str, Any]:
        """Every sweep parameter except the seed: what reporting groups by."""
        if self.trial is not None:
            return {TRIAL_AXIS: self.trial}
        named = {EXPERIMENT: self.experiment.name} if self.experiment is not None else {}
        return named | dict(self.overrides)

    @property
    def namespace(self) -> str:
        return f"{self.sweep}.{self.name}"


@dataclass(frozen=True)
class Plan:
    """A sweep as planned for a run: its name, condition axes (key -> label) and variants.
    The registry makes it once; the report's nodes receive it instead of expanding the spec."""

    name: str
    axes: dict[str, str]
    variants: list[Variant]


def plan(name: str, spec: Mapping[str, Any]) -> Plan:
    variants = expand(name, spec)  # first: its errors name the sweep's keys
    return Plan(name, sweep_axes(spec), variants)


# ----------------------------------------------------------------------------------------------
# spec -> variants


def flatten_grid(grid: Mapping[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """Nested or dotted grid keys -> {dotted key: list of values}."""
    return {key: parse_values(value, key) for key, value in flatten_keys(grid, prefix).items()}


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested or dotted keys -> {dotted key: leaf}.

    ``--params`` can only write nested keys, so when a dotted YAML key and a nested override
    name the same parameter, the nested one (the override) wins.
    """
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            nested.update(flatten_keys(value, f"{path}."))
        else:
            flat[path] = value
    flat.update(nested)
    return flat


def parse_values(value: Any, where: str) -> list[Any]:
    """A list of values; a string ``"a b c"`` (the ``--params`` form) or a scalar also works."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [parse_token(token) for token in value.split()]
    if value is None or isinstance(value, Mapping):
        raise SweepError(f"{where}: got {value!r}; expected a list of values")
    return [value]


WORDS = {"true": True, "false": False, "null": None, "~": None}  # as YAML reads them ("none" stays a string)


def parse_token(token: str) -> Any:
    """One value of a space-separated list: int, float (``1e-3`` too), bool/null, or string."""
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return WORDS.get(token.lower(), token)


def safe_name(name: str) -> str:
    """A name usable in a namespace (no dots): ``conv1d_beta0.5`` -> ``conv1d_beta0p5``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", re.sub(r"(?<=\d)\.(?=\d)", "p", name))


def named_experiments(sweep: str, spec: SweepSpec, grid: Mapping[str, list[Any]]) -> list[Experiment | None]:
    """The experiments to run (``only`` applied), or ``[None]`` for a grid-only sweep."""
    if spec.experiments is None:
        if spec.only is not None:
            raise SweepError(f"{sweep}.only: got {spec.only!r}, but the sweep lists no 'experiments'")
        return [None]
    if not spec.experiments:
        raise SweepError(f"sweep '{sweep}' expands to zero variants: 'experiments' is empty")
    experiments = []
    for name, overrides in spec.experiments.items():
        where = f"{sweep}.experiments.{name}"
        if not isinstance(overrides, Mapping):
            raise SweepError(f"{where}: got {overrides!r}; expected a mapping of parameter -> value")
        flat = flatten_keys(overrides)
        if clash := sorted(set(flat) & set(grid)):
            raise SweepError(f"{where}.{clash[0]}: also a grid axis; set it in one place")
        experiments.append(Experiment(str(name), tuple(flat.items())))
    if spec.only is not None:
        wanted = [str(name) for name in parse_values(spec.only, f"{sweep}.only")]
        names = [e.name for e in experiments]
        for name in wanted:
            if name not in names:
                close = closest(name, names)
                hint = f"did you mean {close}?" if close else f"expected one of {names}"
                raise SweepError(f"{sweep}.only: no experiment '{name}'; {hint}")
        if not wanted:
            raise SweepError(f"sweep '{sweep}' expands to zero variants: 'only' names no experiment")
        experiments = [e for e in experiments if e.name in wanted]
    return experiments


def checked_grid(sweep: str, grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    try:
        flat = flatten_grid(grid, prefix="")
    except SweepError as exc:
        raise SweepError(f"{sweep}.grid.{exc}") from None
    for key, values in flat.items():
        if not values:
            raise SweepError(f"sweep '{sweep}' expands to zero variants: grid axis '{key}' has no values")
        for i, value in enumerate(values):
            where = f"{sweep}.grid.{key}[{i}]"
            if not isinstance(value, str | int | float | bool | None):
                raise SweepError(f"{where}: got {shown(value)}; expected a single value "
                                 "(a string, number, true/false or null)")
            if isinstance(value, int) and not isinstance(value, bool):
                try:  # a value names its variant: an integer a config can hold, and short enough to print
                    representable(value, where, int)
                except ConfigError as exc:
                    raise SweepError(str(exc)) from None
    return flat


def checked_seeds(sweep: str, seeds: Any) -> list[int]:
    parsed = parse_values(seeds, f"{sweep}.seeds")
    bad = [s for s in parsed if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < INT64]
    if bad:
        raise SweepError(f"{sweep}.seeds: got {shown(bad[0])}; expected non-negative integers below 2^63")
    if len(set(parsed)) != len(parsed):
        raise SweepError(f"{sweep}.seeds: repeated seed in {shown(parsed)}")
    if not parsed:
        raise SweepError(f"sweep '{sweep}' expands to zero variants: 'seeds' is empty")
    return parsed


def expand(sweep: str, spec: Mapping[str, Any]) -> list[Variant]:
    """The variants of one sweep: experiments x the Cartesian product of the grid x seeds, or a
    search's trials x seeds and its re-evaluation."""
    if isinstance(spec, Mapping) and not {"grid", "experiments", "search"} & set(spec):
        raise SweepError(f"{sweep}: a sweep needs a 'grid' mapping, named 'experiments', or both; or a 'search'")
    checked = from_dict(SweepSpec, spec, where=sweep)
    if checked.search is not None:
        return search_variants(sweep, checked)
    grid, seeds = checked_grid(sweep, checked.grid), checked_seeds(sweep, checked.seeds)
    stray = sorted(set(checked.labels) - set(grid))
    if stray:
        raise SweepError(f"{sweep}.labels.{stray[0]}: not a grid axis; axes are {sorted(grid)}")
    labels = checked.labels
    variants = []
    for experiment in named_experiments(sweep, checked, grid):
        for values in itertools.product(*grid.values()):
            overrides = tuple(zip(grid, values, strict=True))
            for seed in seeds:
                name = variant_name(overrides, seed, labels, experiment)
                variants.append(Variant(sweep=sweep, name=name, overrides=overrides, seed=seed,
                                        experiment=experiment, resume_code=checked.resume.code,
                                        fail_fast=checked.fail_fast))
    names = [v.name for v in variants]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        what = "experiments or axes" if checked.experiments is not None else "axes"
        raise SweepError(f"sweep '{sweep}': variant names {clashes} repeat; give the {what} distinct names "
                         "('labels' for axes)")
    return variants


def search_variants(sweep: str, checked: SweepSpec) -> list[Variant]:
    """A search's variants: each trial x the sweep's seeds, then the best trial's re-evaluation."""
    if checked.grid or checked.experiments is not None:
        raise SweepError(f"{sweep}.search: a search chooses its own values; give a sweep a grid or experiments, "
                         "or a search")
    seeds = checked_seeds(sweep, checked.seeds)
    spec = search.checked(sweep, checked.search, seeds)
    common = {"sweep": sweep, "overrides": (), "resume_code": checked.resume.code, "fail_fast": checked.fail_fast,
              "parallel": spec.parallel}
    trials = [Variant(name=f"{trial}_s{seed}", seed=seed, trial=trial, **common)
              for trial in search.trial_names(spec) for seed in seeds]
    return trials + [Variant(name=f"{BEST}_s{seed}", seed=seed, trial=BEST, **common) for seed in spec.reevaluate]


def sweep_axes(spec: Mapping[str, Any]) -> dict[str, str]:
    """A sweep's condition axes, key -> label: ``experiment`` first when it lists experiments;
    a search's one axis is its trial."""
    if spec.get("search") is not None:
        return {TRIAL_AXIS: TRIAL_AXIS}
    labels = spec.get("labels") or {}
    named = {EXPERIMENT: EXPERIMENT} if spec.get("experiments") is not None else {}
    return named | {key: axis_label(key, labels) for key in flatten_grid(spec.get("grid") or {})}


def axis_label(key: str, labels: Mapping[str, str]) -> str:
    return labels.get(key, key.rsplit(".", 1)[-1])


def variant_name(overrides: Iterable[tuple[str, Any]], seed: int, labels: Mapping[str, str],
                 experiment: Experiment | None = None) -> str:
    """A readable, stable name: the experiment's, then the grid values (``vq_beta10_s0``; no dots)."""
    parts = [safe_name(experiment.name)] if experiment is not None else []
    for key, value in overrides:
        label = axis_label(key, labels)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, bool):
            parts.append(f"{label}-{'on' if value else 'off'}")
        elif value is None:
            parts.append(f"{label}-none")
        else:
            parts.append(f"{label}{format_number(value)}")
    parts.append(f"s{seed}")
    return re.sub(r"[^A-Za-z0-9_-]", "-", "_".join(parts))


def format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = repr(float(value))
    return text.replace("-", "m").replace(".", "p").replace("+", "")


# ----------------------------------------------------------------------------------------------
# variant -> resolved config


def set_dotted(config: dict[str, Any], key: str, value: Any, where: str) -> None:
    *parents, leaf = key.split(".")
    node = config
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), dict):
            raise SweepError(f"{where}.{key}: not a parameter ('{'.'.join(parents[: i + 1])}' is not a section "
                             "of the family defaults)")
        node = node[part]
    if leaf not in node:
        close = closest(leaf, node)
        hint = f"; did you mean {'.'.join([*parents, close])}?" if close else ""
        raise SweepError(f"{where}.{key}: not a parameter of the family defaults{hint}")
    node[leaf] = value


def resolve_variant_config(defaults: dict[str, Any], *, family: FamilyConfig, variant: Variant) -> dict[str, Any]:
    """The fully resolved config of one variant: defaults + experiment + grid values + seed, validated."""
    config = copy.deepcopy(defaults)
    # where each override was written, so that an error names the user's key, not the default's
    written: list[tuple[str, Any, str]] = []
    if variant.experiment is not None:
        written += [(k, v, f"{variant.sweep}.experiments.{variant.experiment.name}")
                    for k, v in variant.experiment.overrides]
    source = f"{variant.sweep}.search.space" if variant.trial is not None else f"{variant.sweep}.grid"
    written += [(k, v, source) for k, v in variant.overrides]
    for key, value, where in written:
        set_dotted(config, key, value, where=where)
    try:
        typed = from_dict(family.config_type, config, where=family.name)
    except ConfigError as exc:
        message = str(exc)
        for key, _, where in written:
            if message.startswith(f"{family.name}.{key}:"):
                raise SweepError(f"{where}.{message.removeprefix(family.name + '.')}") from None
        raise SweepError(f"{variant.namespace}: {message}") from None
    return _for_variant(family, variant, to_dict(typed))


def _for_variant(family: FamilyConfig, variant: Variant, resolved: dict[str, Any]) -> dict[str, Any]:
    return {
        "sweep": variant.sweep,
        "variant": variant.name,
        "family": family.name,
        "condition": variant.condition,
        "seed": variant.seed,
        "config_hash": config_hash({"family": family.name, "seed": variant.seed, "config": resolved}),
        "config": resolved,
        # how this run resumes, and when its sweep stops starting runs: not part of what it computes
        "resume": {"code": variant.resume_code},
        "fail_fast": variant.fail_fast,
    }


def resolve_variant_configs(defaults: dict[str, Any], *, family: FamilyConfig, variants: Iterable[Variant]
                            ) -> list[dict[str, Any]]:
    """``resolve_variant_config`` of many variants; a condition's config is resolved and
    checked once, and its seeds, which differ from it only in the seed, share it."""
    by_condition: dict[Any, dict[str, Any]] = {}
    configs = []
    for variant in variants:
        key = (variant.experiment and variant.experiment.name, variant.overrides)
        if key not in by_condition:
            by_condition[key] = resolve_variant_config(defaults, family=family, variant=variant)["config"]
        configs.append(_for_variant(family, variant, by_condition[key]))
    return configs


# ----------------------------------------------------------------------------------------------
# a search's variants -> resolved configs


def check_space(defaults: dict[str, Any], family: FamilyConfig, sweep: str, spec: Mapping[str, Any]) -> None:
    """Every value a search may choose fits the family's config: each key's bounds and choices,
    resolved as a trial's would be (the other keys at their first bound)."""
    checked, _ = search_of(sweep, spec)
    corners = {key: param.corners() for key, param in checked.params.items()}
    base = {key: values[0] for key, values in corners.items()}
    probe = Variant(sweep=sweep, name="check", overrides=(), seed=0, trial="check")
    for key, values in corners.items():
        for value in values:
            chosen = dataclasses.replace(probe, overrides=tuple((base | {key: value}).items()))
            resolve_variant_config(defaults, family=family, variant=chosen)


def search_of(sweep: str, sweep_spec: Mapping[str, Any]) -> tuple[search.SearchSpec, list[int]]:
    """A search sweep's checked ``search:`` section and its trial seeds."""
    seeds = checked_seeds(sweep, sweep_spec.get("seeds", [0]))
    return search.checked(sweep, sweep_spec["search"], seeds), seeds


def study_of(defaults: Mapping[str, Any], sweep_spec: Mapping[str, Any], sweep: str, code: str
             ) -> tuple[search.SearchSpec, list[int], str]:
    """A search's checked spec, its trial seeds, and its study's key."""
    spec, seeds = search_of(sweep, sweep_spec)
    return spec, seeds, search.study_key(spec, defaults, seeds, code)


def _with_values(defaults: dict[str, Any], family: FamilyConfig, variant: Variant, values: Mapping[str, Any],
                 search_section: dict[str, Any]) -> dict[str, Any]:
    chosen = dataclasses.replace(variant, overrides=tuple(values.items()))
    config = resolve_variant_config(defaults, family=family, variant=chosen)
    # the trial's values belong to its condition: the report reads them from the run record
    return {**config, "condition": {**variant.condition, **values}, SECTION: search_section}


def asked_after(variant: Variant, trials: list[Variant]) -> Variant | None:
    """The trial run whose outcome trial k's config node waits for: the first seed of trial
    k - ``parallel``. So under any runner (Kedro's orders nodes by their inputs alone) at most
    ``parallel`` trials are asked before the results of those before them are told, and the
    sampler learns from every result but the last ``parallel - 1``."""
    names = list(dict.fromkeys(v.trial for v in trials))
    k = names.index(variant.trial)
    parallel = variant.parallel or 1
    return next(v for v in trials if v.trial == names[k - parallel]) if k >= parallel else None


def trial_config(defaults: dict[str, Any], studies: StudyStore, sweep_spec: dict[str, Any],
                 after: dict[str, Any] | None = None, *, family: Any, variant: Variant) -> dict[str, Any]:
    """Node: a trial's resolved config, with the values the study gives its trial. ``after``:
    the outcome of the trial it waits for (``asked_after``), read for its order alone."""
    spec, seeds, key = study_of(defaults, sweep_spec, variant.sweep, family.code_identity().digest)
    number, values = search.ask(studies, variant.sweep, key, spec, variant.trial, epochs=defaults["trainer"]["epochs"])
    return _with_values(defaults, family, variant, values,
                        {"study": key, "trial": number, "values": values, "seeds": seeds})


def best_config(defaults: dict[str, Any], sweep_spec: dict[str, Any], *, family: Any, variant: Variant,
                **outcomes: dict[str, Any]) -> dict[str, Any]:
    """Node: a re-evaluation's config, with the values of the best trial as the trials'
    outcomes say (read after every trial has ended). With no trial to take, it is not trained."""
    spec, _ = search_of(variant.sweep, sweep_spec)
    found = search.best_trial(spec, outcomes)
    if found is None:
        return {**resolve_variant_config(defaults, family=family, variant=variant),
                SECTION: {"best_of": None, "why": f"no trial of {variant.sweep} gave a result to re-evaluate"}}
    trial, mean = found
    values = next(o["condition"] for o in outcomes.values() if (o.get("condition") or {}).get(TRIAL_AXIS) == trial)
    values = {k: v for k, v in values.items() if k != TRIAL_AXIS}
    return _with_values(defaults, family, variant, values, {"best_of": trial, "objective": mean, "values": values})


def find_sweeps(params: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every top-level parameters entry that declares a sweep (names a ``family``)."""
    return {name: spec for name, spec in params.items() if isinstance(spec, Mapping) and "family" in spec}

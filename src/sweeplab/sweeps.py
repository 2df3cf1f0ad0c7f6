"""Sweeps: a spec in parameters -> variants (condition x seed) -> namespaced pipelines.

A sweep is a top-level parameters entry with a ``family`` and a ``grid``::

    ae_sweep:
      family: ae                      # whose defaults the grid overrides (``params:ae``)
      grid:                           # nested keys or dotted keys into the defaults
        model: {latent_space: [none, linear, vq]}
        loss.globals_beta: [0, 1, 10]
      labels: {loss.globals_beta: beta}   # short names for variant names and tables
      seeds: [0]

Every variant is the family's template pipeline under the namespace ``<sweep>.<variant>``.
Its first node writes the fully resolved config, which is the one truth about the run.

Kedro gives ``register_pipelines`` no config loader, so :class:`sweeplab.hooks.SweepConfigHook`
hands this module the parameters of the session being run (``--env``, ``--conf-source``,
``--params`` included) before the pipelines are built.
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.pipeline import Node, Pipeline

from sweeplab.config import ConfigError, closest, config_hash, from_dict, to_dict

logger = logging.getLogger(__name__)


class SweepError(ConfigError):
    """A sweep spec that cannot be expanded; the message names the sweep and key."""


CHECKPOINT_STORE = "checkpoint_store"  # one store for every variant of every sweep: never namespaced


@dataclass(frozen=True)
class Family:
    """What a model family gives the sweep machinery."""

    name: str  # its defaults live in ``params:<name>``
    config_type: type  # the typed config its nodes build from the resolved dict
    template: Callable[[], Pipeline]  # per-variant nodes; reads ``config`` first
    data_prep: Callable[[Mapping[str, Any]], Pipeline]  # run parameters -> shared input nodes
    shared_inputs: frozenset[str] = field(default_factory=frozenset)  # not namespaced, beside CHECKPOINT_STORE
    data_sections: Mapping[str, type] = field(default_factory=dict)  # parameters its data prep reads -> config type


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as declared in parameters; checked like every other section."""

    family: str  # whose defaults the grid overrides
    grid: dict[str, Any]  # nested or dotted keys -> list of values (or "a b c" from --params)
    title: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # grid key -> short name
    seeds: Any = field(default_factory=lambda: [0])  # integers, or "0 1 2" from --params; checked in ``expand``
    report: dict[str, Any] = field(default_factory=dict)  # checked by the reporting pipeline


@dataclass(frozen=True)
class Variant:
    sweep: str
    name: str
    overrides: tuple[tuple[str, Any], ...]  # (dotted key, value), in grid order
    seed: int

    @property
    def condition(self) -> dict[str, Any]:
        """Every sweep parameter except the seed: what reporting groups by."""
        return dict(self.overrides)

    @property
    def namespace(self) -> str:
        return f"{self.sweep}.{self.name}"


# ----------------------------------------------------------------------------------------------
# spec -> variants


def flatten_grid(grid: Mapping[str, Any], prefix: str = "") -> dict[str, list[Any]]:
    """Nested or dotted grid keys -> {dotted key: list of values}.

    ``--params`` can only write nested keys, so when a dotted YAML key and a nested override
    name the same parameter, the nested one (the override) wins.
    """
    flat: dict[str, list[Any]] = {}
    nested: dict[str, list[Any]] = {}
    for key, value in grid.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            nested.update(flatten_grid(value, f"{path}."))
        else:
            flat[path] = parse_values(value, path)
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


def expand(sweep: str, spec: Mapping[str, Any]) -> list[Variant]:
    """The variants of one sweep: the Cartesian product of the grid, times the seeds."""
    if isinstance(spec, Mapping) and "grid" not in spec:
        raise SweepError(f"{sweep}.grid: missing required key; a sweep needs a 'grid' mapping")
    checked = from_dict(SweepSpec, spec, where=sweep)
    try:
        grid = flatten_grid(checked.grid, prefix="")
    except SweepError as exc:
        raise SweepError(f"{sweep}.grid.{exc}") from None
    seeds = parse_values(checked.seeds, f"{sweep}.seeds")
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or s < 0]
    if bad:
        raise SweepError(f"{sweep}.seeds: got {bad[0]!r}; expected non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"{sweep}.seeds: repeated seed in {seeds!r}")
    for key, values in grid.items():
        for i, value in enumerate(values):
            if not isinstance(value, str | int | float | bool | None):
                raise SweepError(f"{sweep}.grid.{key}[{i}]: got {value!r}; expected a single value "
                                 "(a string, number, true/false or null)")
    empty = [key for key, values in grid.items() if not values]
    if empty or not seeds:
        what = f"grid axis '{empty[0]}' has no values" if empty else "'seeds' is empty"
        raise SweepError(f"sweep '{sweep}' expands to zero variants: {what}")
    stray = sorted(set(checked.labels) - set(grid))
    if stray:
        raise SweepError(f"{sweep}.labels.{stray[0]}: not a grid axis; axes are {sorted(grid)}")
    labels = checked.labels
    variants = []
    for values in itertools.product(*grid.values()):
        overrides = tuple(zip(grid, values, strict=True))
        for seed in seeds:
            name = variant_name(overrides, seed, labels)
            variants.append(Variant(sweep=sweep, name=name, overrides=overrides, seed=seed))
    names = [v.name for v in variants]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise SweepError(
            f"sweep '{sweep}': variant names {clashes} repeat; give the axes distinct 'labels'"
        )
    return variants


def axis_label(key: str, labels: Mapping[str, str]) -> str:
    return labels.get(key, key.rsplit(".", 1)[-1])


def variant_name(overrides: Iterable[tuple[str, Any]], seed: int, labels: Mapping[str, str]) -> str:
    """A readable, stable name from the grid values: ``vq_beta10_s0`` (no dots)."""
    parts = []
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


def resolve_variant_config(defaults: dict[str, Any], *, family: Family, variant: Variant) -> dict[str, Any]:
    """The fully resolved config of one variant: defaults + grid values + seed, validated."""
    config = copy.deepcopy(defaults)
    for key, value in variant.overrides:
        set_dotted(config, key, value, where=f"{variant.sweep}.grid")
    try:
        typed = from_dict(family.config_type, config, where=family.name)
    except ConfigError as exc:
        # a grid value is named where the user wrote it, not in the defaults it overrides
        message = str(exc)
        for key, _ in variant.overrides:
            if message.startswith(f"{family.name}.{key}:"):
                raise SweepError(f"{variant.sweep}.grid.{message.removeprefix(family.name + '.')}") from None
        raise SweepError(f"{variant.namespace}: {message}") from None
    resolved = to_dict(typed)
    return {
        "sweep": variant.sweep,
        "variant": variant.name,
        "family": family.name,
        "condition": variant.condition,
        "seed": variant.seed,
        "config_hash": config_hash({"family": family.name, "seed": variant.seed, "config": resolved}),
        "config": resolved,
    }


# ----------------------------------------------------------------------------------------------
# variants -> pipelines


def variant_nodes(family: Family, variants: list[Variant]) -> list[Node]:
    """The family's template once per variant, each under the namespace ``<sweep>.<variant>``.

    The template is built once and its nodes copied per variant, as Kedro's own namespacing
    does (``Node._copy``), but without a ``Pipeline`` per variant: joining a thousand of those
    costs seconds where the nodes alone cost milliseconds.
    """
    template = family.template()
    shared = set(family.shared_inputs) | ({CHECKPOINT_STORE} & template.inputs()) | {f"params:{family.name}"}
    nodes = []
    for variant in variants:
        namespace = variant.namespace

        def scoped(names: Any, namespace: str = namespace) -> Any:
            if names is None:
                return None
            if isinstance(names, str):
                return names if names in shared or names.startswith("params:") else f"{namespace}.{names}"
            if isinstance(names, dict):
                return {key: scoped(name) for key, name in names.items()}
            return [scoped(name) for name in names]

        resolve_this = functools.update_wrapper(
            functools.partial(resolve_variant_config, family=family, variant=variant), resolve_variant_config
        )
        nodes.append(Node(resolve_this, inputs=f"params:{family.name}", outputs=f"{namespace}.config",
                          name="resolve_config", tags=["config"], namespace=namespace))
        nodes.extend(node._copy(inputs=scoped(node._inputs), outputs=scoped(node._outputs), namespace=namespace)  # noqa: SLF001
                     for node in template.nodes)
    return nodes


def find_sweeps(params: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every top-level parameters entry that declares a sweep (names a ``family``)."""
    return {name: spec for name, spec in params.items() if isinstance(spec, Mapping) and "family" in spec}


# ----------------------------------------------------------------------------------------------
# the parameters the run sees

_run_parameters: dict[str, Any] | None = None


def set_run_parameters(params: dict[str, Any]) -> bool:
    """Record the session's parameters; True when they differ from the last ones."""
    global _run_parameters  # noqa: PLW0603 - one process builds pipelines for one session at a time
    changed = params != _run_parameters
    _run_parameters = copy.deepcopy(params)
    return changed


def run_parameters() -> dict[str, Any]:
    """The parameters of the current session, or, outside a session, of the project's conf."""
    if _run_parameters is not None:
        return _run_parameters
    # the project's own settings (its merge strategy), even if Kedro has not been configured;
    # imported here because settings -> hooks -> this module
    from sweeplab import settings  # noqa: PLC0415

    conf_source = Path.cwd() / "conf"
    logger.info("No Kedro session recorded its parameters; reading %s", conf_source)
    loader = OmegaConfigLoader(
        conf_source=str(conf_source), env=os.environ.get("KEDRO_ENV"), **settings.CONFIG_LOADER_ARGS
    )
    return dict(loader["parameters"])

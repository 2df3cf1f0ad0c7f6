"""One check of every section of parameters a user writes, before any node runs.

The sections are the data sections the families' data prep reads (``events``, ``shapes``,
``cnc``, ...), each family's defaults (``ae``, ``gw``, ...), every sweep spec with its
``report:``, and the project's own optional settings (``tracking``). Each goes through the
same typed configs (``sweeplab.config``), so that an unknown key, a wrong type or a value out
of range stops the run naming its full key, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeplab.config import ConfigError, closest, from_dict
from sweeplab.errors import shown
from sweeplab.families import Family
from sweeplab.pipelines.reporting.nodes import check_report
from sweeplab.sweeps import Plan, check_space, find_sweeps, plan, resolve_variant_config


def check_parameters(params: Mapping[str, Any], families: Mapping[str, Family], *, only: set[str] | None = None,
                     settings: Mapping[str, type] | None = None) -> dict[str, tuple[Family, Plan]]:
    """Check every section; return each sweep's family and plan (its axes and variants).

    ``only``: the sweeps to expand (every variant's config resolved and checked); the others
    are not planned. None: all of them. ``settings``: the project's own optional sections
    (name -> config type), each checked when present.
    """
    settings = settings or {}
    data_sections = {name: kind for family in families.values() for name, kind in family.data_sections.items()}
    specs = find_sweeps(params)
    known = [*data_sections, *families, *specs, *settings]
    for key in params:
        if key not in known:
            close = closest(str(key), known)
            hint = f"did you mean {close}?" if close else f"expected one of {sorted(known)}"
            raise ConfigError(f"{key}: unknown parameters section; {hint}")
    for name, kind in [*data_sections.items(), *((f.name, f.config_type) for f in families.values())]:
        if name not in params:
            raise ConfigError(f"{name}: missing parameters section")
        from_dict(kind, params[name], where=name)
    for name, kind in settings.items():
        if name in params:
            from_dict(kind, params[name] or {}, where=name)
    planned = {}
    for name, spec in specs.items():  # every sweep names a family; only the planned ones are expanded
        family = families.get(spec["family"]) if isinstance(spec["family"], str) else None
        if family is None:
            raise ConfigError(f"{name}.family: got {shown(spec['family'])}; expected one of {sorted(families)}")
        if only is not None and name not in only:
            continue
        family.check()
        sweep = plan(name, spec)
        if spec.get("search") is not None:  # the values a trial may take, at their bounds
            check_space(params[family.name], family, name, spec)
        # a config is checked once per condition: the seeds of one condition differ only in the seed
        for variant in {(v.experiment and v.experiment.name, v.overrides): v for v in sweep.variants
                        if v.trial is None}.values():
            resolve_variant_config(params[family.name], family=family, variant=variant)
        check_report(spec, sweep)
        planned[name] = (family, sweep)
    return planned

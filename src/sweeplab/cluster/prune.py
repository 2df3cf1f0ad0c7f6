"""``sweeplab prune <sweep> --keep N``: remove a sweep's older versions, never a referenced one.

Every run of a sweep saves a new version of each output. Kept are, per dataset, its N newest
versions, and also:
- for each kept report, the run records it read: a report loads, per variant, the newest
  summary and history at the time it ran (the ones saved no later than the report);
- for each kept run record (summary), the rest of that run: the config, weights, history and
  figures saved in the same session, which share its version.
A report made with ``--load-versions`` pointing further back is not known to refer to older
records; keep more versions for it. Unchanged files that were linked rather than copied
(see ``sweeplab.datasets._files.atomic_path``) stay whole in the versions kept.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sweeplab.cluster.state import OpenSweep
from sweeplab.integration import upstream
from sweeplab.integration.registry import variant_nodes
from sweeplab.pipelines.reporting import pipeline as reporting_pipeline


@dataclass(frozen=True)
class Removal:
    dataset: str
    folder: Path
    freed: int  # bytes no other version still links to


def _freed(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.stat().st_nlink == 1)


def plan_prune(opened: OpenSweep, keep: int) -> list[Removal]:
    """What ``prune --keep`` removes, without removing it."""
    nodes = variant_nodes(opened.family, opened.variants)
    report_nodes = reporting_pipeline.create_pipeline(opened.plan).nodes
    found = {}
    for name in sorted({out for node in [*nodes, *report_nodes] for out in node.outputs}):
        listed = upstream.saved_versions(opened.catalog.get(name))
        if listed is not None and listed[1]:
            found[name] = listed

    kept: dict[str, set[str]] = {name: set(names[-keep:]) for name, (_, names) in found.items()}
    reports = sorted({v for name, (_, names) in found.items() if name.startswith(f"{opened.name}_report.")
                      for v in kept[name]})
    for variant in opened.variants:
        records = {f"{variant.namespace}.{kind}" for kind in ("summary", "history")} & set(found)
        for name in records:  # what each kept report read
            names = found[name][1]
            kept[name] |= {max((v for v in names if v <= report), default=None) for report in reports} - {None}
        runs = set().union(*(kept[name] for name in records)) if records else set()
        for name in found:  # the rest of each kept run
            if name.startswith(f"{variant.namespace}."):
                kept[name] |= runs & set(found[name][1])

    removals = []
    for name, (base, names) in found.items():
        for version in names:
            if version not in kept[name]:
                removals.append(Removal(name, base / version, _freed(base / version)))
    return removals


def remove(removals: list[Removal]) -> None:
    for removal in removals:
        shutil.rmtree(removal.folder)


def by_dataset(removals: list[Removal]) -> dict[str, list[Removal]]:
    grouped = defaultdict(list)
    for removal in removals:
        grouped[removal.dataset].append(removal)
    return grouped

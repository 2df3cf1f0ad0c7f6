"""The one wall between the sweep engine and Kedro: hooks, runners, the registry's work, the
run's session state, ``--params`` reading, tracking, log filters and kedro-viz's tree.

Only this package reaches into Kedro's or kedro-viz's private API (ruff's ``SLF`` rule keeps
it so); each point it relies on is listed in ``tests/test_upstream_contract.py`` with the file
to revisit when an upgrade moves it. The engine (sweeps, families, configs, training,
reporting, the pipelines' nodes) uses Kedro's public API only.
"""

"""The throwaway Slurm of the real-Slurm tests leaves nothing running: each daemon it started
is stopped, and a munge daemon the machine already ran is left as it was."""

from __future__ import annotations

import os

import pytest

from tests.cluster.slurm import Cluster, missing, munged_running


def test_the_test_cluster_stops_every_daemon_it_started(tmp_path):
    if reason := missing():
        pytest.skip(reason)
    before = munged_running()
    cluster = Cluster(tmp_path)
    cluster.start()
    assert munged_running() and cluster.pids
    cluster.stop()
    assert munged_running() == before
    for pid in cluster.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

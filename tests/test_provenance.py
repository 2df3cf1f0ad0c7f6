"""A report's provenance: the code's version, the command, and its way through the catalog."""

import pickle
import subprocess

from sweeplab import __version__, provenance
from sweeplab.datasets.provenance import RunProvenanceDataset


def test_code_version_is_the_git_commit_with_a_dirty_flag_else_the_package_version(tmp_path):
    assert provenance.code_version(tmp_path)["code_version"].startswith(f"sweeplab {__version__}")
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("commit", "-qm", "a")
    commit = git("rev-parse", "HEAD")
    clean = provenance.code_version(tmp_path)
    assert (clean["git_commit"], clean["git_dirty"], clean["code_version"]) == (commit, False, f"git {commit[:12]}")
    (tmp_path / "a.txt").write_text("b")
    assert provenance.code_version(tmp_path)["code_version"] == f"git {commit[:12]}-dirty"


def test_collect_reads_kedro_run_params():
    got = provenance.collect({"runtime_params": {"ae_sweep": {"seeds": [0]}, "ae": {"trainer": {"epochs": 2}}},
                              "pipeline_names": ["ae_sweep"], "env": None, "runner": "<x.Runner object at 0x1>"})
    assert got["params"] == ["ae_sweep.seeds=[0]", "ae.trainer.epochs=2"]
    assert (got["pipelines"], got["runner"], got["env"]) == (["ae_sweep"], "x.Runner", "local (the default)")
    assert got["date"].endswith("Z") and got["command"]


def test_the_dataset_carries_what_the_hook_saved_to_another_process():
    dataset = RunProvenanceDataset()
    assert dataset.load()["command"], "without the hook: what the process knows"
    dataset.save({"command": "kedro run", "params": ["a=1"]})
    copied = pickle.loads(pickle.dumps(dataset))  # as ParallelRunner hands it to a worker
    assert copied.load() == {"command": "kedro run", "params": ["a=1"]}

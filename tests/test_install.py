"""The two installs the README gives resolve as it says: the CPU one to torch's CPU build and no
CUDA package, the plain one (PyPI's Linux wheel) to the CUDA build. Resolved with pip's
``--dry-run --report``: nothing is downloaded beyond metadata, nothing installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
CUDA = re.compile(r"^(nvidia-.*|triton)$")


def resolved(tmp_path, *args: str) -> dict[str, str]:
    """Package -> version that ``pip install <args>`` would install into an empty environment."""
    report = tmp_path / "report.json"
    # --retries 0: where PyTorch's index cannot be reached, each lookup fails once and pip goes on
    # with the other indexes and wheel folders it is configured with
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--retries", "0", "--report", str(report), *args],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return {p["metadata"]["name"].lower(): p["metadata"]["version"] for p in json.loads(report.read_text())["install"]}


def torch_pin() -> str:
    return re.search(r'"(torch==[^"]+)"', (REPO / "pyproject.toml").read_text())[1]


@pytest.mark.skipif(sys.platform not in ("linux", "win32"), reason="the +cpu builds are Linux's and Windows'")
def test_the_cpu_install_resolves_to_torchs_cpu_build_without_cuda(tmp_path):
    found = resolved(tmp_path, "-r", "requirements-cpu.txt", "-e", ".[test]")
    assert found["torch"] == torch_pin().removeprefix("torch==") + "+cpu"
    assert sorted(name for name in found if CUDA.match(name)) == []
    assert {"kedro", "optuna", "mlflow", "pytest"} <= set(found), "the project and its test extras"


def test_the_plain_install_from_pypi_is_the_cuda_build(tmp_path):
    try:
        urllib.request.urlopen("https://pypi.org/simple/torch/", timeout=10).close()
    except OSError as exc:
        pytest.skip(f"PyPI cannot be reached: {exc}")
    if sys.platform != "linux":
        pytest.skip("PyPI's CUDA builds are Linux's")
    # --isolated: PyPI alone, not the wheel folders this machine's pip is configured with
    found = resolved(tmp_path, "--isolated", "--index-url", "https://pypi.org/simple", torch_pin())
    cuda = sorted(name for name in found if CUDA.match(name))
    assert "triton" in cuda and any(name.startswith("nvidia-cudnn") for name in cuda), cuda

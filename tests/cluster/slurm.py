"""A throwaway single-node Slurm cluster, run as root on this machine, for the tests.

Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` packages (``.ci/run``
installs them). The cluster's state, spool and logs live in one temporary folder; the
daemons are stopped afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "mungekey")
SLURM_CONF = """\
ClusterName=sweeplabtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
MaxArraySize=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
NodeName=localhost CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> str | None:
    """Why a cluster cannot start here, or None."""
    absent = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} not found); .ci/run installs it with apt-get"
    if os.geteuid() != 0:
        return "the throwaway Slurm cluster runs its daemons as root"
    return None


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: list[int] = []
        self.started_munged = False

    def start(self, timeout: float = 60) -> None:
        for sub in ("state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(SLURM_CONF.format(root=self.root, cpus=os.cpu_count() or 1))
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create"], check=True)
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        self.started_munged = not munged_running()  # one the machine runs stays; ours is stopped after
        if self.started_munged:
            subprocess.run(["munged", "--force"], check=True)
        self._daemon(["slurmctld", "-D", "-f", str(self.conf)])
        self._daemon(["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True, check=False)
            if state.stdout.strip() == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Slurm node did not come up: {(self.root / 'slurmctld.log').read_text()[-2000:]}")

    def _daemon(self, args: list[str]) -> None:
        log = (self.root / f"{args[0]}.out").open("w")
        self.pids.append(subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT).pid)

    def job_states(self) -> dict[str, str]:
        """Job id (``123`` or ``123_4`` for an array task) -> state, from the jobcomp file (the
        ended jobs, without Slurm's accounting database) and, for what never started (a pending
        task cancelled leaves no jobcomp line), the controller's memory of recent jobs."""
        path = self.root / "jobcomp.txt"
        queue = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i %T"], env=self.env,
                               capture_output=True, text=True, check=False)
        states = {}
        for job, state in (line.split() for line in queue.stdout.splitlines() if len(line.split()) == 2):
            # pending tasks cancelled together stay one record: 12_[2-4]
            found = re.fullmatch(r"(\d+)_\[(\d+)-(\d+)\]", job)
            for task in ([f"{found[1]}_{i}" for i in range(int(found[2]), int(found[3]) + 1)] if found else [job]):
                states[task] = state
        for line in path.read_text().splitlines() if path.exists() else []:
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            job = fields["JobId"]
            if fields.get("ArrayJobId") and fields.get("ArrayTaskId") not in (None, "4294967294"):
                job = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"
            states[job] = fields["JobState"]
        return states

    def show_job(self, job: str) -> str:
        return subprocess.run(["scontrol", "show", "job", job], env=self.env, capture_output=True, text=True,
                              check=False).stdout

    def wait_idle(self, timeout: float) -> None:
        """Until no job is pending or running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=self.env, capture_output=True, text=True, check=False)
            if queue.returncode == 0 and not queue.stdout.strip():
                return
            time.sleep(1)
        raise TimeoutError(f"jobs still queued after {timeout} s: {queue.stdout}")

    def stop(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.started_munged:
            subprocess.run(["munged", "--stop"], check=False, capture_output=True)


def munged_running() -> bool:
    """Whether a munge daemon holds the default pid file (``munged --help``: /run/munge/munged.pid)."""
    try:
        os.kill(int(Path("/run/munge/munged.pid").read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True

"""A throwaway single-node SLURM cluster on localhost, for the SLURM integration test.

``SlurmCluster.start()`` starts, by hand and without systemd, munged (unless one already
answers), mariadbd (private data folder and port), slurmdbd, slurmctld and slurmd; the
node gets this machine's CPUs and 80% of its memory, two fake GPUs (gres ``gpu`` backed by
/dev/null and /dev/zero), and sits in two partitions, ``cpu`` (the default) and ``gpu``;
one account holds root. ``stop()`` cancels what is still queued, stops every daemon it
started by its process id and removes the configuration files it wrote.

Facts this relies on (Debian 12, Slurm 22.05, snakemake-executor-plugin-slurm 2.8):

- The configuration must sit at /etc/slurm: the plugin's job step drops SLURM_* variables
  (SLURM_CONF among them) before its inner ``srun``, which then reads the default path.
- The plugin asks ``sacct`` for job states whenever the command exists; without accounting
  those queries fail quietly and Snakemake waits forever, hence slurmdbd and MariaDB.
- A gres.conf line without ``File=`` is dropped and the node drains; a line per GPU with
  ``File=/dev/null`` (or another device file) gives GPUs that schedule; jobs then find no
  CUDA device and train on the CPU.
- Without ``DefMemPerCPU`` a job that gives no ``--mem`` takes all of the node's memory.
- slurmctld looks for jobs past their time limit every 30 s; with ``OverTimeLimit=0`` and
  ``KillWait=5`` a job with a 1-minute limit ends as TIMEOUT 60 to 90 s after it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

CONF_DIR = Path("/etc/slurm")
CONFIG_FILES = ("slurm.conf", "gres.conf", "slurmdbd.conf")
MARKER = "# Written by tests/slurm_cluster.py for a throwaway test cluster; removed when it stops."
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
COMMANDS = (
    "munged", "munge", "mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin",
    "slurmdbd", "slurmctld", "slurmd", "sbatch", "srun", "sacct", "sacctmgr", "scontrol",
    "sinfo", "squeue", "scancel",
)
INSTALL_HINT = "apt-get install slurm-wlm munge slurmdbd mariadb-server"
FAKE_GPU_FILES = ("/dev/null", "/dev/zero")  # two GPUs, so two training jobs can run at once
START_TIMEOUT = 60.0  # seconds for each daemon to come up


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be started on this machine; the message says why."""


def command(name: str) -> str:
    """Absolute path of ``name`` (sbin folders included)."""
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise SlurmUnavailable(f"command {name!r} not found (install: {INSTALL_HINT})")
    return path


def run(*args: str, timeout: float = 30.0) -> str:
    """Run a command to completion and return its stdout; SlurmUnavailable when it fails."""
    try:
        proc = subprocess.run([command(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise SlurmUnavailable(f"{' '.join(args)} did not finish within {timeout:.0f} s") from err
    if proc.returncode != 0:
        raise SlurmUnavailable(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def output(*args: str, timeout: float = 10.0) -> str | None:
    """stdout of a command, or None when it fails (a readiness probe)."""
    try:
        return run(*args, timeout=timeout)
    except SlurmUnavailable:
        return None


def succeeds(*args: str, timeout: float = 10.0) -> bool:
    """Whether a command exits with 0 (a readiness probe)."""
    return output(*args, timeout=timeout) is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_prerequisite() -> str | None:
    """Why this machine cannot host the test cluster, or None when it can (nothing is started)."""
    if os.geteuid() != 0:
        return "needs root (starts the SLURM daemons and writes /etc/slurm)"
    missing = [name for name in COMMANDS if shutil.which(name, path=SEARCH_PATH) is None]
    if missing:
        return f"missing commands: {', '.join(missing)} (install: {INSTALL_HINT})"
    if os.environ.get("SLURM_CONF", str(CONF_DIR / "slurm.conf")) != str(CONF_DIR / "slurm.conf"):
        return f"SLURM_CONF points at another cluster ({os.environ['SLURM_CONF']})"
    if not MUNGE_KEY.exists():
        return f"no munge key at {MUNGE_KEY} (the munge package creates it)"
    for name in CONFIG_FILES:
        path = CONF_DIR / name
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            return f"{path} exists and was not written by this test: not overwriting a real SLURM setup"
    return None


@dataclass(frozen=True)
class Node:
    """The one compute node: this machine."""

    name: str
    cpus: int
    memory_mb: int

    @classmethod
    def this_machine(cls) -> Node:
        """Short host name, the CPUs this process may use (as nproc counts them), 80% of the memory."""
        total_kb = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        return cls(socket.gethostname().split(".")[0], len(os.sched_getaffinity(0)), total_kb * 8 // 10 // 1024)


@dataclass
class Daemon:
    """A daemon this harness started in the foreground, so that its process id is its own."""

    name: str
    process: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def wait_for(what: str, ready: Callable[[], bool], daemon: Daemon | None = None, timeout: float = START_TIMEOUT) -> None:
    """Poll ``ready`` until it holds; SlurmUnavailable when ``daemon`` dies or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if daemon is not None and not daemon.alive():
            raise SlurmUnavailable(
                f"{daemon.name} exited ({daemon.process.returncode}) before {what}; its log ends:\n{daemon.log_tail()}"
            )
        if time.monotonic() > deadline:
            tail = f"; {daemon.name}'s log ends:\n{daemon.log_tail()}" if daemon else ""
            raise SlurmUnavailable(f"no {what} after {timeout:.0f} s{tail}")
        time.sleep(0.3)


class SlurmCluster:
    """One node on localhost with a ``cpu`` and a ``gpu`` partition, two fake GPUs and job accounting."""

    name = "ltbench"
    cpu_partition = "cpu"
    gpu_partition = "gpu"
    account = "ltbench_test"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.node = Node.this_machine()
        self.ports = {name: free_port() for name in ("mariadb", "slurmdbd", "slurmctld", "slurmd")}
        self.db_password = secrets.token_hex(8)
        self.daemons: list[Daemon] = []
        self.written: list[Path] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Bring every daemon up and wait for an idle node; on any failure stop what started and raise."""
        reason = missing_prerequisite()
        if reason:
            raise SlurmUnavailable(reason)
        try:
            self._start_munge()
            self._start_mariadb()
            self._write_configs()
            self._start_slurmdbd()
            self._add_accounts()
            self._start_slurmctld()
            self._start_slurmd()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Cancel remaining jobs, stop the daemons started here (newest first), remove the config files."""
        try:
            self._cancel_jobs()
        finally:
            for daemon in reversed(self.daemons):
                daemon.stop()
            self.daemons.clear()
            for path in self.written:
                path.unlink(missing_ok=True)
            self.written.clear()

    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- queries ---------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, str]]:
        """Every job of this cluster as ``sacct`` records it (allocations only, one dict per job)."""
        fields = ("JobID", "Partition", "Account", "State", "Timelimit", "AllocTRES", "Comment")
        out = run("sacct", "--allusers", "--allocations", "--noheader", "--parsable2", "--starttime=2000-01-01",
                  f"--format={','.join(fields)}")
        return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line.strip()]

    # -- steps -----------------------------------------------------------------------------

    def _spawn(self, name: str, *args: str, **popen) -> Daemon:
        """Start a foreground daemon with stdout and stderr to ``<workdir>/<name>.log``."""
        log = self.workdir / f"{name}.log"
        with open(log, "w") as sink:
            process = subprocess.Popen([command(args[0]), *args[1:]], stdout=sink, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, **popen)
        daemon = Daemon(name, process, log)
        self.daemons.append(daemon)
        return daemon

    def _start_munge(self) -> None:
        """munged as user munge, unless a running one already answers."""
        if succeeds("munge", "--no-input"):
            return
        MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
        daemon = self._spawn("munged", "munged", "--foreground", user="munge", group="munge")
        wait_for("munge credential", lambda: succeeds("munge", "--no-input"), daemon)

    def _start_mariadb(self) -> None:
        """A private MariaDB on 127.0.0.1 with a password user for slurmdbd."""
        datadir, sock = self.workdir / "mariadb", self.workdir / "mariadb.sock"
        run("mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
            "--auth-root-authentication-method=socket", "--skip-test-db", timeout=120)
        daemon = self._spawn(
            "mariadbd", "mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}", f"--socket={sock}",
            f"--port={self.ports['mariadb']}", "--bind-address=127.0.0.1", f"--pid-file={self.workdir / 'mariadb.pid'}",
            "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0",
        )
        client = ("--no-defaults", f"--socket={sock}", "--user=root")
        wait_for("MariaDB", lambda: succeeds("mariadb-admin", *client, "ping"), daemon)
        run("mariadb", *client, "--execute",
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")

    def _write_configs(self) -> None:
        """slurm.conf, gres.conf and slurmdbd.conf (mode 600, as slurmdbd demands) under /etc/slurm."""
        for folder in ("state", "spool"):
            (self.workdir / folder).mkdir(exist_ok=True)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        self._write("slurm.conf", self._slurm_conf())
        self._write("gres.conf", "".join(f"NodeName={self.node.name} Name=gpu File={f}\n" for f in FAKE_GPU_FILES))
        self._write("slurmdbd.conf", self._slurmdbd_conf(), mode=0o600)

    def _write(self, name: str, body: str, mode: int = 0o644) -> None:
        path = CONF_DIR / name
        path.write_text(f"{MARKER}\n{body}")
        path.chmod(mode)
        self.written.append(path)

    def _slurm_conf(self) -> str:
        node, w = self.node, self.workdir
        return f"""\
ClusterName={self.name}
SlurmctldHost={node.name}(127.0.0.1)
SlurmctldPort={self.ports['slurmctld']}
SlurmdPort={self.ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={w / 'state'}
SlurmdSpoolDir={w / 'spool'}
SlurmctldPidFile={w / 'slurmctld.pid'}
SlurmdPidFile={w / 'slurmd.pid'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU={max(100, min(1024, node.memory_mb // node.cpus))}
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
OverTimeLimit=0
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.ports['slurmdbd']}
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
NodeName={node.name} NodeAddr=127.0.0.1 CPUs={node.cpus} RealMemory={node.memory_mb} Gres=gpu:{len(FAKE_GPU_FILES)} State=UNKNOWN
PartitionName={self.cpu_partition} Nodes={node.name} Default=YES MaxTime=INFINITE State=UP
PartitionName={self.gpu_partition} Nodes={node.name} MaxTime=INFINITE State=UP
"""

    def _slurmdbd_conf(self) -> str:
        return f"""\
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self.ports['slurmdbd']}
SlurmUser=root
PidFile={self.workdir / 'slurmdbd.pid'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.ports['mariadb']}
StorageUser=slurm
StoragePass={self.db_password}
StorageLoc=slurm_acct_db
"""

    def _start_slurmdbd(self) -> None:
        daemon = self._spawn("slurmdbd", "slurmdbd", "-D")
        wait_for("answer from slurmdbd", lambda: succeeds("sacctmgr", "--noheader", "list", "cluster"), daemon)

    def _add_accounts(self) -> None:
        """Register the cluster (before slurmctld starts) and an account that root may charge."""
        run("sacctmgr", "--immediate", "add", "cluster", self.name)
        run("sacctmgr", "--immediate", "add", "account", self.account, f"Cluster={self.name}",
            "Description=ltbench test", "Organization=ltbench")
        run("sacctmgr", "--immediate", "add", "user", "root", f"Account={self.account}", f"Cluster={self.name}")

    def _start_slurmctld(self) -> None:
        daemon = self._spawn("slurmctld", "slurmctld", "-D", "-i")
        wait_for("answer from slurmctld", lambda: "UP" in (output("scontrol", "ping") or ""), daemon)

    def _start_slurmd(self) -> None:
        """slurmd, then wait until the node is idle (a drained or invalid node fails with its reason)."""
        daemon = self._spawn("slurmd", "slurmd", "-D", "-N", self.node.name)
        wait_for(f"idle node {self.node.name}", self._node_idle, daemon)

    def _node_idle(self) -> bool:
        state = run("sinfo", "--noheader", "--Node", f"--nodes={self.node.name}", "--format=%T").split()
        if any(s.startswith(("drain", "inval", "fail")) for s in state):
            raise SlurmUnavailable(f"node {self.node.name} is {state[0]}: {run('scontrol', 'show', 'node', self.node.name)}")
        return "idle" in state

    def _cancel_jobs(self) -> None:
        """scancel every job still queued or running (all of them belong to this cluster), bounded wait."""
        if not any(d.name == "slurmctld" and d.alive() for d in self.daemons):
            return
        try:
            queued = run("squeue", "--noheader", "--format=%i").split()
            if queued:
                run("scancel", *queued)
                wait_for("empty queue", lambda: not run("squeue", "--noheader", "--format=%i").strip(), timeout=30)
        except SlurmUnavailable:
            pass  # stopping goes on regardless

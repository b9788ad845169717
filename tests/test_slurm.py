"""The SLURM path: profiles/slurm as shipped, and the tiny workflow run through it on a real SLURM.

The cluster tests start a single-node SLURM on localhost (tests/slurm_cluster.py), run the tiny
workflow through the profile and, at the same time, one training that runs past its time limit. They are
skipped, with the reason, where that cannot be done (not root, packages missing, a daemon
that does not come up); with LTBENCH_REQUIRE_SLURM=1 (set by .ci/run once the packages are
installed) they fail instead, so that CI cannot pass by skipping them.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, Workflow, make_workflow, tiny_config
from ltbench import config as cfg
from slurm_cluster import SlurmCluster, SlurmUnavailable

PROFILE = Path("profiles/slurm/config.yaml")
GPU_RULES = ("train", "stage2")  # the rules whose jobs ask for a GPU
PLACEHOLDERS = {  # what a user edits: (section, rule or None, key) -> value shipped
    ("default-resources", None, "slurm_partition"): "cpu",
    ("default-resources", None, "slurm_account"): "my_account",
    **{("set-resources", rule, "slurm_partition"): "gpu" for rule in GPU_RULES},
}
TARGETS = ("results/table.csv", "results/table.md")
RUN_TIMEOUT = 300  # seconds for the whole tiny workflow on SLURM (and for the time-limit run)
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) ")  # the plugin's line per submitted job
SLURM_HEADER = re.compile(r"^\[.+\] .* on \S+ \(.*\), SLURM job (\d+)$", re.M)
# A test speed-up, not part of the profile: the first job status check after 1 s instead of 40 s.
SLURM_RUN = ("--workflow-profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "1")
TIME_LIMIT_RUN = {"benchmark": "resnet32-tiny10", "strategy": "ce", "seed": 0}  # the training that runs out of time
TIME_LIMIT_MINUTES = 1  # its SLURM time limit (sbatch -t), set as a user would: set-resources -> train -> runtime


def shipped_profile() -> dict:
    return yaml.safe_load((REPO / PROFILE).read_text())


def resources_of(profile: dict, section: str, rule: str | None) -> dict:
    """``default-resources`` or one rule's ``set-resources`` entry."""
    return profile[section] if rule is None else profile[section][rule]


# -- the profile as shipped (no SLURM needed) ----------------------------------------------


def test_profile_submits_to_slurm_with_per_rule_resources():
    profile = shipped_profile()
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["slurm-requeue"] is True
    assert profile["jobs"] > 0 and profile["latency-wait"] > 0
    assert profile["rerun-incomplete"] is True and profile["keep-going"] is True
    assert {"slurm_partition", "runtime", "mem_mb"} <= set(profile["default-resources"])
    for rule in GPU_RULES:
        resources = profile["set-resources"][rule]
        assert {"slurm_partition", "runtime", "mem_mb", "cpus_per_gpu"} <= set(resources)
        assert "gpu" not in resources, "the rule itself asks for its GPU (none when train.device is cpu)"
    for (section, rule, key), value in PLACEHOLDERS.items():
        assert resources_of(profile, section, rule)[key] == value


def test_profile_sets_no_global_gpu_limit_and_no_gres_extra():
    profile = shipped_profile()
    assert "gpu" not in (profile.get("resources") or {}), "a global gpu limit would run one training job at a time"
    assert "--gres" not in yaml.safe_dump(profile), "the gpu resource asks for GPUs (sbatch --gpus)"


def job_resources(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, resources line) of each job in a dry run."""
    return re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", dry_run_output, re.M)


def test_dry_run_sends_exactly_the_gpu_jobs_to_the_gpu_partition():
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--workflow-profile", str(PROFILE), "--dry-run", "--forceall"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    jobs = job_resources(out)
    assert {rule for rule, _ in jobs} >= {"materialize", "train", "metrics", "table"}
    for rule, resources in jobs:
        asks_gpu = re.search(r"(?<!\w)gpu=[1-9]", resources) is not None
        assert asks_gpu == (rule in GPU_RULES), (rule, resources)
        assert f"slurm_partition={'gpu' if asks_gpu else 'cpu'}" in resources, (rule, resources)


# -- the tiny workflow on a real single-node SLURM -----------------------------------------


def unavailable(reason: str):
    """Skip (or fail, where CI demands SLURM) with ``reason``."""
    message = f"SLURM cluster unavailable: {reason}"
    if os.environ.get("LTBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"{message} (LTBENCH_REQUIRE_SLURM=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node SLURM; stopped whatever the tests' outcome."""
    slurm = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        slurm.start()
    except SlurmUnavailable as err:
        unavailable(str(err))
    try:
        yield slurm
    finally:
        slurm.stop()


def site_values(cluster: SlurmCluster) -> dict:
    """What the test cluster puts where the shipped profile has placeholders."""
    return {
        ("default-resources", None, "slurm_partition"): cluster.cpu_partition,
        ("default-resources", None, "slurm_account"): cluster.account,
        **{("set-resources", rule, "slurm_partition"): cluster.gpu_partition for rule in GPU_RULES},
    }


def site_profile(profile: dict, cluster: SlurmCluster, train_config: dict) -> dict:
    """The shipped profile with the placeholders filled in for ``cluster``, GPU jobs sized like the tiny config.

    That is what a user does for their cluster; every other key stays as shipped.
    """
    site = copy.deepcopy(profile)
    values = site_values(cluster)
    assert values.keys() == PLACEHOLDERS.keys()
    for (section, rule, key), value in values.items():
        resources_of(site, section, rule)[key] = value
    for rule in GPU_RULES:
        site["set-resources"][rule].update(cpus_per_gpu=train_config["threads"], mem_mb=train_config["mem_mb"])
    return site


def use_site_profile(wf: Workflow, cluster: SlurmCluster, config: dict, **train_resources) -> None:
    """Write the site profile (``site_profile``) into the workflow copy; ``train_resources`` override train's."""
    site = site_profile(shipped_profile(), cluster, config["train"])
    site["set-resources"]["train"] = {**site["set-resources"]["train"], **train_resources}
    (wf.root / PROFILE).write_text(yaml.safe_dump(site, sort_keys=False))


class BackgroundRun:
    """Snakemake started in a workflow copy and left running, its stdout and stderr in a file."""

    def __init__(self, wf: Workflow, *args: str, timeout: float) -> None:
        self.wf, self.args = wf, args
        self.output = wf.root / "snakemake-output.txt"
        self.deadline = time.monotonic() + timeout
        with open(self.output, "w") as sink:
            self.process = subprocess.Popen(wf.argv(*args), cwd=wf.root, env=wf.env, stdin=subprocess.DEVNULL,
                                            stdout=sink, stderr=subprocess.STDOUT)

    def result(self) -> tuple[int, str]:
        """(exit status, output), waiting no longer than ``timeout`` seconds after the start."""
        try:
            returncode = self.process.wait(max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"snakemake {' '.join(self.args)} did not finish in time:\n{self.output.read_text()}")
        return returncode, self.output.read_text()

    def stop(self) -> None:
        """SIGTERM (Snakemake cancels its SLURM jobs), SIGKILL if it is still there 30 s later."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def time_limit_config() -> dict:
    """One training (``TIME_LIMIT_RUN``) with far more epochs than a minute allows, a checkpoint after each.

    On the CPU (so its job asks for no GPU) with one thread: it holds one of the node's two CPUs.
    """
    config = tiny_config()
    config["benchmarks"] = {name: spec for name, spec in config["benchmarks"].items()
                            if name == TIME_LIMIT_RUN["benchmark"]}
    config["strategies"] = {TIME_LIMIT_RUN["strategy"]: config["strategies"][TIME_LIMIT_RUN["strategy"]]}
    config["seeds"] = [TIME_LIMIT_RUN["seed"]]
    config["recipe"]["epochs"] = 100_000
    config["train"].update(device="cpu", threads=1, checkpoint_every=1)
    return config


@pytest.fixture(scope="module")
def time_limit_started(cluster: SlurmCluster, tmp_path_factory) -> Iterator[BackgroundRun]:
    """A workflow copy whose one training gets a 1-minute SLURM time limit, run through the profile with
    ``--retries 0``: started, not awaited (``slurm_run`` asks for it first, so that the two runs overlap)."""
    config = time_limit_config()
    wf = make_workflow(tmp_path_factory.mktemp("slurm-time-limit"), config)
    use_site_profile(wf, cluster, config, runtime=TIME_LIMIT_MINUTES)
    target = f"{cfg.RUN_DIR.format(**TIME_LIMIT_RUN)}/history.json"
    # Its data locally first (seconds), so that the training job is submitted at once.
    wf.snakemake("--cores", "1", target, "--until", "materialize")
    run = BackgroundRun(wf, *SLURM_RUN, "--retries", "0", target, timeout=RUN_TIMEOUT)
    try:
        yield run
    finally:
        run.stop()


@pytest.fixture(scope="module")
def time_limit_run(time_limit_started: BackgroundRun) -> tuple[Workflow, int, str]:
    """The time-limit run, finished: (workflow, Snakemake's exit status, its stdout and stderr)."""
    returncode, output = time_limit_started.result()
    return time_limit_started.wf, returncode, output


def slurm_config() -> dict:
    """tiny_config() with device auto (so training jobs ask for a GPU), cut to one benchmark, ``ce`` and
    what fine-tunes it.

    Both GPU rules (train, stage2) run; other benchmarks and strategies would only add CPU time on 2 cores.
    """
    config = tiny_config()
    config["benchmarks"] = {name: spec for name, spec in config["benchmarks"].items() if name == "resnet32-tiny10"}
    config["train"]["device"] = "auto"
    config["strategies"] = {
        name: spec for name, spec in config["strategies"].items() if name == "ce" or spec.get("stage1") == "ce"
    }
    return config


@pytest.fixture(scope="module")
def slurm_run(cluster: SlurmCluster, tmp_path_factory, time_limit_started) -> tuple[Workflow, dict, set[str]]:
    """The tiny workflow through ``--workflow-profile profiles/slurm`` on the cluster: (workflow, its config,
    the ids of the SLURM jobs it submitted).

    The time-limit run (``time_limit_started``) trains meanwhile on the node's other CPU; its job may still
    be running when this run ends, so tests of this run look at this run's own jobs only.
    """
    config = slurm_config()
    wf = make_workflow(tmp_path_factory.mktemp("tiny-slurm"), config)
    use_site_profile(wf, cluster, config)
    # Only the table, a test speed-up too: figures would double the job count on 2 cores.
    proc = wf.snakemake(*SLURM_RUN, *TARGETS, timeout=RUN_TIMEOUT)
    submitted = set(SUBMITTED.findall(proc.stdout + proc.stderr))
    assert submitted, f"no SLURM submission in the output:\n{proc.stdout}\n{proc.stderr}"
    return wf, config, submitted


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job, from the comment the plugin gives it (``rule_<name>[_wildcards_<values>]``).

    sacct shows a job's comment only once the job has ended (a running job's is empty).
    """
    return re.match(r"rule_(.+?)(?:_wildcards_.*)?$", job["Comment"]).group(1)


def test_slurm_run_builds_the_table(slurm_run):
    wf, config, _ = slurm_run
    runs = pd.read_csv(wf.root / "results/table.csv")
    assert set(zip(runs["benchmark"], runs["strategy"])) == {
        (benchmark, strategy) for benchmark in config["benchmarks"] for strategy in config["strategies"]
    }
    assert runs["best_test_acc"].between(0, 100).all()


def training_job_ids(wf: Workflow) -> dict[str, str]:
    """{training log: SLURM job id} from the header line each training log starts with."""
    ids = {}
    for log in sorted((wf.root / "results/logs/train").glob("*/*/seed0.log")):
        match = SLURM_HEADER.search(log.read_text())
        assert match, f"{log} has no header naming a SLURM job:\n{log.read_text()[:2000]}"
        ids[str(log.relative_to(wf.root))] = match.group(1)
    return ids


def test_each_training_ran_inside_a_slurm_gpu_job(slurm_run, cluster: SlurmCluster):
    wf, config, submitted = slurm_run
    ids = training_job_ids(wf)
    assert len(ids) == len(config["benchmarks"]) * len(config["strategies"]), ids
    assert len(set(ids.values())) == len(ids) and set(ids.values()) <= submitted, (ids, submitted)
    accounting = {job["JobID"]: job for job in cluster.jobs()}
    assert {rule_of(accounting[job_id]) for job_id in ids.values()} == set(GPU_RULES)
    for log, job_id in ids.items():
        job = accounting[job_id]
        assert job["Partition"] == cluster.gpu_partition, (log, job)
        assert job["Account"] == cluster.account, (log, job)
        assert "gres/gpu=1" in job["AllocTRES"], (log, job)
        assert job["State"] == "COMPLETED", (log, job)


def test_cpu_rules_ran_on_the_cpu_partition_without_gpu(slurm_run, cluster: SlurmCluster):
    _, _, submitted = slurm_run
    ours = [job for job in cluster.jobs() if job["JobID"] in submitted]
    assert len(ours) == len(submitted), (ours, submitted)
    jobs = [job for job in ours if rule_of(job) not in GPU_RULES]
    assert {"materialize", "metrics", "table"} <= {rule_of(job) for job in jobs}
    for job in jobs:
        assert job["Partition"] == cluster.cpu_partition, job
        assert job["Account"] == cluster.account, job
        assert "gres/gpu" not in job["AllocTRES"], job
        assert job["State"] == "COMPLETED", job


def test_training_past_its_time_limit_fails_and_says_why(time_limit_run, cluster: SlurmCluster):
    """SLURM kills the training at its time limit: Snakemake fails naming the SLURM state, the job's SLURM log
    (shown in the failure report) says why, no partial outputs remain, the checkpoint does."""
    wf, returncode, output = time_limit_run
    assert returncode != 0, output
    # The failure report: the plugin's message with the SLURM state, and the job in the accounting.
    failed = re.findall(r"^Error in rule train:\n    message: SLURM-job '(\d+)' failed, SLURM status is: 'TIMEOUT'",
                        output, re.M)
    assert len(failed) == 1, output
    job_id = failed[0]
    accounting = {job["JobID"]: job for job in cluster.jobs()}
    job = accounting[job_id]
    assert rule_of(job) == "train" and job["State"] == "TIMEOUT", job
    assert job["Timelimit"] == f"00:{TIME_LIMIT_MINUTES:02d}:00", job
    assert "gres/gpu" not in job["AllocTRES"], job
    # The SLURM log that the submission line names: slurmstepd's reason, also shown in the report.
    slurm_log = Path(re.search(rf"SLURM jobid {job_id} \(log: (.+?)\)", output).group(1))
    assert slurm_log.is_relative_to(wf.root / ".snakemake/slurm_logs"), slurm_log
    killed = re.compile(rf"\*\*\* JOB {job_id} ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT \*\*\*")
    assert killed.search(slurm_log.read_text()), slurm_log.read_text()[-3000:]
    assert killed.search(output) and f"Logfile {slurm_log}:" in output, output
    # The training's own log: it ran in that job and got through epochs, then stopped without finishing
    # (SIGTERM ends it with no message there: the reason is in the SLURM log).
    train_log = wf.root / "results/logs/train/{benchmark}/{strategy}/seed{seed}.log".format(**TIME_LIMIT_RUN)
    text = train_log.read_text()
    header = SLURM_HEADER.search(text)
    assert header and header.group(1) == job_id, text[:2000]
    assert re.search(r"\] epoch 1/\d+ ", text) and "done:" not in text, text[-2000:]
    # No partial outputs; the checkpoint of the finished epochs stays for a rerun with a longer limit.
    run_dir = wf.root / cfg.RUN_DIR.format(**TIME_LIMIT_RUN)
    assert not [name for name in ("history.json", "predictions.npz", "model.pt") if (run_dir / name).exists()]
    assert (wf.root / cfg.CHECKPOINT.format(**TIME_LIMIT_RUN)).is_file()

"""scripts/results.py: runs made elsewhere (a GPU session, no Snakemake) imported without retraining, and
published under docs/results/ without any data or predictions."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import TINY, Workflow, make_workflow, tiny_config

BENCHMARKS = ("resnet32-tiny10", "vgg16bn-folder")
IMPORTED = ("ce", "effective_number", "la_posthoc", "weight_balancing")  # trained, post hoc, stage 2 of ce
MATRIX = ["--config", f"matrix={{benchmarks: [{', '.join(BENCHMARKS)}], strategies: [{', '.join(IMPORTED)}]}}",
]
TARGETS = ["results/table.md", *MATRIX]


def results_cli(wf: Workflow, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python scripts/results.py [--config CONFIGFILE ...] ARGS`` in the workflow copy (its config files
    merged into config.yaml as Snakemake merges them)."""
    configs = [arg for path in wf.configfiles for arg in ("--config", path)]
    proc = subprocess.run([sys.executable, "scripts/results.py", *configs, *args], cwd=wf.root, env=wf.env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"results.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def pack_runs(root: Path, archive: Path, strategies=IMPORTED) -> None:
    """An archive as ``scripts/speed/loan.py`` packs runs (relative member names, history and predictions;
    ce's weights too, since weight_balancing builds on them)."""
    with tarfile.open(archive, "w:gz") as tar:
        for bench in BENCHMARKS:
            for strategy in strategies:
                for path in sorted((root / "results/runs" / bench / strategy).glob("seed*/*")):
                    if path.name in ("history.json", "predictions.npz") or (path.name, strategy) == ("model.pt", "ce"):
                        tar.add(path, arcname=str(path.relative_to(root)))


@pytest.fixture(scope="module")
def imported(tiny_run: Workflow, tmp_path_factory) -> tuple[Workflow, subprocess.CompletedProcess]:
    """A fresh workflow copy holding the tiny run's materialized data (written before the import, as in a
    session where the data was materialized first), into which the tiny run's runs were imported."""
    wf = make_workflow(tmp_path_factory.mktemp("fresh"), tiny_config())
    shutil.copytree(tiny_run.root / "results/data", wf.root / "results/data", copy_function=shutil.copyfile)
    archive = wf.root / "runs.tar.gz"
    pack_runs(tiny_run.root, archive)
    return wf, results_cli(wf, "import", str(archive))


def test_import_plans_no_training_and_makes_the_same_table(imported, tiny_run: Workflow, monkeypatch):
    wf, proc = imported
    assert "checked: a dry run for the imported runs' metrics plans no" in proc.stdout
    assert f"next: snakemake --cores 2 results/table.md --config '{MATRIX[1]}' --configfile {TINY}\n" in proc.stdout
    # what the import's fresh mtimes prevent: runs older than their (locally materialized) data are retrained
    run = wf.root / "results/runs/resnet32-tiny10/ce/seed0"
    cache_mtime = (wf.root / "results/data/tiny10-lt3/cache.npz").stat().st_mtime
    for path in run.iterdir():
        os.utime(path, (cache_mtime - 60, cache_mtime - 60))
    from results import retraining_jobs

    monkeypatch.chdir(wf.root)
    # ce and the runs built on it: its post-hoc correction and its stage 2
    train, stage2, posthoc = sorted(retraining_jobs([*TARGETS, "--configfile", TINY]), reverse=True)
    assert train.startswith("rule train:") and "strategy=ce, seed=0" in train and "Updated input files" in train
    assert stage2.startswith("rule stage2:") and "benchmark=resnet32-tiny10, strategy=weight_balancing" in stage2
    assert posthoc.startswith("rule posthoc:") and "benchmark=resnet32-tiny10, strategy=la_posthoc" in posthoc
    again = results_cli(wf, "import", str(wf.root / "runs.tar.gz"))  # the same archive again fixes it
    assert "checked: a dry run" in again.stdout
    jobs = wf.planned_jobs(*TARGETS)
    assert {rule for rule, _ in jobs} == {"metrics", "table"}, jobs
    assert len([1 for rule, _ in jobs if rule == "metrics"]) == len(BENCHMARKS) * len(IMPORTED)
    wf.snakemake("--cores", "2", *TARGETS)
    assert not (wf.root / "results/logs/train").exists()
    assert {p.parent.parent.name for p in wf.root.glob("results/runs/**/model.pt")} == {"ce"}, "only the stage-2 input"
    for bench in BENCHMARKS:
        for strategy in IMPORTED:
            run = f"results/runs/{bench}/{strategy}/seed0/metrics.json"
            here, there = (json.loads((root / run).read_text()) for root in (wf.root, tiny_run.root))
            assert {k: here[k] for k in here.keys() & there.keys()} == {k: there[k] for k in here.keys() & there.keys()}
    assert wf.planned_jobs(*TARGETS) == set(), "after the metrics and table, nothing is left to do"


def test_import_into_the_tree_that_trained_the_runs_plans_no_training(tiny_run: Workflow, tmp_path):
    """There each run's model.pt is already here, and not in the archive unless a stage 2 builds on it: it is
    an output of the same job and must not be left older than the imported weights it was trained from."""
    root = tmp_path / "same"
    shutil.copytree(tiny_run.root, root, symlinks=True)
    archive = tmp_path / "runs.tar.gz"
    pack_runs(root, archive)
    proc = results_cli(Workflow(root, tiny_run.env, tiny_run.configfiles), "import", str(archive))
    assert "checked: a dry run for the imported runs' metrics plans no" in proc.stdout


def test_publish_copies_results_without_predictions(imported):
    wf, _ = imported
    wf.snakemake("--cores", "2", *TARGETS)  # no-op when the test above ran first
    results_cli(wf, "publish")
    docs = wf.root / "docs/results"
    first = {p.relative_to(docs): p.read_bytes() for p in docs.rglob("*") if p.is_file()}
    results_cli(wf, "publish")
    assert {p.relative_to(docs): p.read_bytes() for p in docs.rglob("*") if p.is_file()} == first, "idempotent"
    assert not [p for p in first if p.suffix == ".npz"]
    runs = {p.parent for p in first if p.parts[0] == "runs"}
    assert runs == {Path("runs", b, s, "seed0") for b in BENCHMARKS for s in IMPORTED}
    assert all({p.name for p in first if p.parent == run} == {"metrics.json", "history.json"} for run in runs)
    for bench in BENCHMARKS:
        assert {Path(f"plots/benchmarks/{bench}/{name}.png") for name in ("per_class", "shots", "curves")} <= set(first)
    # the pipeline's own table code on the published runs gives the pipeline's table of the same runs
    for name in ("table.csv", "table.md", "table.tex"):
        assert first[Path(name)] == (wf.root / "results" / name).read_bytes(), name
    readme = first[Path("README.md")].decode()
    metrics = json.loads((docs / "runs/resnet32-tiny10/ce/seed0/metrics.json").read_text())
    prov = metrics["provenance"]
    unit = f"| resnet32-tiny10 | ce | 0 | 2 | {prov['commit']} | {prov['device_name']} | {prov['torch_version']} |"
    assert unit in readme
    assert len([line for line in readme.splitlines() if line.startswith("| vgg16bn-folder |")]) == len(IMPORTED)


def bare_copy(wf: Workflow, root: Path) -> Path:
    """``root`` with the workflow's scripts and config files and no results: the tests put runs in by hand."""
    shutil.copytree(wf.root / "scripts", root / "scripts")
    for name in ("config.yaml", *wf.configfiles):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wf.root / name, root / name)
    return root


def test_publish_refuses_metrics_without_provenance(imported, tmp_path):
    wf, _ = imported
    copy = bare_copy(wf, tmp_path / "copy")
    run = copy / "results/runs/resnet32-tiny10/ce/seed0"
    shutil.copytree(wf.root / "results/runs/resnet32-tiny10/ce/seed0", run)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["provenance"]["commit"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    proc = results_cli(Workflow(copy, wf.env, wf.configfiles), "publish", check=False)
    assert proc.returncode == 1
    assert "results/runs/resnet32-tiny10/ce/seed0/metrics.json: its provenance lacks commit" in proc.stderr
    assert not (copy / "docs").exists()


def test_publish_refuses_to_mix_scales_in_one_folder(imported, tmp_path):
    wf, _ = imported
    copy = bare_copy(wf, tmp_path / "copy")
    for seed, epochs in ((0, None), (1, 25)):  # the same run again, as if trained for 25 epochs
        run = copy / f"results/runs/resnet32-tiny10/ce/seed{seed}"
        shutil.copytree(wf.root / "results/runs/resnet32-tiny10/ce/seed0", run)
        if epochs:
            metrics = json.loads((run / "metrics.json").read_text())
            (run / "metrics.json").write_text(json.dumps({**metrics, "epochs": epochs, "seed": seed}))
    proc = results_cli(Workflow(copy, wf.env, wf.configfiles), "publish", check=False)
    assert proc.returncode == 1
    assert "runs of different scales would share docs/results/: 2 epochs: results/runs/resnet32-tiny10/ce/seed0" in proc.stderr
    assert "25 epochs: results/runs/resnet32-tiny10/ce/seed1" in proc.stderr
    assert not (copy / "docs").exists()


def test_publish_leaves_out_runs_of_benchmarks_outside_the_matrix(imported, tmp_path):
    """Another stage's runs in the same results/ (the protocol's development runs beside its final ones) are
    not copied into this folder, and the output names them."""
    wf, _ = imported
    copy = bare_copy(wf, tmp_path / "copy")
    for bench in ("resnet32-tiny10", "resnet32-elsewhere"):
        shutil.copytree(wf.root / "results/runs/resnet32-tiny10/ce/seed0", copy / f"results/runs/{bench}/ce/seed0")
    proc = results_cli(Workflow(copy, wf.env, wf.configfiles), "publish")
    assert "published 1 run(s)" in proc.stdout
    assert "left out 1 run(s) of benchmarks outside the matrix: results/runs/resnet32-elsewhere/ce/seed0" in proc.stdout
    assert [p.name for p in (copy / "docs/results/runs").iterdir()] == ["resnet32-tiny10"]


def _archive(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    """A tar.gz holding ``members`` (name -> content), plus a symlink member ``link`` if given."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


RUN = "results/runs/resnet32-tiny10/ce/seed0"
HISTORY = json.dumps({"benchmark": {"name": "resnet32-tiny10"}, "strategy": {"name": "ce"}, "seed": 0}).encode()


@pytest.mark.parametrize("members, link, message", [
    ({"results/runs/../../evil/history.json": b"x"}, None, "not a plain relative path"),
    ({"/etc/history.json": b"x"}, None, "not a plain relative path"),
    ({f"{RUN}/checkpoint.pt": b"x"}, None, "only results/runs/<benchmark>/<strategy>/seed<k>/"),
    ({"results/other/history.json": b"x"}, None, "only results/runs/"),
    ({f"{RUN}/history.json": HISTORY}, f"{RUN}/predictions.npz", "not a regular file"),
    ({f"{RUN}/history.json": HISTORY}, None, "run resnet32-tiny10/ce/seed0 lacks predictions.npz"),
    ({f"{RUN}/history.json": HISTORY.replace(b'"ce"', b'"effective_number"'), f"{RUN}/predictions.npz": b"x"},
     None, "history.json describes the run resnet32-tiny10/effective_number/seed0"),
])
def test_import_refuses_unsafe_or_incomplete_archives(tmp_path, monkeypatch, members, link, message):
    from results import ResultsError, import_runs

    archive = _archive(tmp_path / "runs.tar.gz", members, link)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResultsError, match=re.escape(message)) as err:
        import_runs([archive])
    assert not (tmp_path / "results").exists() and not (tmp_path.parent / "evil").exists()
    if "plain" in message or "only" in message:
        assert next(iter(members)) in str(err.value), "the error names the member"


def test_import_refuses_a_run_found_in_two_archives(tmp_path, monkeypatch):
    from results import ResultsError, import_runs

    members = {f"{RUN}/history.json": HISTORY, f"{RUN}/predictions.npz": b"x"}
    first, second = (_archive(tmp_path / name, members) for name in ("a.tar.gz", "b.tar.gz"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResultsError, match="run resnet32-tiny10/ce/seed0 is in both .*a.tar.gz and .*b.tar.gz"):
        import_runs([first, second])
    assert not (tmp_path / "results").exists()

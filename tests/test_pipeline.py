"""The real Snakefile: default dry run, lint, formatting, a tiny end-to-end run, and what reruns."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY, Workflow, tiny_config
from ltbench.io import current_umask

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    stats = dry_run_output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def test_default_dry_run_lists_the_full_matrix_quickly():
    start = time.perf_counter()
    # --forceall: every job of the matrix, whatever runs this checkout already holds
    out = subprocess.run([*SNAKEMAKE, "--dry-run", "--forceall"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    elapsed = time.perf_counter() - start
    counts = job_counts(out)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    benchmarks, strategies, seeds = config["benchmarks"], config["strategies"], config["seeds"]
    runs = len(benchmarks) * len(strategies) * len(seeds)
    assert counts["train"] + counts["stage2"] + counts["posthoc"] == runs
    assert counts["posthoc"] == len(benchmarks) * len(seeds) * sum("base" in (p or {}) for p in strategies.values())
    assert counts["stage2"] == len(benchmarks) * len(seeds) * sum("stage1" in (p or {}) for p in strategies.values())
    assert counts["metrics"] == runs
    assert counts["materialize"] == len({(b["dataset"], b["imbalance_ratio"]) for b in benchmarks.values()})
    assert counts["table"] == 1
    assert elapsed < 20, f"a dry run took {elapsed:.1f} s"


def test_snakefile_imports_no_torch():
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TORCH' if 'torch' in sys.modules else 'NOTORCH'))\n"
        "from snakemake.cli import main\n"
        "main(['--dry-run', '--quiet', 'all'])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True).stdout
    assert out.strip().endswith("NOTORCH")


def test_lint_passes():
    proc = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_snakefmt_check_passes():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_end_to_end_table(tiny_run: Workflow):
    runs = pd.read_csv(tiny_run.root / "results/table.csv")
    config = tiny_config()
    matrix = config["matrix"]
    assert set(runs["benchmark"]) == set(matrix["benchmarks"]) == {"resnet32-tiny10", "vgg16bn-folder"}
    assert set(runs["strategy"]) == set(matrix["strategies"])
    assert len(runs) == len(matrix["benchmarks"]) * len(matrix["strategies"]) * len(config["seeds"])
    assert runs["best_test_acc"].between(0, 100).all()
    assert (runs["best_test_acc"] >= runs["final_test_acc"]).all()
    assert runs.loc[runs["strategy"] == "weight_balancing", "builds_on"].eq("ce").all()
    assert runs.filter(regex=r"^class_acc_").shape[1] == 10  # tiny10 has 10 classes, the folder 5
    assert runs["best_test_acc"].between(runs["best_test_acc_lo"], runs["best_test_acc_hi"]).all()  # Wilson 95%
    # a tiny run may diverge to non-finite logits: no calibration there (a dash), the others calibrated
    assert runs["best_ece"].dropna().between(0, 100).all() and (runs["best_nll"].dropna() > 0).all()
    assert runs["best_ece"].notna().sum() >= len(runs) - 1
    assert runs["best_worst_class_acc"].le(runs["best_balanced_acc"]).all()
    assert runs["test_balanced"].all() and (runs["best_balanced_acc"] - runs["best_test_acc"]).abs().max() < 1e-9
    md = (tiny_run.root / "results/table.md").read_text()
    assert "## Calibration and robustness at the best epoch" in md
    assert "| strategy | type | builds on | resnet32-tiny10 many (0 cl.) |" in md
    assert re.search(r"^\| ce \(baseline\) \| static reweighting \| – \|( [^|]+ \|){4} baseline \|", md, re.M)
    la_row = r"^\| la_posthoc \| logit adjustment \| post hoc on ce \|( [^|]+ \|){4} [+-]\d+\.\d\d \(n=1\) ≈ \|"
    assert re.search(la_row, md, re.M), "one seed: a difference to ce without interval, marked indistinguishable"
    assert "| weight_balancing | two-stage | stage 2 of ce |" in md
    # the folder benchmark holds out a validation set: its trained runs report the test accuracy at the epoch
    # it selects (a post-hoc run has no validation logits to adjust: none)
    trained = runs[(runs["benchmark"] == "vgg16bn-folder") & (runs["strategy"] != "la_posthoc")]
    assert trained["val_selected_test_acc"].notna().all() and runs["val_selected_test_acc"].isna().sum() == 5
    assert "## Test accuracy at the validation-selected epoch (%)" in md
    tex = (tiny_run.root / "results/table.tex").read_text()
    assert r"\begin{tabular}{lrrrrrrrrr}" in tex and r"\bottomrule" in tex and "weight\\_balancing" in tex


def test_outputs_get_the_umask_permissions(tiny_run: Workflow):
    """Atomic writes start as mkstemp's 0600; colleagues must be able to read results as the umask allows."""
    mode = 0o666 & ~current_umask()  # the workflow ran with this process's umask
    run = "results/runs/resnet32-tiny10/ce/seed0"
    for rel in ("results/table.csv", "results/table.md", "results/table.tex", "results/table.html",
                f"{run}/history.json", f"{run}/metrics.json", f"{run}/predictions.npz", "results/data/tiny10-lt3/index.json"):
        assert stat.S_IMODE((tiny_run.root / rel).stat().st_mode) == mode, rel


def test_end_to_end_logs_show_progress(tiny_run: Workflow):
    log = (tiny_run.root / "results/logs/train/resnet32-tiny10/ce/seed0.log").read_text()
    line = re.search(r"\] epoch 2/2 loss \d+\.\d+ test acc .* img/s, eta \d:\d\d:\d\d", log)
    sys.path.insert(0, str(REPO / "scripts/speed"))
    from loan import EPOCH  # the device plan's pace reads the same lines

    assert line and EPOCH.findall(line[0] + "\n")[0][:2] == ("2", "2")


def _edited(path, old: str | None, new: str):
    """Context: replace ``old`` by ``new`` in ``path`` (append ``new`` if ``old`` is None), restore after."""

    class Edit:
        def __enter__(self):
            self.text = path.read_text()
            path.write_text(self.text + new if old is None else self.text.replace(old, new))

        def __exit__(self, *exc):
            path.write_text(self.text)

    return Edit()


def _runs(jobs, rule):
    return {w for r, w in jobs if r == rule}


TRAINED = {"ce", "effective_number"}
EVERY = TRAINED | {"la_posthoc", "weight_balancing"}
SEMANTIC = "\nEDITED = True\n"  # a statement: the code's meaning changes
RERUN_CASES = {
    # edited file, old text (None: append), new text -> strategies expected per rule, and whether the table reruns
    "strategy-file": ("scripts/ltbench/strategies/effective_number.py", None, SEMANTIC,
                      {"train": {"effective_number"}, "metrics": {"effective_number"}}, True),
    "strategy-params": (TINY, "beta: 0.99", "beta: 0.98",
                        {"train": {"effective_number"}, "metrics": {"effective_number"}}, True),
    "upstream-strategy": ("scripts/ltbench/strategies/ce.py", None, SEMANTIC,
                          {"train": {"ce"}, "stage2": {"weight_balancing"}, "posthoc": {"la_posthoc"},
                           "metrics": {"ce", "weight_balancing", "la_posthoc"}}, True),
    "stage2-only": ("scripts/ltbench/strategies/weight_balancing.py", None, SEMANTIC,
                    {"stage2": {"weight_balancing"}, "metrics": {"weight_balancing"}}, True),
    "posthoc-code": ("scripts/ltbench/evaluation/posthoc.py", None, SEMANTIC,
                     {"posthoc": {"la_posthoc"}, "metrics": {"la_posthoc"}}, True),
    "training-code": ("scripts/ltbench/training/train.py", None, SEMANTIC,
                      {"train": TRAINED, "stage2": {"weight_balancing"}, "posthoc": {"la_posthoc"},
                       "metrics": EVERY}, True),
    # weights.py is imported by the strategies that compute weights from counts, not by ce or training
    "strategy-library": ("scripts/ltbench/methods/weights.py", None, SEMANTIC,
                         {"train": {"effective_number"}, "stage2": {"weight_balancing"}, "posthoc": {"la_posthoc"},
                          "metrics": {"effective_number", "weight_balancing", "la_posthoc"}}, True),
    "table-code": ("scripts/ltbench/reporting/table.py", None, SEMANTIC, {}, True),
    # a strategy entry's common keys (ltbench.params.COMMON) are its parameters; stating a default is not a change
    "strategy-reduction": (TINY, "beta: 0.99}", "beta: 0.99, reduction: batch_mean}",
                           {"train": {"effective_number"}, "metrics": {"effective_number"}}, True),
    "strategy-recipe": (TINY, "beta: 0.99}", "beta: 0.99, recipe: {warmup_epochs: 1}}",
                        {"train": {"effective_number"}, "metrics": {"effective_number"}}, True),
    "strategy-reduction-default": (TINY, "beta: 0.99}", "beta: 0.99, reduction: weighted_mean, recipe: {}}", {}, False),
    # a recipe option at its neutral value (ltbench.config.RECIPE_OPTIONS) is the published recipe
    "recipe-option-default": (TINY, "eval_batch_size: 16", "eval_batch_size: 16\n  warmup_epochs: 0", {}, False),
    # the metrics beyond top-1 are computed from the saved predictions: their code reruns no training
    "calibration-code": ("scripts/ltbench/evaluation/calibration.py", None, SEMANTIC, {"metrics": EVERY}, True),
    "test-prior-code": ("scripts/ltbench/evaluation/priors.py", None, SEMANTIC, {"metrics": EVERY}, True),
    # comments, docstrings and formatting are not the code's meaning
    "comment": ("scripts/ltbench/training/train.py", None, "\n# edited\n", {}, False),
    "docstring": ("scripts/ltbench/methods/losses.py", '"""Classification losses', '"""Reworded: classification losses',
                  {}, False),
    "formatting": ("scripts/ltbench/strategies/effective_number.py", "weights.effective_number(",
                   "weights.effective_number (", {}, False),
}


@pytest.mark.parametrize("case", RERUN_CASES)
def test_rerun_only_what_changed(tiny_run: Workflow, case):
    target, old, new, expected, table = RERUN_CASES[case]  # each case starts and ends up to date

    def wildcards(strategies):
        return {f"benchmark={b}, strategy={s}, seed=0" for b in tiny_config()["matrix"]["benchmarks"] for s in strategies}

    with _edited(tiny_run.root / target, old, new):
        jobs = tiny_run.planned_jobs()
    for rule in ("materialize", "train", "stage2", "posthoc", "metrics"):
        assert _runs(jobs, rule) == wildcards(expected.get(rule, set())), rule
    assert (("table", "") in jobs) == table
    if not table:
        assert jobs == set()
    assert tiny_run.planned_jobs() == set(), "restoring the content should leave nothing to do"


def test_touch_without_change_reruns_nothing(tiny_run: Workflow):
    for rel in ("scripts/ltbench/strategies/ce.py", "scripts/ltbench/training/train.py", "scripts/ltbench/reporting/table.py",
                "scripts/ltbench/evaluation/metrics.py", "config.yaml", TINY):
        (tiny_run.root / rel).touch()
    assert tiny_run.planned_jobs() == set()


def edited_config(wf: Workflow, change):
    """Context: ``change(config)`` applied to the workflow's config file, restored after."""
    text = wf.config_path.read_text()
    config = yaml.safe_load(text)
    change(config)
    return _edited(wf.config_path, text, yaml.safe_dump(config, sort_keys=False))


def test_adding_or_reordering_strategies_reruns_only_theirs(tiny_run: Workflow):
    def add(config):
        config["strategies"]["sqrt_inverse"] = {}
        config["matrix"]["strategies"].append("sqrt_inverse")

    with edited_config(tiny_run, add):
        jobs = tiny_run.planned_jobs()
    new = {f"benchmark={b}, strategy=sqrt_inverse, seed=0" for b in ("resnet32-tiny10", "vgg16bn-folder")}
    for rule in ("train", "metrics", "plot_run"):
        assert _runs(jobs, rule) == new, rule
    assert {r for r, _ in jobs} == {"train", "metrics", "plot_run", "table", "table_html", "plot_benchmark", "all"}

    def reorder(config):
        config["matrix"]["strategies"].reverse()

    with edited_config(tiny_run, reorder):
        jobs = tiny_run.planned_jobs()
    assert {r for r, _ in jobs} == {"table", "table_html", "plot_benchmark", "all"}


def test_moving_a_module_to_another_wing_retrains_nothing(tiny_run: Workflow):
    """Code identity follows meaning, not paths: a module moved between wings, its imports rewritten, is the
    same code (ltbench.code.unwinged)."""
    scripts = tiny_run.root / "scripts"
    old, new = scripts / "ltbench/methods/samplers.py", scripts / "ltbench/datasets/samplers.py"
    users = [p for p in scripts.rglob("*.py") if "ltbench.methods.samplers" in p.read_text()]
    texts = {p: p.read_text() for p in users}
    assert len(users) >= 3  # the trainer and the resampling strategies
    old.rename(new)
    try:
        for path, text in texts.items():
            path.write_text(text.replace("ltbench.methods.samplers", "ltbench.datasets.samplers"))
        assert tiny_run.planned_jobs() == set()
    finally:
        new.rename(old)
        for path, text in texts.items():
            path.write_text(text)
    assert tiny_run.planned_jobs() == set()


def test_moving_the_data_retrains_nothing(tiny_run: Workflow):
    """A subset is what its source holds, not where it lies."""
    folder = tiny_run.root / tiny_config()["datasets"]["folder"]["path"]
    folder.rename(tiny_run.root / "moved")
    try:
        with edited_config(tiny_run, lambda c: c["datasets"]["folder"].update(path="moved")):
            assert tiny_run.planned_jobs() == set()
            extra = sorted((tiny_run.root / "moved/train").iterdir())[0] / "extra.png"
            extra.write_bytes(b"not the same data")
            assert ("materialize", "dataset=folder, ratio=3") in tiny_run.planned_jobs()
            extra.unlink()
    finally:
        (tiny_run.root / "moved").rename(folder)


def test_the_derived_code_closure_covers_every_module_a_script_imports():
    """Snakemake does not track imports: each rule family's code identity is derived from its entry
    script's import closure (ltbench.code), which must hold every ltbench module the script loads."""
    scripts = ("materialize", "train", "posthoc", "extract_metrics", "make_table", "table_html", "plot_run",
               "plot_benchmark", "plot_dataset")
    probes = {}
    for script in scripts:  # one process per script, all at once
        probe = (
            "import runpy, sys\n"
            "sys.path.insert(0, 'scripts')\n"
            f"runpy.run_path('scripts/{script}.py', run_name='probe')\n"
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
            " if n.startswith('ltbench') and not n.startswith('ltbench.strategies.')))\n"
        )
        probes[script] = subprocess.Popen([sys.executable, "-c", probe], cwd=REPO, stdout=subprocess.PIPE, text=True)
    imports = {script: proc.communicate()[0].split() for script, proc in probes.items()}
    assert all(proc.returncode == 0 for proc in probes.values()), "an entry script failed to import"
    from ltbench import code

    for script in scripts:
        closure = set(code.closure(REPO / "scripts" / f"{script}.py"))
        missing = {Path(f).resolve() for f in imports[script]} - closure
        assert not missing, f"scripts/{script}.py imports {sorted(map(str, missing))} outside its derived closure"


def test_the_console_counts_trainings_and_ends_with_the_table(tiny_run: Workflow):
    # redo one (short) training and what depends on it: the console says how far the matrix's trainings are
    run = "results/runs/resnet32-tiny10/weight_balancing/seed0/history.json"
    proc = tiny_run.snakemake("--cores", "1", "--forcerun", run)
    out = proc.stdout + proc.stderr
    assert len(re.findall(r"^(?:local)?rule (?:train|stage2):", out, re.M)) == 1
    assert re.search(r"^\[matrix\] trainings done 1/1, elapsed \d:\d\d:\d\d, ETA 0:00:00$", out, re.M)
    assert "Results (results/table.md): best-epoch test accuracy (%)" in out
    assert re.search(r"^\| ce \(baseline\) \|", out, re.M)


def test_progress_line_counts_planned_trainings_finished_since_the_start(tmp_path):
    from ltbench import progress

    plan = tmp_path / "progress.json"
    runs = [tmp_path / f"run{i}/history.json" for i in range(4)]
    progress.plan([str(r) for r in runs], str(plan))
    assert progress.line(str(plan)).endswith("trainings done 0/4, elapsed 0:00:00, ETA after the first run")
    runs[0].parent.mkdir()
    runs[0].write_text("{}")
    start = json.loads(plan.read_text())["start"]
    assert progress.line(str(plan), now=start + 60) == "[matrix] trainings done 1/4, elapsed 0:01:00, ETA 0:03:00"
    assert progress.line(str(tmp_path / "none.json")) is None

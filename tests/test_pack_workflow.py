"""``train.pack_seeds``: one training job per (benchmark, strategy) trains every seed, each run
keeping its own outputs, and the rerun rules still hold."""

from __future__ import annotations

import json

import pandas as pd

from conftest import make_workflow, tiny_config


def test_packed_seeds_workflow(tmp_path):
    config = tiny_config()
    config["benchmarks"] = {"resnet32-tiny10": config["benchmarks"]["resnet32-tiny10"]}
    config["strategies"] = {k: config["strategies"][k] for k in ("ce", "la_posthoc", "weight_balancing")}
    config["seeds"] = [0, 1]
    config["train"]["pack_seeds"] = True
    wf = make_workflow(tmp_path, config)
    wf.snakemake("--cores", "2", "results/table.csv")

    for strategy in ("ce", "weight_balancing"):
        log = (tmp_path / f"results/logs/train/resnet32-tiny10/{strategy}/seeds.log").read_text()
        assert "2 run(s) side by side" in log
        for seed in (0, 1):
            history = json.loads((tmp_path / f"results/runs/resnet32-tiny10/{strategy}/seed{seed}/history.json")
                                 .read_text())
            assert history["seed"] == seed and history["provenance"]["trained_with_seeds"] == [0, 1]
            assert f"[resnet32-tiny10/{strategy}/seed{seed}] done" in log
    table = pd.read_csv(tmp_path / "results/table.csv")
    assert set(table["strategy"]) == {"ce", "la_posthoc", "weight_balancing"} and len(table) == 6
    assert (tmp_path / "results/table.md").read_text().count("(n=2)") == 9  # 3 tables x 3 rows

    # a second stage reruns alone, as one job for both seeds
    stage2 = tmp_path / "scripts/ltbench/strategies/weight_balancing.py"
    stage2.write_text(stage2.read_text() + "\n# edited\n")
    jobs = wf.planned_jobs()
    assert {(r, w) for r, w in jobs if r in ("train", "finetune")} == {
        ("finetune", "benchmark=resnet32-tiny10, strategy=weight_balancing")}
    assert {w for r, w in jobs if r == "metrics"} == {
        f"benchmark=resnet32-tiny10, strategy=weight_balancing, seed={s}" for s in (0, 1)}

    # one seed's lost output retrains the job (all its seeds) and what depends on it
    (tmp_path / "results/runs/resnet32-tiny10/ce/seed1/history.json").unlink()
    jobs = wf.planned_jobs()
    assert {(r, w) for r, w in jobs if r in ("train", "finetune")} == {
        ("train", "benchmark=resnet32-tiny10, strategy=ce"),
        ("finetune", "benchmark=resnet32-tiny10, strategy=weight_balancing")}
    assert {w for r, w in jobs if r == "posthoc"} == {
        f"benchmark=resnet32-tiny10, strategy=la_posthoc, seed={s}" for s in (0, 1)}

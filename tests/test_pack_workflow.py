"""``train.pack_seeds``: one training job per (benchmark, strategy) trains every seed, each run
keeping its own outputs, and the rerun rules still hold."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from conftest import TINY, make_workflow
from test_pipeline import SEMANTIC

TABLE = "results/table.csv"


def test_packed_seeds_workflow(tmp_path):
    wf = make_workflow(tmp_path, configfiles=(TINY, ".test/packed/config.yaml"))
    config = yaml.safe_load(wf.config_path.read_text())
    wf.snakemake("--cores", "2", TABLE)

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
    main = (tmp_path / "results/table.md").read_text().split("## Best-epoch test accuracy (%)")[1].split("\n## ")[0]
    rows = [line for line in main.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 3 and all("(n=2)" in row and "(n=1)" not in row for row in rows)  # each strategy: 2 seeds

    # packing is how the runs are scheduled, not what they are: turning it off retrains nothing (only a
    # stage 2 reruns, since a packed one reads the stage-1 models of every seed, an unpacked one its own)
    unpacked = config | {"train": config["train"] | {"pack_seeds": False}}
    wf.config_path.write_text(yaml.safe_dump(unpacked, sort_keys=False))
    assert {r for r, _ in wf.planned_jobs(TABLE)} == {"stage2", "metrics", "table"}
    wf.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    # stage 2 reruns alone, as one job for both seeds
    stage2 = tmp_path / "scripts/ltbench/strategies/weight_balancing.py"
    stage2.write_text(stage2.read_text() + SEMANTIC)
    jobs = wf.planned_jobs(TABLE)
    assert {(r, w) for r, w in jobs if r in ("train", "stage2")} == {
        ("stage2", "benchmark=resnet32-tiny10, strategy=weight_balancing")}
    assert {w for r, w in jobs if r == "metrics"} == {
        f"benchmark=resnet32-tiny10, strategy=weight_balancing, seed={s}" for s in (0, 1)}

    # one seed's lost output comes back from the job, which retrains all its seeds
    lost = "results/runs/resnet32-tiny10/ce/seed1/history.json"
    (tmp_path / lost).unlink()
    assert wf.planned_jobs(lost) == {("train", "benchmark=resnet32-tiny10, strategy=ce")}

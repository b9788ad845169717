rule table:
    input:
        metrics=all_runs(rules.metrics.output.metrics),
        # make_table reads each run's history.json beside its metrics.json (its epochs' length)
        histories=all_runs(f"{RUN}/history.json"),
    output:
        csv="results/table.csv",
        md="results/table.md",
        tex="results/table.tex",
    log:
        "results/logs/table.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("table"),
        benchmarks=BENCHMARKS,
        strategies=STRATEGIES,
        reference=TABLE_REFERENCE,
        ratio_grids=RATIO_GRID_MEMBERS,
    script:
        "../scripts/make_table.py"


onsuccess:
    print(table_summary(rules.table.output.md))

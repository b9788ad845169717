rule table:
    input:
        metrics=all_runs(rules.metrics.output.metrics),
        code=code("table"),
    output:
        csv="results/table.csv",
        md="results/table.md",
    log:
        "results/logs/table.log",
    conda:
        "../envs/report.yaml"
    params:
        benchmarks=BENCHMARKS,
        strategies=STRATEGIES,
    script:
        "../scripts/make_table.py"

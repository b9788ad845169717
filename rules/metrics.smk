rule metrics:
    input:
        history=run_file("history.json"),
        predictions=run_file("predictions.npz"),
        index=data_index,
    output:
        metrics=run_file("metrics.json"),
    log:
        "results/logs/metrics/{benchmark}/{strategy}/seed{seed}.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("metrics"),
    script:
        "../scripts/extract_metrics.py"

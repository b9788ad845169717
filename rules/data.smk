rule materialize:
    output:
        index=cfg.DATA_DIR.format(data_id=SUBSET) + "/index.json",
        cache=cfg.DATA_DIR.format(data_id=SUBSET) + "/cache.npz",
    log:
        f"results/logs/materialize/{SUBSET}.log",
    benchmark:
        f"results/benchmarks/materialize/{SUBSET}.tsv"
    conda:
        "../envs/train.yaml"
    params:
        code=code("data"),
        source=dataset_params,
    script:
        "../scripts/materialize.py"

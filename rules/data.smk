rule materialize:
    output:
        index=f"{SUBSET_DIR}/index.json",
        cache=f"{SUBSET_DIR}/cache.npz",
    log:
        f"results/logs/materialize/{SUBSET}.log",
    benchmark:
        f"results/timings/materialize/{SUBSET}.tsv"
    conda:
        "../envs/train.yaml"
    params:
        code=code("data"),
        source=dataset_params,
    script:
        "../scripts/materialize.py"

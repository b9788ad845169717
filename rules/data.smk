rule materialize:
    output:
        index="results/data/{dataset}-lt{ratio}/index.json",
        cache="results/data/{dataset}-lt{ratio}/cache.npz",
    log:
        "results/logs/materialize/{dataset}-lt{ratio}.log",
    benchmark:
        "results/benchmarks/materialize/{dataset}-lt{ratio}.tsv"
    conda:
        "../envs/train.yaml"
    params:
        code=code("data"),
        source=dataset_params,
    script:
        "../scripts/materialize.py"

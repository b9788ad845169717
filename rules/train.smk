rule train:
    input:
        index=data_index,
        cache=data_cache,
        strategy=strategy_file,
        code=TRAIN_CODE,
    output:
        history="results/runs/{benchmark}/{strategy}/seed{seed}/history.json",
        predictions="results/runs/{benchmark}/{strategy}/seed{seed}/predictions.npz",
    log:
        "results/logs/train/{benchmark}/{strategy}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{benchmark}/{strategy}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=train_gpus,
        runtime=config["train"]["runtime"],
        mem_mb=config["train"]["mem_mb"],
    params:
        benchmark=benchmark_params,
        strategy=strategy_params,
        recipe=config["recipe"],
    script:
        "../scripts/train.py"

rule train:
    input:
        index=data_index,
        cache=data_cache,
        strategy=strategy_file,
        code=TRAIN_CODE,
    output:
        history="results/runs/{benchmark}/{strategy}/seed{seed}/history.json",
        predictions="results/runs/{benchmark}/{strategy}/seed{seed}/predictions.npz",
        model="results/runs/{benchmark}/{strategy}/seed{seed}/model.pt",
    log:
        "results/logs/train/{benchmark}/{strategy}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{benchmark}/{strategy}/seed{seed}.tsv"
    wildcard_constraints:
        strategy=alternatives(TRAINED),
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


# Second stage (e.g. weight balancing): the same training script, started from the final
# weights of the strategy named by the config key ``stage1``; reruns without rerunning stage 1.
use rule train as finetune with:
    input:
        index=data_index,
        cache=data_cache,
        strategy=strategy_file,
        code=TRAIN_CODE,
        init_model=stage1_model,
    wildcard_constraints:
        strategy=alternatives(STAGE2),

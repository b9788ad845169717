# One job per (benchmark, strategy, seed), or with ``train.pack_seeds`` one job per (benchmark,
# strategy) that trains every seed side by side; either way each run has its own outputs.
rule train:
    input:
        index=data_index,
        cache=data_cache,
    output:
        **train_outputs(),
    log:
        train_job_file("results/logs/train", ".log"),
    benchmark:
        train_job_file("results/timings/train", ".tsv")
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
        code=code("train"),
        benchmark=benchmark_params,
        strategy=strategy_params,
        recipe=recipe_params,
        precision=config["train"].get("precision", "auto"),
    script:
        "../scripts/train.py"


# Stage 2 (e.g. weight balancing): the same training script, started from the final
# weights of the strategy named by the config key ``stage1``; reruns without rerunning stage 1.
use rule train as stage2 with:
    input:
        index=data_index,
        cache=data_cache,
        init_model=stage1_models,
    wildcard_constraints:
        strategy=alternatives(STAGE2),


onstart:
    progress.plan(planned_trainings(workflow.dag))

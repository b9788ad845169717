rule posthoc:
    input:
        history=base_history,
        predictions=base_predictions,
    output:
        history=run_file("history.json"),
        predictions=run_file("predictions.npz"),
    log:
        "results/logs/posthoc/{benchmark}/{strategy}/seed{seed}.log",
    wildcard_constraints:
        strategy=alternatives(POSTHOC),
    conda:
        "../envs/train.yaml"
    params:
        code=code("posthoc"),
        strategy=strategy_params,
    script:
        "../scripts/posthoc.py"

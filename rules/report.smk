# Figures and the results table for `snakemake --report`: they read the files that training,
# metrics and materialization wrote, so they rebuild without retraining.


# The report sorts runs by their labels as text, so a run's strategy label leads with the strategy's
# position in config order ("1. ce"; zero-padded past 9 strategies) to list runs in that order.


rule table_html:
    input:
        md=rules.table.output.md,
    output:
        html=report(
            "results/table.html",
            caption="../report/table.rst",
            category="1. Results table",
            labels={"table": "best, final and shot-group test accuracy"},
        ),
    log:
        "results/logs/report/table_html.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("table_html"),
    script:
        "../scripts/table_html.py"


rule plot_benchmark:
    input:
        metrics=expand(
            rules.metrics.output.metrics,
            strategy=STRATEGIES,
            seed=SEEDS,
            allow_missing=True,
        ),
        histories=expand(
            run_file("history.json"),
            strategy=STRATEGIES,
            seed=SEEDS,
            allow_missing=True,
        ),
    output:
        curves=report(
            "results/plots/benchmarks/{benchmark}/curves.png",
            caption="../report/curves_benchmark.rst",
            category="2. Benchmarks",
            subcategory="{benchmark}",
            labels={"figure": "learning curves, all strategies"},
        ),
        per_class=report(
            "results/plots/benchmarks/{benchmark}/per_class.png",
            caption="../report/per_class.rst",
            category="2. Benchmarks",
            subcategory="{benchmark}",
            labels={
                "figure": "per-class accuracy vs class size, difference to reference"
            },
        ),
        shots=report(
            "results/plots/benchmarks/{benchmark}/shots.png",
            caption="../report/shots.rst",
            category="2. Benchmarks",
            subcategory="{benchmark}",
            labels={"figure": "many/medium/few-shot accuracy"},
        ),
        robustness=report(
            "results/plots/benchmarks/{benchmark}/robustness.png",
            caption="../report/robustness.rst",
            category="2. Benchmarks",
            subcategory="{benchmark}",
            labels={"figure": "accuracy across test priors, reliability"},
        ),
        differences=report(
            "results/plots/benchmarks/{benchmark}/differences.png",
            caption="../report/differences.rst",
            category="2. Benchmarks",
            subcategory="{benchmark}",
            labels={"figure": "paired difference to the reference"},
        ),
    log:
        "results/logs/report/plot_benchmark/{benchmark}.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("plot_benchmark"),
        strategies=STRATEGIES,
        reference=TABLE_REFERENCE,
    script:
        "../scripts/plot_benchmark.py"


rule plot_run:
    input:
        history=run_file("history.json"),
        predictions=run_file("predictions.npz"),
        index=data_index,
    output:
        curves=report(
            "results/plots/runs/{benchmark}/{strategy}/seed{seed}/curves.png",
            caption="../report/curves.rst",
            category="3. Runs",
            subcategory="{benchmark}",
            labels=run_labels("learning curves"),
        ),
        confusion=report(
            "results/plots/runs/{benchmark}/{strategy}/seed{seed}/confusion.png",
            caption="../report/confusion.rst",
            category="3. Runs",
            subcategory="{benchmark}",
            labels=run_labels("confusion matrix"),
        ),
    log:
        "results/logs/report/plot_run/{benchmark}/{strategy}/seed{seed}.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("plot_run"),
    script:
        "../scripts/plot_run.py"


rule plot_dataset:
    input:
        index=rules.materialize.output.index,
    output:
        histogram=report(
            "results/plots/data/{dataset}-lt{ratio}.png",
            caption="../report/dataset.rst",
            category="4. Datasets",
            labels={"dataset": "{dataset}", "imbalance ratio": "{ratio}"},
        ),
    log:
        "results/logs/report/plot_dataset/{dataset}-lt{ratio}.log",
    conda:
        "../envs/report.yaml"
    params:
        code=code("plot_dataset"),
    script:
        "../scripts/plot_dataset.py"


# Sweep figures of the grids in the matrix (ltbench/grids.py, ltbench/reporting/sweeps.py).
rule plot_ratio_sweep:
    input:
        metrics=ratio_sweep_metrics,
    output:
        figure=report(
            "results/plots/sweeps/benchmarks/{grid}.png",
            caption="../report/sweep_ratio.rst",
            category="5. Sweeps",
            labels={"figure": "{grid}: accuracy across imbalance ratios"},
        ),
    log:
        "results/logs/report/plot_ratio_sweep/{grid}.log",
    wildcard_constraints:
        grid=alternatives(RATIO_GRIDS),
    conda:
        "../envs/report.yaml"
    params:
        code=code("plot_sweeps"),
        strategies=STRATEGIES,
    script:
        "../scripts/plot_sweeps.py"


rule plot_param_sweep:
    input:
        metrics=param_sweep_metrics,
    output:
        figure=report(
            "results/plots/sweeps/strategies/{grid}.png",
            caption="../report/sweep_params.rst",
            category="5. Sweeps",
            labels={"figure": "{grid}: accuracy against its parameter"},
        ),
    log:
        "results/logs/report/plot_param_sweep/{grid}.log",
    wildcard_constraints:
        grid=alternatives(PARAM_GRIDS),
    conda:
        "../envs/report.yaml"
    params:
        code=code("plot_sweeps"),
        origins=param_sweep_origins,
        benchmarks=BENCHMARKS,
        reference=TABLE_REFERENCE,
    script:
        "../scripts/plot_sweeps.py"

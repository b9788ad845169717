"""Speed (and accuracy) of the pipeline's trainer side by side with the reference trainer.

    python scripts/benchmark/speed.py --benchmark resnet32-cifar10lt --epochs 5 \\
        --trainers pipeline,reference --strategies ce --seeds 0 [--concurrent 1,2,4,8] --out speed.json

Needs the benchmark's materialized subset (results/data/...). Prints a markdown table: per trainer,
the first epoch (warm-up, compilation), the steady-state epoch (median of the others; train +
test), the whole run, images/s and achieved TFLOP/s (forward FLOPs counted from the model's
convolutions and linear layers, x3 for a training step); then mean best test accuracy per
trainer and strategy over the seeds; with --concurrent, the throughput of k pipeline trainings
sharing the device.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.reference_trainer import train_reference  # noqa: E402
from ltbench import config as cfg  # noqa: E402
from ltbench import strategies  # noqa: E402
from ltbench.data import load_cache  # noqa: E402
from ltbench.devices import select_device  # noqa: E402
from ltbench.io import read_json, write_json  # noqa: E402
from ltbench.models import build_model  # noqa: E402
from ltbench.train import Recipe, RunSpec, run, strategy_context  # noqa: E402


def forward_flops(arch: str, num_classes: int) -> float:
    """FLOPs of one 32x32 forward pass: 2 * multiply-adds of every Conv2d and Linear layer."""
    model, total = build_model(arch, num_classes).eval(), [0]

    def count(module, inputs, output):
        weight = module.weight
        per_output = weight[0].numel() if isinstance(module, torch.nn.Conv2d) else weight.shape[1]
        total[0] += 2 * per_output * output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return float(total[0])


def pipeline_run(config: dict, benchmark: str, strategy: str, seed: int, recipe: Recipe, workdir: Path) -> dict:
    """One run of the pipeline's trainer; returns its history."""
    data = cfg.DATA_DIR.format(data_id=cfg.benchmark(config, benchmark).data_id)
    out = workdir / f"{strategy}-{seed}"
    spec = RunSpec(
        benchmark=cfg.benchmark(config, benchmark), strategy=cfg.strategy(config, strategy), seed=seed,
        recipe=recipe, device=config["train"]["device"], threads=config["train"]["threads"],
        index_path=f"{data}/index.json", cache_path=f"{data}/cache.npz", history_path=str(out / "history.json"),
        predictions_path=str(out / "predictions.npz"), model_path=str(out / "model.pt"),
        checkpoint_path=str(out / "checkpoint.pt"), checkpoint_every=0,
    )
    return run(spec)


def reference_run(config: dict, benchmark: str, strategy: str, seed: int, recipe: Recipe) -> dict:
    """One run of the reference trainer with the strategy's class weights."""
    bench = cfg.benchmark(config, benchmark)
    data = cfg.DATA_DIR.format(data_id=bench.data_id)
    index = read_json(f"{data}/index.json")
    spec = RunSpec(bench, cfg.strategy(config, strategy), seed, recipe, "auto", 1, "", "", "", "", "", "")
    method = strategies.resolve(spec.strategy, index["class_counts"], strategy_context(spec))
    device = select_device(config["train"]["device"], config["train"]["threads"])
    return train_reference(load_cache(f"{data}/cache.npz"), index, bench.arch, recipe, method.weights, seed, device)


def summarize(name: str, histories: list[dict], flops: float, n_train: int, n_test: int) -> dict:
    """First-epoch, steady-state and whole-run seconds, images/s and TFLOP/s over the runs."""
    seconds = [e["seconds"] for h in histories for e in h["epochs"][1:]] or [h["epochs"][0]["seconds"] for h in histories]
    steady = statistics.median(seconds)
    return {
        "trainer": name,
        "first_epoch_s": statistics.mean(h["epochs"][0]["seconds"] for h in histories),
        "steady_epoch_s": steady,
        "run_s": statistics.mean(sum(e["seconds"] for e in h["epochs"]) for h in histories),
        "train_images_per_s": n_train / steady,
        "tflops": (3 * flops * n_train + flops * n_test) / steady / 1e12,
    }


def concurrency(args, ks: list[int]) -> list[dict]:
    """Throughput of k pipeline trainings started together as separate processes."""
    rows = []
    for k in ks:
        cmd = [sys.executable, __file__, "--config", args.config, "--benchmark", args.benchmark, "--epochs",
               str(args.epochs), "--trainers", "pipeline", "--strategies", args.strategies.split(",")[0]]
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd + ["--seeds", str(seed)], stdout=subprocess.DEVNULL) for seed in range(k)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - start
        rows.append({"jobs": k, "wall_s": wall, "epochs_per_s": k * args.epochs / wall, "ok": all(c == 0 for c in codes)})
    return rows


def table(rows: list[dict]) -> str:
    """Rows of dicts as a markdown table (floats with 3 significant decimals)."""
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--benchmark", default="resnet32-cifar10lt")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trainers", default="pipeline,reference")
    parser.add_argument("--strategies", default="ce")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--concurrent", default="", help="comma-separated job counts, e.g. 1,2,4,8")
    parser.add_argument("--out", default=None, help="write all numbers here as JSON")
    args = parser.parse_args(argv)
    config = cfg.load_config(args.config)
    recipe = replace(Recipe(**config["recipe"]), epochs=args.epochs)
    bench = cfg.benchmark(config, args.benchmark)
    index = read_json(cfg.DATA_DIR.format(data_id=bench.data_id) + "/index.json")
    flops = forward_flops(bench.arch, index["num_classes"])
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"benchmark": args.benchmark, "epochs": args.epochs, "forward_gflop_per_image": flops / 1e9,
               "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for trainer in args.trainers.split(","):
            for strategy in args.strategies.split(","):
                for seed in seeds:
                    if trainer == "pipeline":
                        history = pipeline_run(config, args.benchmark, strategy, seed, recipe, Path(tmp))
                    else:
                        history = reference_run(config, args.benchmark, strategy, seed, recipe)
                    results["runs"].setdefault(trainer, {}).setdefault(strategy, []).append(
                        {"seed": seed, "best_test_acc": history["best_test_acc"], "epochs": history["epochs"]})
    speed = [summarize(t, [r for runs in by.values() for r in runs], flops, index["num_train"], index["num_test"])
             for t, by in results["runs"].items()]
    accuracy = [{"trainer": t, "strategy": s, "seeds": len(runs),
                 "mean_best_acc": float(np.mean([r["best_test_acc"] for r in runs])),
                 "std_best_acc": float(np.std([r["best_test_acc"] for r in runs], ddof=1)) if len(runs) > 1 else 0.0}
                for t, by in results["runs"].items() for s, runs in by.items()]
    results.update(speed=speed, accuracy=accuracy)
    print(f"{args.benchmark}, {args.epochs} epochs, {results['device']}, torch {torch.__version__},"
          f" {flops / 1e9:.3f} GFLOP/image forward\n")
    print(table(speed) + "\n\n" + table(accuracy))
    if args.concurrent:
        results["concurrency"] = concurrency(args, [int(k) for k in args.concurrent.split(",")])
        print("\n" + table(results["concurrency"]))
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()

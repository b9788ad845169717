"""Speed (and accuracy) of the pipeline's trainer side by side with the reference trainer.

    python scripts/speed/measure.py --benchmark resnet32-cifar10lt --epochs 5 --seeds 0,1,2 \\
        --trainers reference,pipeline,pipeline:compile=reduce-overhead,pipeline:pack=3 \\
        [--concurrent 1,2,4,8] --out speed.json

Needs the benchmark's materialized subset (results/data/...). A trainer is ``reference`` or
``pipeline`` with options after colons: ``compile=<torch.compile mode>`` and ``pack=<k>``
(k seeds side by side in one process, as ``train.pack_seeds`` does) and ``precision=<auto|bf16|fp32>``
(default: the config's ``train.precision``). Prints a markdown table:
per trainer, runs per process, the first epoch (warm-up, compilation), the steady-state epoch
(median of the others; train + test; per process and per run), the whole training per run,
the process's wall time (data loading and compilation included), images/s, achieved TFLOP/s
(forward FLOPs counted from the model's convolutions and linear layers, x3 for a training step)
and its share of the device's bf16 peak, and the per-run speed-up over the first trainer; then
mean best test accuracy per trainer and strategy over the seeds; with --concurrent, the
steady-state throughput of k pipeline trainings (the first pipeline trainer's settings) as separate
processes. The JSON (--out) is rewritten after every trainer; a trainer that fails is recorded
under "errors" with its traceback, the others still run, and the exit status is then 1.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_trainer import train_reference  # noqa: E402
from ltbench import cli  # noqa: E402
from ltbench import config as cfg  # noqa: E402
from ltbench import strategies  # noqa: E402
from ltbench.datasets.data import load_cache  # noqa: E402
from ltbench.training.devices import cpuinfo_field, select_device  # noqa: E402
from ltbench.io import read_json, write_json  # noqa: E402
from ltbench.methods.models import build_model  # noqa: E402
from ltbench.training.spec import Recipe, RunSpec  # noqa: E402
from ltbench.training.provenance import git_commit  # noqa: E402
from ltbench.training.train import run_pack  # noqa: E402


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


def pipeline_runs(config: dict, benchmark: str, strategy: str, seeds: list[int], recipe: Recipe, workdir: Path,
                  compile_mode: str | None, precision: str | None = None) -> list[dict]:
    """The pipeline's trainer on ``seeds`` side by side in one process; returns their histories."""
    data = cfg.DATA_DIR.format(data_id=cfg.benchmark(config, benchmark).data_id)
    specs = []
    for seed in seeds:
        out = workdir / f"{strategy}-{seed}"
        specs.append(RunSpec(
            benchmark=cfg.benchmark(config, benchmark), strategy=cfg.strategy(config, strategy), seed=seed,
            recipe=recipe, device=config["train"]["device"], threads=config["train"]["threads"],
            index_path=f"{data}/index.json", cache_path=f"{data}/cache.npz", history_path=str(out / "history.json"),
            predictions_path=str(out / "predictions.npz"), model_path=str(out / "model.pt"),
            checkpoint_path=str(out / "checkpoint.pt"), checkpoint_every=0, compile=compile_mode,
            precision=precision or config["train"].get("precision", "auto"),
        ))
    return run_pack(specs)


def reference_run(config: dict, benchmark: str, strategy: str, seed: int, recipe: Recipe) -> dict:
    """One run of the reference trainer with the strategy's class weights."""
    bench = cfg.benchmark(config, benchmark)
    data = cfg.DATA_DIR.format(data_id=bench.data_id)
    index = read_json(f"{data}/index.json")
    context = strategies.context(asdict(bench), recipe.epochs)
    method = strategies.resolve(cfg.strategy(config, strategy), index["class_counts"], context)
    device = select_device(config["train"]["device"], config["train"]["threads"])
    return train_reference(load_cache(f"{data}/cache.npz", index), index, bench.arch, recipe, method.weights, seed, device)


# bf16 dense tensor-core peaks from NVIDIA's data sheets (TFLOP/s), by a substring of the device name
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0}


def bf16_peak(device_name: str) -> float | None:
    """The device's bf16 dense peak in TFLOP/s, if known."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in device_name), None)


def parse_trainer(text: str) -> dict:
    """``reference`` or ``pipeline[:compile=MODE][:pack=K][:precision=P]`` as {"name", "kind", "compile", "pack",
    "precision"}."""
    kind, *options = text.split(":")
    if kind not in ("reference", "pipeline"):
        raise SystemExit(f"unknown trainer {text!r}: use reference or pipeline[:compile=MODE][:pack=K][:precision=P]")
    settings = dict(option.split("=", 1) for option in options)
    unknown = set(settings) - {"compile", "pack", "precision"}
    if unknown or (kind == "reference" and settings):
        raise SystemExit(f"trainer {text!r}: unknown options {sorted(unknown or settings)}")
    return {"name": text, "kind": kind, "compile": settings.get("compile"), "pack": int(settings.get("pack", 1)),
            "precision": settings.get("precision")}


def summarize(trainer: dict, histories: list[dict], flops: float, n_train: int, n_test: int, peak: float | None) -> dict:
    """First-epoch, steady-state and whole-run seconds, images/s and TFLOP/s over the runs of ``trainer``
    (a packed process's epoch time is shared by its ``pack`` runs)."""
    k = trainer["pack"]
    seconds = [e["seconds"] for h in histories for e in h["epochs"][1:]] or [h["epochs"][0]["seconds"] for h in histories]
    steady = statistics.median(seconds)
    tflops = k * (3 * flops * n_train + flops * n_test) / steady / 1e12
    return {
        "trainer": trainer["name"],
        "runs_per_process": k,
        "precision": "/".join(sorted({h["provenance"]["precision"] for h in histories})),
        "first_epoch_s": statistics.mean(h["epochs"][0]["seconds"] for h in histories),
        "steady_epoch_s": steady,
        "steady_epoch_per_run_s": steady / k,
        "train_per_run_s": statistics.mean(sum(e["seconds"] for e in h["epochs"]) for h in histories) / k,
        "process_wall_s": statistics.mean(h["provenance"]["wall_seconds"] for h in histories),
        "train_images_per_s": k * n_train / steady,
        "tflops": tflops,
        "pct_of_bf16_peak": 100 * tflops / peak if peak else float("nan"),
    }


def concurrency(args, ks: list[int], trainer: str, workdir: Path) -> list[dict]:
    """Steady-state throughput of k ``trainer`` processes (one seed each) started together on the device:
    each process reports its own steady epoch (median of its epochs after the first, so start-up
    and compilation are left out), and the k processes' training images per second are summed."""
    rows = []
    for k in ks:
        cmd = [sys.executable, __file__, *(f"--config={path}" for path in cli.config_files(args)),
               *([f"--threads={args.threads}"] if args.threads else []), "--benchmark", args.benchmark, "--epochs",
               str(args.epochs), "--trainers", trainer, "--strategies", args.strategies.split(",")[0]]
        outs = [workdir / f"concurrent-{k}-{seed}.json" for seed in range(k)]
        start = time.perf_counter()
        procs = [subprocess.Popen(cmd + ["--seeds", str(seed), "--out", str(out)], stdout=subprocess.DEVNULL)
                 for seed, out in zip(range(k), outs)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - start
        speeds = [read_json(out)["speed"][0] for out in outs if out.is_file() and read_json(out)["speed"]]
        rows.append({"trainer": trainer, "jobs": k, "ok": all(c == 0 for c in codes) and len(speeds) == k,
                     "steady_epoch_s": statistics.mean(s["steady_epoch_s"] for s in speeds) if speeds else float("nan"),
                     "train_images_per_s": sum(s["train_images_per_s"] for s in speeds), "wall_s": wall})
    return rows


def measure(trainer: dict, config: dict, args, recipe: Recipe, seeds: list[int], workdir: Path) -> dict:
    """Every strategy and seed of ``args`` under ``trainer``: {strategy: [{"seed", "best_test_acc", "epochs",
    "provenance"}]} (packed trainers take the seeds ``pack`` at a time)."""
    if len(seeds) % trainer["pack"]:
        raise ValueError(f"trainer {trainer['name']} packs {trainer['pack']} runs per process: give a multiple of"
                         f" {trainer['pack']} seeds, not {len(seeds)}")
    runs = {}
    for strategy in args.strategies.split(","):
        for first in range(0, len(seeds), trainer["pack"]):
            group = seeds[first : first + trainer["pack"]]
            if trainer["kind"] == "pipeline":
                histories = pipeline_runs(config, args.benchmark, strategy, group, recipe, workdir, trainer["compile"],
                                          trainer["precision"])
            else:
                histories = [reference_run(config, args.benchmark, strategy, seed, recipe) for seed in group]
            for seed, history in zip(group, histories):
                runs.setdefault(strategy, []).append(
                    {"seed": seed, "best_test_acc": history["best_test_acc"], "epochs": history["epochs"],
                     "provenance": {"wall_seconds": history["provenance"]["wall_seconds"],
                                    "precision": history["provenance"].get("precision", "fp32")}})
    return runs


def summaries(trainers: list[dict], results: dict, flops: float, index: dict, peak: float | None) -> tuple[list, list]:
    """The speed rows (trainers that finished, with the per-run speed-up over the first of them) and
    the accuracy rows of ``results``."""
    done = [t for t in trainers if t["name"] in results["runs"]]
    speed = [summarize(t, [r for runs in results["runs"][t["name"]].values() for r in runs], flops,
                       index["num_train"], index["num_test"], peak) for t in done]
    for row in speed:
        row["speedup_per_run"] = speed[0]["steady_epoch_per_run_s"] / row["steady_epoch_per_run_s"]
    accuracy = [{"trainer": t, "strategy": s, "seeds": len(runs),
                 "mean_best_acc": float(np.mean([r["best_test_acc"] for r in runs])),
                 "std_best_acc": float(np.std([r["best_test_acc"] for r in runs], ddof=1)) if len(runs) > 1 else 0.0}
                for t, by in results["runs"].items() for s, runs in by.items()]
    return speed, accuracy


def table(rows: list[dict]) -> str:
    """Rows of dicts as a markdown table (floats with 3 significant decimals)."""
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_config(parser)
    parser.add_argument("--benchmark", default="resnet32-cifar10lt")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trainers", default="reference,pipeline",
                        help="comma-separated: reference, pipeline[:compile=MODE][:pack=K]")
    parser.add_argument("--strategies", default="ce")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--concurrent", default="", help="comma-separated job counts, e.g. 1,2,4,8")
    parser.add_argument("--out", default=None, help="write all numbers here as JSON")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of every trainer (default: the config's train.threads)")
    args = parser.parse_args(argv)
    trainers = [parse_trainer(t) for t in args.trainers.split(",")]
    config = cli.read_config(args)
    if args.threads:
        config["train"]["threads"] = args.threads
    recipe = replace(Recipe(**config["recipe"]), epochs=args.epochs)
    bench = cfg.benchmark(config, args.benchmark)
    index = read_json(cfg.DATA_DIR.format(data_id=bench.data_id) + "/index.json")
    flops = forward_flops(bench.arch, index["num_classes"])
    seeds = [int(s) for s in args.seeds.split(",")]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpuinfo_field("model name") or "cpu"
    peak = bf16_peak(device)
    results = {"benchmark": args.benchmark, "epochs": args.epochs, "forward_gflop_per_image": flops / 1e9,
               "device": device, "threads": config["train"]["threads"], "torch": torch.__version__, "commit": git_commit(), "bf16_peak_tflops": peak,
               "runs": {}, "errors": {}, "speed": [], "accuracy": []}
    print(f"{args.benchmark}, {args.epochs} epochs, {device}, torch {torch.__version__},"
          f" {flops / 1e9:.3f} GFLOP/image forward, bf16 peak {peak or 'unknown'} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for trainer in trainers:
            try:
                results["runs"][trainer["name"]] = measure(trainer, config, args, recipe, seeds, Path(tmp))
            except Exception:  # record it and go on: one failing trainer must not lose the others' numbers
                results["errors"][trainer["name"]] = traceback.format_exc()
                print(f"trainer {trainer['name']} failed:\n{results['errors'][trainer['name']]}", flush=True)
            results["speed"], results["accuracy"] = summaries(trainers, results, flops, index, peak)
            if args.out:
                write_json(args.out, results)
        if results["speed"]:
            print(table(results["speed"]) + "\n\n" + table(results["accuracy"]), flush=True)
        if args.concurrent:
            pipeline = next((t["name"] for t in trainers if t["kind"] == "pipeline"), "pipeline")
            results["concurrency"] = concurrency(args, [int(k) for k in args.concurrent.split(",")], pipeline, Path(tmp))
            print("\n" + table(results["concurrency"]), flush=True)
    if args.out:
        write_json(args.out, results)
    if results["errors"]:
        raise SystemExit(f"{len(results['errors'])} trainer(s) failed: {', '.join(results['errors'])}")


if __name__ == "__main__":
    main()

"""Grouped (packed) versus plain convolutions: time of one training step for R runs.

    python scripts/speed/conv_probe.py --runs 1,3,8 --steps 20 --out probe.json
    python scripts/speed/conv_probe.py --arch vgg16bn --runs 15 --how packed --classes 100  # the layout only
    python scripts/speed/conv_probe.py --runs 15 --how packed --layouts channels_last \
        --compile reduce-overhead --eval-batches 1000,2500,10000 --classes 100  # what a loan may switch on

For each R and memory layout (channels_last, contiguous), times a forward, backward and SGD step
of R runs at batch 128 (bf16 autocast on CUDA) two ways: ``packed``, one model with the runs
folded into grouped convolutions (``train.pack_seeds``), and ``plain``, R ordinary models stepped
one after another; with ``--compile``, also the packed step with its forward compiled in each mode
(``compile`` in the row; ``warmup_s``, the warm-up's seconds, carries the compilation); with
``--eval-batches``, the packed evaluation of ``--eval-images`` images in batches of each size
(``how: eval``, ``step_ms`` the whole pass); with ``--profile N``, ``torch.profiler`` over N packed steps
of the largest R in the first layout, its operators by device time (CPU time on a CPU) written to
``--profile-out`` (convolution forward, backward-data and backward-weight, batch norm, elementwise: what
decides how runs should be packed). cuDNN benchmark mode is on, warm-up steps are excluded,
and the time is the median of ``--steps`` steps measured with CUDA events (wall clock on the CPU).
The JSON is rewritten after every measurement.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torch.profiler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltbench.io import write_json  # noqa: E402
from ltbench.methods.models import build_model  # noqa: E402
from ltbench.training.replicas import Runs  # noqa: E402
from ltbench.training.provenance import git_commit  # noqa: E402

LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


class Timer:
    """Elapsed milliseconds of a block: CUDA events on a GPU, the wall clock elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.end.record()
            self.end.synchronize()
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = 1000 * (time.perf_counter() - self.t0)


def step_fns(runs: int, layout, device: torch.device, classes: int, arch: str = "resnet32", plain: bool = True,
             compile_mode: str | None = None, backend: str = "inductor"):
    """The packed and (if ``plain`` and ``runs`` > 1) the plain training step of ``runs`` models of ``arch``,
    each a function of (x, y); the packed model's forward compiled in ``compile_mode`` if given."""
    models = [build_model(arch, classes).to(device) for _ in range(runs)]
    packed = Runs(models, arch, classes, "linear", layout)
    packed.compile(compile_mode, backend)
    plain = [m.to(memory_format=layout) for m in models] if plain and runs > 1 else []
    packed_opt = torch.optim.SGD(packed.trainable(False), lr=0.01, momentum=0.9, weight_decay=5e-4)
    plain_opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for m in plain]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    graphs = device.type == "cuda" and compile_mode == "reduce-overhead"

    def packed_step(x, y):
        if graphs:  # CUDA-graph trees: a new step may overwrite the last one's outputs
            torch.compiler.cudagraph_mark_step_begin()
        with autocast:
            logits = packed(x).float()
        loss = sum(F.cross_entropy(logits[r], y[r]) for r in range(runs))
        packed_opt.zero_grad(set_to_none=True)
        loss.backward()
        packed_opt.step()

    def plain_step(x, y):
        for r, (model, opt) in enumerate(zip(plain, plain_opts)):
            with autocast:
                logits = model(x[r].contiguous(memory_format=layout)).float()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(logits, y[r]).backward()
            opt.step()

    return {"packed": packed_step, **({"plain": plain_step} if plain else {})}


def eval_fn(runs: int, layout, device: torch.device, classes: int, arch: str, batch: int):
    """The packed evaluation of images (N x 3 x 32 x 32, seen by every run) in batches of ``batch``, as the
    trainer evaluates: forward only, bf16 autocast on CUDA, the logits kept as float32."""
    packed = Runs([build_model(arch, classes).to(device) for _ in range(runs)], arch, classes, "linear", layout)
    packed.train(False)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def evaluate(images, _):
        with autocast:
            return [packed(images[i : i + batch], shared=True).float() for i in range(0, len(images), batch)]

    return evaluate


def time_step(fn, x, y, device, steps: int, warmup: int) -> tuple[float, float]:
    """Median milliseconds of ``fn(x, y)`` over ``steps`` steps after ``warmup`` untimed ones, and the warm-up's
    seconds (any compilation and autotuning)."""
    with Timer(device) as t:
        for _ in range(warmup):
            fn(x, y)
    times = []
    for _ in range(steps):
        with Timer(device) as step:
            fn(x, y)
        times.append(step.ms)
    return statistics.median(times), t.ms / 1000


def profile(fn, x, y, device: torch.device, steps: int, out: str, rows: int = 40) -> None:
    """``steps`` calls of ``fn(x, y)`` under ``torch.profiler`` (after one untimed call): the operators' table,
    sorted by device time, written to ``out``."""
    fn(x, y)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if device.type == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(steps):
            fn(x, y)
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    Path(out).write_text(prof.key_averages().table(sort_by=key, row_limit=rows))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="1,3,8")
    parser.add_argument("--arch", default="resnet32")
    parser.add_argument("--how", choices=("both", "packed"), default="both", help="packed: skip the plain models")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated: " + ", ".join(LAYOUTS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", default="", help="comma-separated torch.compile modes of the packed step too")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--eval-batches", default="", help="comma-separated evaluation batch sizes to time")
    parser.add_argument("--eval-images", type=int, default=10_000)
    parser.add_argument("--profile", type=int, default=0, help="packed steps to profile (0: none)")
    parser.add_argument("--profile-out", default="profile.txt")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "commit": git_commit(), "arch": args.arch, "batch": args.batch, "steps": args.steps, "rows": []}

    def record(row: dict) -> None:
        result["rows"].append(row)
        print(row, flush=True)
        if args.out:
            write_json(args.out, result)

    for runs in [int(r) for r in args.runs.split(",")]:
        x = torch.randn(runs, args.batch, 3, 32, 32, device=device)
        y = torch.randint(0, args.classes, (runs, args.batch), device=device)
        images = torch.randn(args.eval_images, 3, 32, 32, device=device) if args.eval_batches else None
        for layout_name in args.layouts.split(","):
            layout = LAYOUTS[layout_name]
            for mode in [None, *filter(None, args.compile.split(","))]:
                fns = step_fns(runs, layout, device, args.classes, args.arch, args.how == "both" and not mode, mode,
                               args.compile_backend)
                for how, fn in fns.items():
                    ms, warm = time_step(fn, x, y, device, args.steps, args.warmup)
                    record({"runs": runs, "layout": layout_name, "how": how, "compile": mode or "off", "step_ms": ms,
                            "step_ms_per_run": ms / runs, "warmup_s": warm})
            for batch in [int(b) for b in filter(None, args.eval_batches.split(","))]:
                fn = eval_fn(runs, layout, device, args.classes, args.arch, batch)
                ms, warm = time_step(fn, images, None, device, max(1, args.steps // 5), 1)
                record({"runs": runs, "layout": layout_name, "how": "eval", "compile": "off", "eval_batch": batch,
                        "step_ms": ms, "step_ms_per_run": ms / runs, "warmup_s": warm})
    if args.profile:
        runs, layout = max(int(r) for r in args.runs.split(",")), LAYOUTS[args.layouts.split(",")[0]]
        x = torch.randn(runs, args.batch, 3, 32, 32, device=device)
        y = torch.randint(0, args.classes, (runs, args.batch), device=device)
        step = step_fns(runs, layout, device, args.classes, args.arch, plain=False)["packed"]
        profile(step, x, y, device, args.profile, args.profile_out)


if __name__ == "__main__":
    main()

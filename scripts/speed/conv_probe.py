"""Grouped (packed) versus plain convolutions: time of one training step for R runs.

    python scripts/speed/conv_probe.py --runs 1,3,8 --steps 20 --out probe.json
    python scripts/speed/conv_probe.py --arch vgg16bn --runs 15 --how packed --classes 100  # the layout only

For each R and memory layout (channels_last, contiguous), times a forward, backward and SGD step
of R runs at batch 128 (bf16 autocast on CUDA) two ways: ``packed``, one model with the runs
folded into grouped convolutions (``train.pack_seeds``), and ``plain``, R ordinary models stepped
one after another. cuDNN benchmark mode is on, warm-up steps are excluded, and the time is the
median of ``--steps`` steps measured with CUDA events (wall clock on the CPU). The JSON is
rewritten after every measurement.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

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


def step_fns(runs: int, layout, device: torch.device, classes: int, arch: str = "resnet32", plain: bool = True):
    """The packed and (if ``plain`` and ``runs`` > 1) the plain training step of ``runs`` models of ``arch``,
    each a function of (x, y)."""
    models = [build_model(arch, classes).to(device) for _ in range(runs)]
    packed = Runs(models, arch, classes, "linear", layout)
    plain = [m.to(memory_format=layout) for m in models] if plain and runs > 1 else []
    packed_opt = torch.optim.SGD(packed.trainable(False), lr=0.01, momentum=0.9, weight_decay=5e-4)
    plain_opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for m in plain]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def packed_step(x, y):
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


def time_step(fn, x, y, device, steps: int, warmup: int) -> float:
    """Median milliseconds of ``fn(x, y)`` over ``steps`` steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn(x, y)
    times = []
    for _ in range(steps):
        with Timer(device) as t:
            fn(x, y)
        times.append(t.ms)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="1,3,8")
    parser.add_argument("--arch", default="resnet32")
    parser.add_argument("--how", choices=("both", "packed"), default="both", help="packed: skip the plain models")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
              "commit": git_commit(), "arch": args.arch, "batch": args.batch, "steps": args.steps, "rows": []}
    for runs in [int(r) for r in args.runs.split(",")]:
        x = torch.randn(runs, args.batch, 3, 32, 32, device=device)
        y = torch.randint(0, args.classes, (runs, args.batch), device=device)
        for layout_name, layout in LAYOUTS.items():
            for how, fn in step_fns(runs, layout, device, args.classes, args.arch, args.how == "both").items():
                ms = time_step(fn, x, y, device, args.steps, args.warmup)
                row = {"runs": runs, "layout": layout_name, "how": how, "step_ms": ms, "step_ms_per_run": ms / runs}
                result["rows"].append(row)
                print(row, flush=True)
                if args.out:
                    write_json(args.out, result)


if __name__ == "__main__":
    main()

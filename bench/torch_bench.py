#!/usr/bin/python3
"""Times PyTorch eager on the module behind an ONNX file (see runtime_models.torch_module_for):
one thread (torch.set_num_threads(1)), torch.no_grad(), eval mode. Prints one JSON object.

usage: torch_bench.py MODEL.onnx BATCH SECONDS
           {"median_us", "p99_us", "iterations", "batch"}; exit status 3 with {"skip": reason}
           when there is no PyTorch module for the file
       torch_bench.py --describe MODEL.onnx...
           one JSON object per line: {"path", "torch": true|false, "reason", "params", "macs"}
           (params: the module's own parameters; MACs per sample of Conv2d and Linear layers)

Warm-up is 0.2 s (at least 3 runs); then runs are timed one by one with perf_counter_ns for
SECONDS (at least 20 runs). Run with Debian's /usr/bin/python3 (PyTorch 1.13).
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_models  # noqa: E402

sys.path.insert(0, runtime_models.ROOT)
from models.train import nets  # noqa: E402  (the zoo's MAC count, for every model here)

SKIP = 3


def describe(paths):
    for path in paths:
        model, shape, reason = runtime_models.torch_module_for(path)
        row = {"path": path, "torch": model is not None, "reason": reason}
        if model is not None:
            row["params"] = sum(p.numel() for p in model.parameters())
            row["macs"] = nets.count_macs(model, torch.zeros(1, *shape))
        print(json.dumps(row), flush=True)
    return 0


def percentile(sorted_times, q):
    return sorted_times[min(len(sorted_times) - 1, max(0, -(-len(sorted_times) * q // 100) - 1))]


def bench(path, batch, seconds):
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    model, shape, reason = runtime_models.torch_module_for(path)
    if model is None:
        print(json.dumps({"skip": reason}))
        return SKIP
    x = torch.rand(batch, *shape)
    times = []
    with torch.no_grad():
        end, warm = time.perf_counter() + 0.2, 0
        while time.perf_counter() < end or warm < 3:
            model(x)
            warm += 1
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 20:
            t0 = time.perf_counter_ns()
            model(x)
            times.append((time.perf_counter_ns() - t0) / 1e3)
    times.sort()
    print(json.dumps({"median_us": times[len(times) // 2], "p99_us": percentile(times, 99),
                      "iterations": len(times), "batch": batch}))
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--describe":
        return describe(argv[1:])
    if len(argv) != 3 or argv[0].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    try:
        batch, seconds = int(argv[1]), float(argv[2])
    except ValueError:
        batch = seconds = 0
    if batch < 1 or not seconds > 0:
        sys.stderr.write("torch_bench: BATCH must be a positive integer, SECONDS positive\n")
        return 2
    if not os.path.isfile(argv[0]):
        sys.stderr.write("torch_bench: no such file: %s\n" % argv[0])
        return 2
    return bench(argv[0], batch, seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Times PyTorch eager (one thread, no_grad) on a bench model; prints one JSON object.

usage: torch_bench.py MODELS_DIR NAME BATCH SECONDS
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runtime_models  # noqa: E402


def main():
    models_dir, name, batch, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    torch.set_num_threads(1)
    model = runtime_models.build(name)
    model.load_state_dict(torch.load(os.path.join(models_dir, name + ".pt")))
    x = torch.rand(batch, 1, 28, 28)
    times = []
    with torch.no_grad():
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            model(x)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 20:
            t0 = time.perf_counter_ns()
            model(x)
            times.append((time.perf_counter_ns() - t0) / 1e3)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times) + 0.999) - 1)]
    print(json.dumps({"median_us": times[len(times) // 2], "p99_us": p99,
                      "iterations": len(times)}))


if __name__ == "__main__":
    main()

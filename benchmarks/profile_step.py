"""Where a training step's time goes: ONNX Runtime's profiler on Netweaver's step graph for a train_bench case.

Builds the case's model, trains one warm-up epoch (graph building, session creation), then swaps the training
session for one with profiling on and trains more epochs. Prints the time per op type and the slowest nodes (each
node's kernel time summed over the profiled steps, divided by the number of steps), and the step's arithmetic at
numpy's float32 matmul peak for comparison.

    python benchmarks/profile_step.py --case conv_classifier [--epochs N] [--top K] [--threads N]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core as nw  # noqa: E402
from core import runtime  # noqa: E402
from train_bench import CASES, _metrics, matmul_peak  # noqa: E402


def profiled_fit(name: str, epochs: int, threads: int | None):
    ours, _, x, y, batch, loss, flops = CASES[name][1](None)
    ours.compile(optimizer=nw.optimizers.Adam(1e-3), loss=loss, metrics=_metrics(loss))
    ours.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    runner = ours._train_state["train"]
    options = runtime.session_options(threads=threads or ours._threads_for(batch, runner.program.macs_per_sample), training=True)
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "step")
    runner.replace_session(runtime.create_session(runner.program.model_proto, "cpu", options=options)[0])
    ours.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=False)
    steps = epochs * -(-len(x) // batch)
    return runner.session.end_profiling(), steps, flops


def summarize(path: str, steps: int):
    events = json.loads(Path(path).read_text())
    by_type, by_node = collections.Counter(), collections.Counter()
    shapes = {}
    run_total = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            run_total += e["dur"]
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op = e["args"].get("op_name", "?")
        by_type[op] += e["dur"]
        by_node[(e["name"][:-len("_kernel_time")], op)] += e["dur"]
        shapes[e["name"][:-len("_kernel_time")]] = [list(d.values())[0] for d in e["args"].get("input_type_shape", [])]
    return (run_total / steps, {k: v / steps for k, v in by_type.items()}, {k: v / steps for k, v in by_node.items()},
            shapes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    path, steps, flops = profiled_fit(args.case, args.epochs, args.threads)
    per_run, by_type, by_node, shapes = summarize(path, steps)
    kernels = sum(by_type.values())
    peak = matmul_peak()
    print(f"{args.case}: {steps} steps, model_run {per_run / 1e3:.2f} ms/step, kernels {kernels / 1e3:.2f} ms/step; "
          f"arithmetic {flops / 1e6:.1f} MFLOP = {flops / peak * 1e3:.2f} ms at numpy's peak "
          f"({peak / 1e9:.1f} GFLOP/s)")
    print("per op type (ms/step, share of kernel time, nodes):")
    counts = collections.Counter(op for _, op in by_node)
    for op, us in sorted(by_type.items(), key=lambda kv: -kv[1]):
        print(f"  {op:24s} {us / 1e3:8.3f}  {us / kernels:6.1%}  {counts[op]}")
    print(f"top {args.top} nodes (ms/step):")
    for (node, op), us in sorted(by_node.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {us / 1e3:8.3f}  {op:18s} {node:24s} inputs {shapes[node]}")


if __name__ == "__main__":
    main()

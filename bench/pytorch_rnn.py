#!/usr/bin/python3
"""PyTorch's nn.LSTM / nn.GRU / nn.RNN on the recurrent_bench shapes, joined with its results.

Times one training step (forward + backward of sum(out * dy), grads zeroed) per repetition,
median after 2 warm-up steps, float32 on the CPU, batch-first off (T, N, C) as rnnflow.
Run under /usr/bin/python3 (Debian's python3-torch). Threading set-ups, each in a fresh
process because OpenMP reads OMP_WAIT_POLICY at start-up:
  t1-passive  torch.set_num_threads(1), OMP_WAIT_POLICY=passive
  t2-passive  torch.set_num_threads(2), OMP_WAIT_POLICY=passive
  t2-default  torch.set_num_threads(2), OMP_WAIT_POLICY unset (spinning threads)

Usage: pytorch_rnn.py [--reps 5] [--cells lstm,gru,rnn] [--rnnflow RESULTS_FILE]
  RESULTS_FILE: recurrent_bench output (its RESULT lines); prints the joined table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = [(35, 20, 650, 2), (20, 20, 200, 2), (50, 64, 512, 1)]
SETUPS = {"t1-passive": (1, "passive"), "t2-passive": (2, "passive"), "t2-default": (2, None)}


def worker(threads, reps, cells):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    out = {}
    for cell in cells:
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        for T, N, H, L in SHAPES:
            m = cls(H, H, num_layers=L)
            x = torch.randn(T, N, H, requires_grad=True)
            dy = torch.randn(T, N, H)
            times = []
            for r in range(reps + 2):
                t0 = time.perf_counter()
                m.zero_grad(set_to_none=False)
                y, _ = m(x)
                y.backward(dy)
                dt = (time.perf_counter() - t0) * 1e3
                if r >= 2:
                    times.append(dt)
            out[f"{cell} {T} {N} {H} {L}"] = statistics.median(times)
    return out


def run_setup(name, reps, cells):
    threads, policy = SETUPS[name]
    env = dict(os.environ)
    # OpenBLAS keeps a thread pool of its own: give it the same count, or it fights torch's.
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:  # PyTorch's default set-up: no wait policy, whatever the caller exported
        env.pop("OMP_WAIT_POLICY", None)
    cmd = [sys.executable, __file__, "--worker", str(threads), "--reps", str(reps), "--cells", ",".join(cells)]
    res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def blas_warning():
    """Debian's torch calls whatever libblas.so.3 the alternatives system selects."""
    try:
        link = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    except OSError:
        return
    if "openblas" not in link:
        print(f"warning: libblas.so.3 is {link}, the reference BLAS: PyTorch will be many times slower "
              "than it can be; apt-get install libopenblas0-pthread first", file=sys.stderr)


def main():
    blas_warning()
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--rnnflow", help="recurrent_bench output to join")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    cells = a.cells.split(",")
    if a.worker:
        print(json.dumps(worker(a.worker, a.reps, cells)))
        return
    torch_ms = {}
    for name in SETUPS:
        reps = a.reps if name != "t2-default" else max(3, a.reps // 2)  # 3-8x slower: fewer
        torch_ms[name] = run_setup(name, reps, cells)
    ours = {}
    if a.rnnflow:
        for line in open(a.rnnflow):
            if line.startswith("RESULT "):
                f = line.split()
                cell, T, N, C, H, L = f[1], *map(int, f[2:7])
                ours[f"{cell} {T} {N} {H} {L}"] = (float(f[7]), float(f[8]), float(f[9]))
    hdr = ("| cell | shape (T, N, H, layers) | stage ms | raw oneDNN ms | stage/raw | stage GFLOP/s "
           "| torch 1t passive ms | torch 2t passive ms | torch 2t default ms | torch best / stage |")
    print(hdr)
    print("|" + " --- |" * (hdr.count("|") - 1))
    for cell in cells:
        for T, N, H, L in SHAPES:
            k = f"{cell} {T} {N} {H} {L}"
            t1, t2, td = (torch_ms[s][k] for s in SETUPS)
            best = min(t1, t2)
            if k in ours:
                sm, rm, gf = ours[k]
                print(f"| {cell} | {T}, {N}, {H}, {L} | {sm:.1f} | {rm:.1f} | {sm / rm:.3f} | {gf * 1e3 / sm:.0f} "
                      f"| {t1:.1f} | {t2:.1f} | {td:.1f} | {best / sm:.2f}x |")
            else:
                print(f"| {cell} | {T}, {N}, {H}, {L} | | | | | {t1:.1f} | {t2:.1f} | {td:.1f} | |")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch's side of bench/ptb_lm.sh: the Zaremba et al. 2014 word LM on the Penn Treebank.

The same model and training step as graphs/ptb_small.yaml and graphs/ptb_medium.yaml:
embedding -> [dropout] -> 2-layer nn.LSTM (dropout between layers) -> [dropout] -> nn.Linear to
10k words -> CrossEntropyLoss (mean per token), state carried across batches (detached), SGD with
the gradient clipped by global norm (lr = T, clip = 5 / T: Zaremba's lr 1 and clip 5 on the loss
summed over the T steps), uniform init. Data: ptb.train.txt with <eos> per line, 20 contiguous
streams, batches of T steps, as rnnflow's lm_batches.

Times `--steps` training steps after `--warmup` steps (wall clock, float32, CPU) and prints one
JSON line per set-up: tokens/s, ms per step, peak RSS (getrusage), and the share of the step spent
in the output projection + loss (timed separately on the same shapes). Each set-up runs in a fresh
process because OpenMP reads OMP_WAIT_POLICY at start-up:
  t1-passive  torch.set_num_threads(1), OMP_WAIT_POLICY=passive
  t2-passive  torch.set_num_threads(2), OMP_WAIT_POLICY=passive
  t2-default  torch.set_num_threads(2), OMP_WAIT_POLICY unset
OPENBLAS_NUM_THREADS is set to the set-up's thread count (OpenBLAS keeps a pool of its own).

Usage: pytorch_ptb.py --data DIR [--configs small,medium] [--steps 50] [--warmup 5]
         [--setups t1-passive,t2-passive,t2-default] [--rnnflow FILE --ceiling GFLOPS]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {
    # hidden, bptt, dropout, init
    "small": (200, 20, 0.0, 0.1),
    "medium": (650, 35, 0.5, 0.05),
}
SETUPS = {"t1-passive": (1, "passive"), "t2-passive": (2, "passive"), "t2-default": (2, None)}
BATCH = 20


def read_ids(path, vocab):
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            for w in line.split():
                ids.append(vocab.setdefault(w, len(vocab)))
            ids.append(vocab.setdefault("<eos>", len(vocab)))
    return ids


def worker(a):
    import torch
    import torch.nn as nn
    threads = a.worker
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    vocab = {}
    train = read_ids(os.path.join(a.data, "ptb.train.txt"), vocab)
    V = len(vocab)
    data = torch.tensor(train, dtype=torch.long)
    out = {"threads": threads, "vocab": V, "train_tokens": len(train)}
    for name in a.configs.split(","):
        H, T, p, init = CONFIGS[name]

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(V, H)
                self.drop = nn.Dropout(p)
                self.lstm = nn.LSTM(H, H, num_layers=2, dropout=p)
                self.proj = nn.Linear(H, V)
                for w in self.parameters():
                    nn.init.uniform_(w, -init, init)

            def forward(self, x, state):
                y, state = self.lstm(self.drop(self.embed(x)), state)
                return self.proj(self.drop(y)), state

        model = Model()
        model.train()
        lr, clip = float(T), 5.0 / T
        loss_fn = nn.CrossEntropyLoss()
        L = (len(data) - 1) // BATCH
        src = data[: BATCH * L + 1]
        xs = src[:-1].view(BATCH, L).t().contiguous()  # (L, N): column c is stream c
        ys = src[1:].view(BATCH, L).t().contiguous()
        state = None
        times = []
        n_steps = a.warmup + a.steps
        for b in range(n_steps):
            t0 = time.perf_counter()
            x = xs[b * T:(b + 1) * T]
            y = ys[b * T:(b + 1) * T]
            if state is not None:
                state = tuple(s.detach() for s in state)
            model.zero_grad(set_to_none=False)
            logits, state = model(x, state)
            loss = loss_fn(logits.view(-1, V), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            with torch.no_grad():
                for w in model.parameters():
                    w.add_(w.grad, alpha=-lr)
            loss_value = float(loss)
            times.append(time.perf_counter() - t0)
        steady = sum(times[a.warmup:])
        # The output projection + loss alone (forward and backward) on the same shapes.
        h = torch.randn(T, BATCH, H, requires_grad=True)
        proj_times = []
        for r in range(a.warmup + min(a.steps, 20)):
            t0 = time.perf_counter()
            model.proj.zero_grad(set_to_none=False)
            loss = loss_fn(model.proj(h).view(-1, V), ys[:T].reshape(-1))
            loss.backward()
            if r >= a.warmup:
                proj_times.append(time.perf_counter() - t0)
        proj_ms = 1e3 * sum(proj_times) / len(proj_times)
        step_ms = 1e3 * steady / a.steps
        out[name] = {"tokens_per_s": a.steps * T * BATCH / steady, "step_ms": step_ms,
                     "proj_loss_share": proj_ms / step_ms, "last_loss": loss_value,
                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    return out


def run_setup(a, setup):
    threads, policy = SETUPS[setup]
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    else:  # the library's default (spinning) threads, whatever the caller exported
        env.pop("OMP_WAIT_POLICY", None)
    # One process per configuration: peak RSS is then the configuration's own.
    res = {}
    for cfg in a.configs.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--data", a.data,
               "--configs", cfg, "--steps", str(a.steps), "--warmup", str(a.warmup)]
        r = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        res.update(json.loads(r.stdout.strip().splitlines()[-1]))
    return res


def blas_warning():
    link = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    if "openblas" not in link:
        print(f"warning: libblas.so.3 is {link}, the reference BLAS: PyTorch will be many times slower "
              "than it can be; apt-get install libopenblas0-pthread first", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--configs", default="small,medium")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--setups", default="t1-passive,t2-passive,t2-default")
    ap.add_argument("--rnnflow", help="file of RNNFLOW lines from bench/ptb_lm.sh to join")
    ap.add_argument("--ceiling", type=float, default=0.0, help="measured matmul GFLOP/s ceiling")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return
    blas_warning()
    configs = a.configs.split(",")
    setups = a.setups.split(",")
    torch_res = {}
    for setup in setups:
        torch_res[setup] = r = run_setup(a, setup)
        for cfg in configs:
            c = r[cfg]
            print(f"TORCH {setup} {cfg} tokens_per_s={c['tokens_per_s']:.0f} step_ms={c['step_ms']:.1f} "
                  f"proj_loss_share={c['proj_loss_share']:.2f} peak_rss_mb={c['peak_rss_mb']:.0f} "
                  f"loss={c['last_loss']:.3f}", flush=True)
    if not a.rnnflow:
        return
    ours = {}  # config -> set-up -> figures
    for line in open(a.rnnflow):
        f = line.split()
        if f and f[0] == "RNNFLOW":
            ours.setdefault(f[1], {})[f[2]] = {k: float(v) for k, v in (x.split("=") for x in f[3:])}
    print()
    hdr = ("| config | side | " + " | ".join(f"{s} tokens/s" for s in setups) +
           " | best tokens/s | step GFLOP/s (best) | share of ceiling | peak RSS MB (best) |")
    print(hdr)
    print("|" + " --- |" * (hdr.count("|") - 1))
    share = lambda g: f"{g / a.ceiling:.0%}" if a.ceiling > 0 else ""
    for cfg in configs:
        if cfg not in ours:
            continue
        o = {k: v for k, v in ours[cfg].items() if "-bf16" not in k}
        bf16 = {k: v for k, v in ours[cfg].items() if "-bf16" in k}
        ob = max(o, key=lambda s: o[s]["tokens_per_s"])
        tb = max(setups, key=lambda s: torch_res[s][cfg]["tokens_per_s"])
        t = torch_res[tb][cfg]
        tg = o[ob]["gflops"] / o[ob]["tokens_per_s"] * t["tokens_per_s"]  # same flops per token
        print(f"| {cfg} | rnnflow | " + " | ".join(f"{o[s]['tokens_per_s']:.0f}" if s in o else "" for s in setups) +
              f" | {o[ob]['tokens_per_s']:.0f} ({ob}) | {o[ob]['gflops']:.0f} | {share(o[ob]['gflops'])} "
              f"| {o[ob]['peak_rss_mb']:.0f} |")
        print(f"| {cfg} | PyTorch | " + " | ".join(f"{torch_res[s][cfg]['tokens_per_s']:.0f}" for s in setups) +
              f" | {t['tokens_per_s']:.0f} ({tb}) | {tg:.0f} | {share(tg)} | {t['peak_rss_mb']:.0f} |")
        print(f"| {cfg} | rnnflow / PyTorch | " + " | ".join(
              f"{o[s]['tokens_per_s'] / torch_res[s][cfg]['tokens_per_s']:.2f}x" if s in o else "" for s in setups) +
              f" | **{o[ob]['tokens_per_s'] / t['tokens_per_s']:.2f}x** | | | |")
        for k, v in bf16.items():
            what = "output layer bf16" if k.endswith("-bf16out") else "LSTM + output layer bf16"
            print(f"| {cfg} | rnnflow, {what} ({k}) | " + " | ".join("" for _ in setups) +
                  f" | {v['tokens_per_s']:.0f}, **{v['tokens_per_s'] / t['tokens_per_s']:.2f}x** PyTorch's best "
                  f"| {v['gflops']:.0f} | {share(v['gflops'])} | {v['peak_rss_mb']:.0f} |")
    for cfg in configs:
        tb = max(setups, key=lambda s: torch_res[s][cfg]["tokens_per_s"])
        print(f"PyTorch {cfg} ({tb}): output projection + loss {torch_res[tb][cfg]['proj_loss_share']:.0%} of the step")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compare two run folders bit for bit, for the resume tests.

usage: same_run.py RUN_A RUN_B

Equal means: every metrics.jsonl row has the same values (wall-clock fields -- seconds,
items_per_second -- excepted), checkpoints/last and checkpoints/best hold the same tensors
(names, dtypes, shapes and bytes; metadata, which records timings, is not compared), and every
other file -- samples.txt, the metric stages' outputs (predictions, confusion matrices), fitted
state -- is byte-identical, except the ones that record the clock or the command (summary.txt,
command.txt, status.json, metrics.csv, plots/). Prints the first difference and exits 1, else exits 0.
"""
import json
import os
import struct
import sys

# Compared another way, or holding wall-clock times and command lines.
SKIP = {"metrics.jsonl", "metrics.csv", "summary.txt", "command.txt", "status.json"}
SKIP_DIRS = {"checkpoints", "plots"}

CLOCK = {"seconds", "items_per_second"}


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {name: (e["dtype"], tuple(e["shape"]), body[e["data_offsets"][0]:e["data_offsets"][1]])
            for name, e in header.items()}


def rows(path):
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            out.append({k: v for k, v in r.items() if k not in CLOCK})
    return out


def files(root):
    out = set()
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel.split(os.sep)[0] in SKIP_DIRS:
            continue
        for n in names:
            path = n if rel == "." else os.path.join(rel, n)
            if path not in SKIP and not n.endswith(".tmp") and not n.endswith(".out"):
                out.add(path)
    return out


def main(a, b):
    ra, rb = rows(f"{a}/metrics.jsonl"), rows(f"{b}/metrics.jsonl")
    if len(ra) != len(rb):
        return f"metrics.jsonl: {len(ra)} rows against {len(rb)}"
    for i, (x, y) in enumerate(zip(ra, rb)):
        if x != y:
            keys = [k for k in x if x.get(k) != y.get(k)] or sorted(set(y) - set(x))
            return f"metrics.jsonl row {i + 1} ({x.get('split')} epoch {x.get('epoch')}): {keys[0]} {x.get(keys[0])!r} against {y.get(keys[0])!r}"
    fa, fb = files(a), files(b)
    if fa != fb:
        return f"files {sorted(fa ^ fb)} in one folder only"
    for name in sorted(fa):
        if open(f"{a}/{name}", "rb").read() != open(f"{b}/{name}", "rb").read():
            return f"{name} differs"
    for ck in ("last", "best"):
        ta, tb = tensors(f"{a}/checkpoints/{ck}.safetensors"), tensors(f"{b}/checkpoints/{ck}.safetensors")
        if set(ta) != set(tb):
            return f"checkpoints/{ck}: tensors {sorted(set(ta) ^ set(tb))} in one only"
        for name in sorted(ta):
            if ta[name] != tb[name]:
                return f"checkpoints/{ck}: tensor {name} differs"
    return None


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    diff = main(sys.argv[1], sys.argv[2])
    if diff:
        print(f"{sys.argv[1]} and {sys.argv[2]} differ: {diff}")
        sys.exit(1)

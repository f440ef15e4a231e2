#!/usr/bin/env python3
"""Writes the malformed checkpoints of tests/bad_inputs/checkpoints/ (and good.safetensors, the
file they are variations of). The files are committed; run this again only to change them.

Each is what a real failure looks like -- a truncated copy, a flipped bit, a file from another
graph, another program's safetensors -- or what a hostile file could claim (shapes larger than
the file, overlapping tensors) to make a reader allocate or read past the end.
"""
import json
import struct
import zlib

V, C = 31, 4  # init.yaml: the embedding of ../data/ok.txt


def f32(n, start=0.0):
    return struct.pack(f"<{n}f", *[start + 0.01 * i for i in range(n)])


def safetensors(entries, meta=None, data=None, crc=True, header_text=None):
    """entries: [(name, dtype, shape, begin, end)]; data: the data section."""
    if data is None:
        data = b"".join(f32((e - b) // 4) for _, _, _, b, e in entries)
    header = {}
    for name, dtype, shape, b, e in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}
    meta = dict(meta or {})
    if crc:
        meta.setdefault("rnnflow.crc32", str(zlib.crc32(data)))
    header["__metadata__"] = meta
    text = header_text if header_text is not None else json.dumps(header, separators=(",", ":"))
    raw = text.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


n = V * C * 4
good = safetensors([("embed.weight", "F32", [V, C], 0, n)])
write("good.safetensors", good)
write("empty.safetensors", b"")
write("text.safetensors", b"this is a text file, not a checkpoint\n")
write("truncated_data.safetensors", good[: len(good) - n // 2])
write("truncated_header.safetensors", good[:40])
flipped = bytearray(good)
flipped[-5] ^= 0x10
write("bad_crc.safetensors", bytes(flipped))
write("crc_not_a_number.safetensors", safetensors([("embed.weight", "F32", [V, C], 0, n)], {"rnnflow.crc32": "abc"}))
write("wrong_shape.safetensors", safetensors([("embed.weight", "F32", [V - 1, C], 0, (V - 1) * C * 4)]))
write("wrong_name.safetensors", safetensors([("embedding.weight", "F32", [V, C], 0, n)]))
write("wrong_dtype.safetensors", safetensors([("embed.weight", "I32", [V, C], 0, n)]))
write("f64.safetensors", safetensors([("embed.weight", "F64", [V, C], 0, 2 * n)]))
write("huge_shape.safetensors",
      safetensors([("embed.weight", "F32", [1 << 40, 1 << 40], 0, 16)], data=f32(4)))
write("overflow_shape.safetensors",
      safetensors([("embed.weight", "F32", [1 << 59, 1 << 59, 1 << 59], 0, 0)], data=b""))
write("offsets_past_end.safetensors",
      safetensors([("embed.weight", "F32", [V, C], 64, 64 + n)], data=f32(V * C)))
write("overlap.safetensors",
      safetensors([("embed.weight", "F32", [V, C], 0, n), ("rnn.bias", "F32", [V, C], 0, n)], data=f32(V * C)))
write("gap.safetensors",
      safetensors([("embed.weight", "F32", [V, C], 0, n)], data=f32(V * C + 4)))
dup = '{"embed.weight":{"dtype":"F32","shape":[%d,%d],"data_offsets":[0,%d]},' \
      '"embed.weight":{"dtype":"F32","shape":[%d,%d],"data_offsets":[%d,%d]}}' % (V, C, n, V, C, n, 2 * n)
write("duplicate_name.safetensors", safetensors([], data=f32(2 * V * C), crc=False, header_text=dup))
write("bad_json.safetensors", safetensors([], data=b"", crc=False, header_text='{"embed.weight": }'))
write("deep_json.safetensors", safetensors([], data=b"", crc=False, header_text="[" * 40 + "]" * 40))
write("bad_escape.safetensors", safetensors([], data=b"", crc=False, header_text='{"embed\\x": {}}'))
write("negative_offset.safetensors",
      safetensors([("embed.weight", "F32", [V, C], -8, n - 8)], data=f32(V * C)))
write("metadata_not_text.safetensors",
      safetensors([], data=b"", crc=False, header_text='{"__metadata__": {"epoch": 3}}'))

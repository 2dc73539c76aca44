#!/usr/bin/env python3
"""Writes the GGUF fuzz seeds (fuzz/corpus/gguf/*.gguf): tiny synthetic files, each a few hundred bytes,
written from the GGUF specification (ggml docs/gguf.md) with Python's struct, not with g2c's writer, so
the header, metadata (every value type, nested arrays), tensor-info and alignment paths are all reached
from small inputs. Run: python3 fuzz/make_gguf_seeds.py fuzz/corpus/gguf"""
import struct
import sys
from pathlib import Path

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
       U64: "<Q", I64: "<q", F64: "<d"}


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        out = struct.pack("<IQ", et, len(items))
        return out + b"".join(value(et, x) for x in items)
    return struct.pack(FMT[t], v)


def kv(key, t, v):
    return s(key) + struct.pack("<I", t) + value(t, v)


def gguf(kvs, tensors=(), alignment=32, version=3, data=b""):
    """tensors: (name, dims, ggml_type, offset)"""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, ty, off in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
    pad = (-len(out)) % alignment
    return out + b"\0" * pad + data


def main(dst):
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    arch = kv("general.architecture", STR, "llama")
    seeds = {
        "empty_v3": gguf([]),
        "empty_v2": gguf([], version=2),
        "all_types": gguf([
            arch, kv("a.u8", U8, 200), kv("a.i8", I8, -5), kv("a.u16", U16, 60000), kv("a.i16", I16, -300),
            kv("a.u32", U32, 4000000000), kv("a.i32", I32, -7), kv("a.f32", F32, 1.5), kv("a.bool", BOOL, True),
            kv("a.str", STR, "héllo"), kv("a.u64", U64, 2**63), kv("a.i64", I64, -2**40), kv("a.f64", F64, -0.25)]),
        "arrays": gguf([
            kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "a", "\u2581b"])),
            kv("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0, -2.0])),
            kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1, 1])),
            kv("nested", ARR, (ARR, [(U8, [1, 2]), (STR, ["x"])])),
            kv("empty", ARR, (U32, []))]),
        "tokenizer_spm": gguf([
            arch, kv("tokenizer.ggml.model", STR, "llama"),
            kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "<0x41>", "\u2581", "a"])),
            kv("tokenizer.ggml.scores", ARR, (F32, [0.0] * 6)),
            kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 6, 1, 1])),
            kv("tokenizer.ggml.bos_token_id", U32, 1), kv("tokenizer.ggml.eos_token_id", U32, 2)]),
        "tensors_f32": gguf([arch, kv("general.alignment", U32, 32)],
                            [("w", [4, 2], 0, 0), ("b", [4], 0, 32)], data=b"\1" * 64),
        "tensors_quant": gguf([arch], [("q4", [32, 2], 2, 0), ("q8", [32], 8, 64), ("f16", [3, 1, 1, 1], 1, 128)],
                              data=b"\2" * 192),
        "align_64": gguf([kv("general.alignment", U32, 64)], [("t", [16], 0, 0)], alignment=64, data=b"\3" * 64),
        "align_bad": gguf([kv("general.alignment", U32, 3)], [("t", [1], 0, 0)], data=b"\4" * 4),
        "tensor_out_of_file": gguf([], [("t", [1024, 1024], 0, 0)]),
        "tensor_dup": gguf([], [("t", [1], 0, 0), ("t", [1], 0, 32)], data=b"\5" * 64),
        "bad_magic": b"GGUX" + gguf([])[4:],
        "truncated": gguf([arch, kv("a.str", STR, "a long string value")])[:40],
    }
    for name, data in seeds.items():
        (dst / f"{name}.gguf").write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {dst}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/gguf")

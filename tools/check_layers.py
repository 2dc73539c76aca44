#!/usr/bin/env python3
"""Fails when a source file includes a g2c header from a layer it may not depend on.

The allowed dependencies follow docs/style.md: core <- gguf <- quant <- kernels <- model <- engine <-
inference <- server <- apps, with tokenizer and sampling needing only core and gguf. A linker does not
catch an upward include of a header-only piece, so this reads the #include lines themselves.
"""
import os
import re
import sys
import tempfile

ALLOWED = {
    "core": set(),
    "gguf": {"core"},
    "quant": {"core", "gguf"},
    "kernels": {"core", "gguf", "quant"},
    "tokenizer": {"core", "gguf"},
    "sampling": {"core", "gguf"},
    "model": {"core", "gguf", "quant", "kernels", "tokenizer", "sampling"},
    "engine": {"core", "gguf", "quant", "kernels", "tokenizer", "sampling", "model"},
    "inference": {"core", "gguf", "quant", "kernels", "tokenizer", "sampling", "model", "engine"},
    "server": {"core", "gguf", "quant", "kernels", "tokenizer", "sampling", "model", "engine", "inference"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]g2c/([a-z_]+)/')


def check(root):
    errors = []
    src = os.path.join(root, "src", "g2c")
    for layer in sorted(os.listdir(src)):
        ldir = os.path.join(src, layer)
        if not os.path.isdir(ldir):
            continue
        if layer not in ALLOWED:
            errors.append(f"{ldir}: unknown layer '{layer}' (add it to tools/check_layers.py)")
            continue
        for dirpath, _, files in os.walk(ldir):
            for f in files:
                if not f.endswith((".hpp", ".cpp", ".h", ".cc", ".inc")):
                    continue
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        if target != layer and target not in ALLOWED[layer]:
                            rel = os.path.relpath(path, root)
                            errors.append(f"{rel}:{n}: layer '{layer}' includes g2c/{target}/ "
                                          f"(allowed: {', '.join(sorted(ALLOWED[layer])) or 'none'})")
    return errors


def self_test():
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "src", "g2c", "core"))
        os.makedirs(os.path.join(d, "src", "g2c", "gguf"))
        with open(os.path.join(d, "src", "g2c", "gguf", "ok.hpp"), "w") as f:
            f.write('#include "g2c/core/error.hpp"\n')
        if check(d):
            print("self-test: a legal include was flagged")
            return 1
        with open(os.path.join(d, "src", "g2c", "core", "bad.hpp"), "w") as f:
            f.write('#pragma once\n#include "g2c/gguf/gguf.hpp"\n')
        if len(check(d)) != 1:
            print("self-test: an upward include was not flagged")
            return 1
    print("self-test passed")
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errors = check(root)
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} layering violation(s)")
        return 1
    print("layering ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

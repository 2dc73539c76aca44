#!/usr/bin/env python3
"""Fails when a source file includes a g2c header from a layer it may not depend on.

The allowed dependencies follow docs/style.md: core <- gguf <- quant <- kernels <- model <- engine <-
inference <- server <- apps, with tokenizer and sampling needing only core and gguf. apps/ (the g2c
command) may include every layer; nothing under src/ may include apps/. A linker does not catch an
upward include of a header-only piece, so this reads the #include lines themselves.

An include names a layer in one of two ways: "g2c/<layer>/..." through the include path, or a quoted
path relative to the including file ("../model/x.hpp", "foo.hpp"), which the compiler tries first.
A relative include is checked by the folder of the file it reaches; one with ".." that reaches no file
is refused, since what it would include depends on the include path.
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
ALLOWED["apps"] = set(ALLOWED)  # every layer under src/g2c; apps itself is its own folder
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
LAYER_PATH = re.compile(r"^g2c/([a-z_]+)/")
SOURCE_EXTENSIONS = (".hpp", ".cpp", ".h", ".cc", ".inc")


def layer_of(root, path):
    """The layer that owns `path` ("apps" for apps/), or None for a file outside src/g2c and apps."""
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "apps":
        return "apps"
    if rel[:2] == ["src", "g2c"] and len(rel) > 3:
        return rel[2]
    return None


def included_layer(root, including_file, bracket, target):
    """(layer, error): the layer an include reaches (None when it is not g2c's), or why it is refused."""
    if bracket == '"':
        resolved = os.path.normpath(os.path.join(os.path.dirname(including_file), target))
        if os.path.isfile(resolved):
            return layer_of(root, resolved), None
    m = LAYER_PATH.match(os.path.normpath(target))
    if m:
        return m.group(1), None
    if ".." in target.split("/"):
        return None, f'relative include "{target}" reaches no file (include g2c/<layer>/... instead)'
    return None, None


def source_files(root):
    """(layer, path) of every C++ file under src/g2c/<layer>/ and apps/; layers not in ALLOWED as errors."""
    errors, files = [], []
    src = os.path.join(root, "src", "g2c")
    folders = []
    for layer in sorted(os.listdir(src)) if os.path.isdir(src) else []:
        ldir = os.path.join(src, layer)
        if not os.path.isdir(ldir):
            continue
        if layer not in ALLOWED:
            errors.append(f"{ldir}: unknown layer '{layer}' (add it to tools/check_layers.py)")
            continue
        folders.append((layer, ldir))
    if os.path.isdir(os.path.join(root, "apps")):
        folders.append(("apps", os.path.join(root, "apps")))
    for layer, ldir in folders:
        for dirpath, _, names in os.walk(ldir):
            for name in sorted(names):
                if name.endswith(SOURCE_EXTENSIONS):
                    files.append((layer, os.path.join(dirpath, name)))
    return files, errors


def check(root):
    files, errors = source_files(root)
    for layer, path in files:
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target, error = included_layer(root, path, m.group(1), m.group(2))
                if error:
                    errors.append(f"{rel}:{n}: {error}")
                elif target is not None and target != layer and target not in ALLOWED[layer]:
                    errors.append(f"{rel}:{n}: layer '{layer}' includes {target}/ via \"{m.group(2)}\" "
                                  f"(allowed: {', '.join(sorted(ALLOWED[layer])) or 'none'})")
    return errors


def self_test():
    """Each case: files to write (path -> text) and how many violations check() must report."""
    cases = [
        ("a legal include", {"src/g2c/gguf/ok.hpp": '#include "g2c/core/error.hpp"\n'}, 0),
        ("an upward include", {"src/g2c/core/bad.hpp": '#pragma once\n#include "g2c/gguf/gguf.hpp"\n'}, 1),
        ("apps including every layer", {
            "apps/g2c/main.cpp": '#include "g2c/inference/backend.hpp"\n#include <g2c/core/log.hpp>\n'
                                 '#include "commands.hpp"\n',
            "apps/g2c/commands.hpp": "#pragma once\n"}, 0),
        ("src including apps", {
            "src/g2c/inference/x.cpp": '#include "../../../apps/g2c/commands.hpp"\n',
            "apps/g2c/commands.hpp": "#pragma once\n"}, 1),
        ("a relative include into a higher layer", {
            "src/g2c/core/y.cpp": '#include "../model/m.hpp"\n',
            "src/g2c/model/m.hpp": "#pragma once\n"}, 1),
        ("relative includes inside one layer", {
            "src/g2c/kernels/x86/a.cpp": '#include "../ref/ref.hpp"\n#include "a.inc"\n',
            "src/g2c/kernels/x86/a.inc": "",
            "src/g2c/kernels/ref/ref.hpp": "#pragma once\n"}, 0),
        ("a relative include that reaches no file", {"src/g2c/core/z.cpp": '#include "../engine/gone.hpp"\n'}, 1),
        ("a g2c/ path that climbs into another layer", {
            "src/g2c/gguf/w.cpp": '#include "g2c/core/../model/m.hpp"\n'}, 1),
    ]
    for name, files, expected in cases:
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "src", "g2c", "core"))
            for rel, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            found = check(d)
            if len(found) != expected:
                print(f"self-test: {name}: expected {expected} violation(s), got {found}")
                return 1
    print(f"self-test passed ({len(cases)} cases)")
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

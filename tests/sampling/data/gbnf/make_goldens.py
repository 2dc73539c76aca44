#!/usr/bin/env python3
"""Records llama.cpp's verdict on a corpus of strings for every grammar here (goldens.json).

    make_goldens.py VALIDATOR > goldens.json

VALIDATOR is llama.cpp's `llama-gbnf-validator` (examples/gbnf-validator at c392e50, built by hand; this
script only runs it). For each grammar the corpus is hand-written valid strings, every prefix of each,
and seeded mutations (a character deleted, inserted, replaced); the validator is run on each string and
its answer recorded as accept, prefix ("Unexpected end of input": the string can still be continued) or
reject at a code-point position ("Unexpected character").
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

VALID = {
    "llama.cpp/arithmetic.gbnf": ["1+2=3\n", "(1 + 2)*x= 9\n", "a=b\nc_1 - 4/2 =(x)\n", "x\t=\n7\n"],
    "llama.cpp/c.gbnf": [
        "int main(){return 0;}",
        "float f(int x){y = x*2;return y;}",
        "char c(){while(a<b){a = a+1;}if(a==b){g(a, b);}else{}}",
        "int g(){// note\nfor(int i = 0; i<10; i = i+1){}/* a * b */}",
    ],
    "llama.cpp/chess.gbnf": ["1. e4 e5\n2. Nf3 Nc6\n", "1. d4 d5\n2. c4 dxc4\n3. O-O-O Qxd8#\n", "1. e4 e5\n12. exd5 e8=Q+\n"],
    "llama.cpp/english.gbnf": ["Hello, world! 123", "a\tb\nc", "It's {fine} [really] ~ok~ #1 @home"],
    "llama.cpp/japanese.gbnf": ["こんにちは 世界", "カタカナ、ひらがな。\n漢字"],
    "llama.cpp/json.gbnf": [
        '{"a": 1, "b": [true, null, "x\\n"]}',
        '{}',
        '{"k":{"n":-0.5e+3,"s":"\\u00e9\u00e9","l":[]}, "z": false}',
        '{\n  "x": [1, 2.25, {"y": "z"}]\n}',
    ],
    "llama.cpp/json_arr.gbnf": ['[\n1,\n"a"]', '[\n]', '[\n{"a": [1, 2]},\n  true,\nnull]'],
    "llama.cpp/list.gbnf": ["- item one\n- two\n", "- x\n", "- caf\u00e9 \u00fcber\n- a-b\n"],
    "own/repeat.gbnf": ["aabcbcbc0!!", "aaaabcbcbc123xyz-...", "aaabcbcbc9yzx.", "aabcbcbc42x-!!"],
    "own/unicode.gbnf": ["\u03b1\u03b2\u2192 free text\nz\U0001F600\u00e9", "\u03a9\u2192\n\u00e8\u00e8", "\u03c9\u03a3\u2192abc\n\u2192\u00e9"],
    "own/nested.gbnf": ['()', '(a, (b ,c), "x\\"y")', '( (), ((z)) ,"\\\\")'],
    "own/escapes.gbnf": ['A\t[]\\"-\r\n;', 'A\t--\r\nxyz;', 'A\t"\r\nd\u00e9;'],
}

# Characters mutations draw from: ASCII of every class, whitespace, and a few multi-byte ones.
ALPHABET = list("abcxyzAZ019_-+*/=()[]{}<>\"\\,.:;!?#'` \t\n") + ["\u00e9", "\u03b1", "\u2192", "\u3042", "\U0001F600"]


def corpus(valid, seed):
    rng = random.Random(seed)
    out = []
    for s in valid:
        out.append(s)
        out.extend(s[:i] for i in range(len(s)))  # every proper prefix, "" included
        for _ in range(12):
            cs = list(s)
            op = rng.randrange(3)
            i = rng.randrange(len(cs) + (1 if op == 1 else 0)) if cs else 0
            if op == 0 and cs:
                del cs[i]
            elif op == 1:
                cs.insert(i, rng.choice(ALPHABET))
            elif cs:
                cs[i] = rng.choice(ALPHABET)
            out.append("".join(cs))
    seen, uniq = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            uniq.append(s)
    return uniq


def verdict(validator, grammar, text):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        out = subprocess.run([validator, grammar, path], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    finally:
        os.unlink(path)
    if "Input string is valid" in out:
        return {"verdict": "accept"}
    m = re.search(r"Error: (Unexpected end of input|Unexpected character '.*') at position (\d+)", out, re.S)
    if not m:
        raise SystemExit(f"unexpected validator output for {grammar!r} {text!r}: {out}")
    return {"verdict": "prefix" if m.group(1).startswith("Unexpected end") else "reject", "pos": int(m.group(2))}


def main():
    validator = sys.argv[1]
    result = {
        "source": "llama.cpp c392e50 examples/gbnf-validator (llama-gbnf-validator), built by hand",
        "command": "tests/sampling/data/gbnf/make_goldens.py /work/llama.cpp/build/bin/llama-gbnf-validator "
                   "> tests/sampling/data/gbnf/goldens.json",
        "note": "one run per string: llama-gbnf-validator GRAMMAR INPUT; pos counts code points",
        "grammars": {},
    }
    for k, (name, valid) in enumerate(sorted(VALID.items())):
        grammar = os.path.join(HERE, name)
        cases = []
        for s in corpus(valid, 1000 + k):
            cases.append({"input": s, **verdict(validator, grammar, s)})
        result["grammars"][name] = cases
    json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

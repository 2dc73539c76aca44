#!/usr/bin/python3
"""Extracts the test cases of llama.cpp's tests/test-chat-template.cpp (at c392e50) into
test_chat_template_cases.json (data only; no llama.cpp code is kept). Run once:
    /usr/bin/python3 tests/tokenizer/data/extract_test_chat_template.py \
        /work/llama.cpp/tests/test-chat-template.cpp > tests/tokenizer/data/test_chat_template_cases.json
Each case: name, template, expected (expected_output_jinja when the case has one, else expected_output:
the string llama.cpp's Jinja path must produce), bos_token, eos_token, supported_with_jinja.
"""
import json
import re
import sys

FIELDS = ["name", "template_str", "expected_output", "expected_output_jinja", "bos_token", "eos_token"]


def c_string(src, pos):
    """Parses adjacent C string literals (optionally u8-prefixed) from src[pos:]; returns (value, end)."""
    out = b""
    while True:
        m = re.compile(r'\s*(u8)?"').match(src, pos)
        if not m:
            return out.decode("utf-8"), pos
        pos = m.end()
        while src[pos] != '"':
            c = src[pos]
            if c == "\\":
                n = src[pos + 1]
                out += {"n": b"\n", "t": b"\t", "r": b"\r", "\\": b"\\", '"': b'"', "'": b"'"}[n]
                pos += 2
            else:
                out += c.encode("utf-8")
                pos += 1
        pos += 1


def main():
    src = open(sys.argv[1], encoding="utf-8").read()
    start = src.index("std::vector<TestCase> test_cases {")
    end = src.index("std::vector<char> formatted_chat", start)
    body = src[start:end]
    cases = []
    for chunk in body.split("/* .name= */")[1:]:
        case = {}
        text = "/* .name= */" + chunk
        for field in FIELDS:
            m = re.search(r"/\* \." + field + r"= \*/", text)
            if m:
                case[field], _ = c_string(text, m.end())
        m = re.search(r"/\* \.supported_with_jinja= \*/\s*(true|false)", text)
        supported = not m or m.group(1) == "true"
        cases.append({
            "name": case["name"],
            "template": case["template_str"],
            "expected": case.get("expected_output_jinja") or case["expected_output"],
            "bos_token": case.get("bos_token", ""),
            "eos_token": case.get("eos_token", ""),
            "supported_with_jinja": supported,
        })
    json.dump({
        "source": "llama.cpp c392e50 tests/test-chat-template.cpp",
        "command": "/usr/bin/python3 tests/tokenizer/data/extract_test_chat_template.py "
                   "/work/llama.cpp/tests/test-chat-template.cpp",
        "conversation": [
            {"role": "system", "content": "You are a helpful assistant"},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there"},
            {"role": "user", "content": "Who are you"},
            {"role": "assistant", "content": "   I am an assistant   "},
            {"role": "user", "content": "Another question"},
        ],
        "add_generation_prompt": True,
        "cases": cases,
    }, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()

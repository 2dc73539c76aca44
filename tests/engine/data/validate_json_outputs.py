#!/usr/bin/python3
"""Validates constrained-decoding outputs: every output must parse as JSON and validate under its schema.

    validate_json_outputs.py FILE     (FILE: [{"schema": {...}, "outputs": ["...", ...]}, ...])

Uses Debian's python3-jsonschema (Draft 2020-12). Prints one line per schema; exit status 1 on the first
output that does not parse or validate, naming it.
"""
import json
import sys

import jsonschema

cases = json.load(open(sys.argv[1], encoding="utf-8"))
total = 0
for i, case in enumerate(cases):
    schema = case["schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for j, text in enumerate(case["outputs"]):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            print(f"schema {i} output {j}: does not parse: {e}: {text!r}")
            sys.exit(1)
        errors = sorted(validator.iter_errors(doc), key=str)
        if errors:
            print(f"schema {i} output {j}: does not validate: {errors[0].message}: {text!r}")
            sys.exit(1)
        total += 1
    print(f"schema {i}: {len(case['outputs'])} outputs parse and validate")
print(f"ok {total}")

#!/usr/bin/python3
"""The independent reference for g2c's chat-template renderer: Python's jinja2 (Debian's
python3-jinja2, run under Debian's /usr/bin/python3) set up the way Hugging Face transformers'
apply_chat_template sets it up (transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with jinja2.ext.loopcontrols,
`tojson` = json.dumps(ensure_ascii=False, ...), and the globals raise_exception and strftime_now.

Reads a JSON array of jobs {"template": str, "context": {...}, "now": unix_seconds} from the file
named by argv[1] and writes a JSON array of results, one per job, to stdout:
  {"ok": true, "text": "..."} | {"ok": false, "raised": "<raise_exception message>"}
  | {"ok": false, "error": "<ExceptionType>: <message>"}
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        jobs = json.load(f)
    out = []
    for job in jobs:
        now = datetime.datetime.fromtimestamp(job.get("now", 0), datetime.timezone.utc)

        def raise_exception(message):
            raise Raised(message)

        def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
            return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

        def strftime_now(fmt):
            return now.strftime(fmt)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = tojson
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = strftime_now
        try:
            text = env.from_string(job["template"]).render(**job["context"])
            out.append({"ok": True, "text": text})
        except Raised as e:
            out.append({"ok": False, "raised": str(e)})
        except Exception as e:  # noqa: BLE001 - every failure is a result to compare
            out.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()

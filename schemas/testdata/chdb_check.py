"""Runs a list of SQL steps in one chdb session and prints the results.

Usage: python chdb_check.py PLAN.json

PLAN.json is {"steps": [{"name": ..., "sql": ...}, ...]}. Every step runs in
order in a session backed by a temporary directory, so MergeTree tables and
materialized views behave as on a server. An INSERT step carries its data
after FORMAT JSONEachRow. The output is one JSON object on stdout:
{"version": ..., "results": [{"name", "output", "error"}, ...]}, where output
is the step's result in JSONEachRow and error is the exception text. A failed
step does not stop the later ones.
"""

import json
import sys
import tempfile

import chdb
from chdb import session as chs


def result_text(out) -> str:
    """Returns a query result as text across chdb releases."""
    if out is None:
        return ""
    if hasattr(out, "bytes"):
        return out.bytes().decode("utf-8")
    return str(out)


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    results = []
    with tempfile.TemporaryDirectory(prefix="textpulse-chdb-") as path:
        sess = chs.Session(path)
        try:
            for step in plan["steps"]:
                res = {"name": step["name"], "output": "", "error": ""}
                try:
                    res["output"] = result_text(sess.query(step["sql"], "JSONEachRow"))
                except Exception as exc:  # every failure is reported per step
                    res["error"] = str(exc) or repr(exc)
                results.append(res)
        finally:
            # Older chdb releases have no Session.close.
            close = getattr(sess, "close", None) or getattr(sess, "cleanup", None)
            if close is not None:
                close()
    version = "chdb %s (engine %s)" % (chdb.__version__, getattr(chdb, "engine_version", "?"))
    json.dump({"version": version, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

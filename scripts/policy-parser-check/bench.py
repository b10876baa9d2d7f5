#!/usr/bin/env python3
"""Evaluations per second of qrexec's own policy parser, for `npm run bench`.

Reads one JSON object on stdin: {"root": DOM0_ROOT, "system": SYSTEM_INFO,
"queries": [{"source","target","service","arg"}], "ms": BUDGET}. SYSTEM_INFO
has the shape of qubesd's internal.GetSystemInfo; it is indexed once as
qrexec's get_system_info() indexes it. Writes one JSON object: the parser's
answer to each query (as driver.py records them) and how many evaluations
took how long. An evaluation is what the policy daemon does per call once it
holds system info: build the Request (which checks the target) and evaluate
it. Needs a qubes-core-qrexec checkout on PYTHONPATH.
"""
import json
import logging
import pathlib
import sys
import time

from qrexec import exc
from qrexec.policy import parser

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from driver import load, real_answer  # noqa: E402  pylint: disable=wrong-import-position


def indexed(info):
    domains = info["domains"]
    for name, entry in list(domains.items()):
        entry["name"] = name
        domains["uuid:" + entry["uuid"]] = entry
    return info


def evaluate(policy, info, q):
    try:
        request = parser.Request(q["service"], "+" + q["arg"], q["source"], q["target"], system_info=info)
        policy.evaluate(request)
    except exc.AccessDenied:
        pass


def main():
    logging.disable(logging.CRITICAL)
    job = json.load(sys.stdin)
    policy = load(pathlib.Path(job["root"]))
    info = indexed(job["system"])
    queries = job["queries"]
    answers = [real_answer(policy, info, q) for q in queries]
    for _ in range(20):
        for q in queries:
            evaluate(policy, info, q)
    budget = job["ms"] / 1000
    evaluations = 0
    t0 = time.perf_counter()
    elapsed = 0.0
    while elapsed < budget:
        for q in queries:
            evaluate(policy, info, q)
        evaluations += len(queries)
        elapsed = time.perf_counter() - t0
    json.dump({"answers": answers, "evaluations": evaluations, "seconds": elapsed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

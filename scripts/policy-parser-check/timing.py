#!/usr/bin/env python3
"""Times qrexec's own policy parser on a target naming an outside qube and on
one of the same shape naming nothing, for each form of target, the way
verify/timing times our engine (docs/verification.md, "Timing").

usage: PYTHONPATH=QREXEC_CHECKOUT python3 scripts/policy-parser-check/timing.py [-n N] [--seed S] [--log]

The policy is the rendered qmcp policy of the corpus case
qmcp-rendered-least-privilege over its fleet (test/fixtures/policy-corpus).
Each sample is what the policy daemon does per call once it holds system
info: build the Request (which checks the target) and evaluate it; both
targets of a pair are refused. N samples of each are interleaved in a
seeded random order after a warm-up, cropped at the pooled 95th percentile
and compared with Welch's t. `@default` and `@dispvm` name no qube: they
are timed on system info with and without one outside qube. qrexec logs a
warning for a target that does not exist; by default logging is off, with
--log it is formatted and written to /dev/null, as a cheap journal.
"""
import argparse
import json
import logging
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

from qrexec import exc
from qrexec.policy import parser

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from driver import load, system_info  # noqa: E402  pylint: disable=wrong-import-position

CORPUS = pathlib.Path(__file__).resolve().parent.parent.parent / "test/fixtures/policy-corpus"
CASE = "qmcp-rendered-least-privilege.case.json"
SEATS = [("mcp-control", "qmcp.Exec"), ("ai-full", "qubes.Filecopy")]
HIDDEN, ABSENT = "default-dvm", "default-dvx"
REMOVED = "vault"


def other_uuid(uuid):
    return uuid[:-4] + ("1111" if uuid.endswith("0000") else "0000")


def welch(a, b):
    se = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    return 0.0 if se == 0 else (statistics.fmean(a) - statistics.fmean(b)) / se


def crop(a, b):
    cut = sorted(a + b)[int((len(a) + len(b)) * 0.95)]
    return [x for x in a if x <= cut], [x for x in b if x <= cut]


def answer(policy, info, source, service, target):
    try:
        request = parser.Request(service, "+", source, target, system_info=info)
        return type(policy.evaluate(request)).__name__
    except exc.AccessDenied:
        return "deny"


def measure(rand, n, run, keys):
    order = [k for k in keys for _ in range(n)]
    rand.shuffle(order)
    for _ in range(200):
        for k in keys:
            run(k)
    times = {k: [] for k in keys}
    for k in order:
        t0 = time.perf_counter_ns()
        run(k)
        times[k].append((time.perf_counter_ns() - t0) / 1000)
    a, b = crop(times[keys[0]], times[keys[1]])
    return statistics.fmean(a), statistics.fmean(b), welch(a, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20000, help="samples of each target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", action="store_true", help="format and write qrexec's log lines to /dev/null")
    args = ap.parse_args()
    if args.log:
        handler = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))  # pylint: disable=consider-using-with
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:
        logging.disable(logging.CRITICAL)
    case = json.loads((CORPUS / CASE).read_text())
    fleet = json.loads((CORPUS / case["fleet"]).read_text())
    info = system_info(fleet)
    without = {"domains": {k: v for k, v in info["domains"].items() if REMOVED not in (k, v.get("name"))}}
    uuid = info["domains"][HIDDEN]["uuid"]
    named = [
        ("name", HIDDEN, ABSENT),
        ("uuid:", "uuid:" + uuid, "uuid:" + other_uuid(uuid)),
        ("@dispvm:NAME", "@dispvm:" + HIDDEN, "@dispvm:" + ABSENT),
        ("@dispvm:uuid:", "@dispvm:uuid:" + uuid, "@dispvm:uuid:" + other_uuid(uuid)),
    ]
    rand = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for rel, lines in case["files"].items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("".join(line + "\n" for line in lines))
        policy = load(root)
    print(f"qrexec parser, {args.n} samples of each, logging {'to /dev/null' if args.log else 'off'}")
    print(f"{'form':<34} {'from':<12} {'outside µs':>10} {'absent µs':>10} {'diff µs':>8} {'|t|':>6}")
    for source, service in SEATS:
        rows = [(form, (outside, info), (absent, info)) for form, outside, absent in named]
        rows += [(form + " (one outside qube more)", (form, info), (form, without)) for form in ("@default", "@dispvm")]
        for form, hidden, nothing in rows:
            pair = {"outside": hidden, "absent": nothing}
            answers = {answer(policy, i, source, service, t) for t, i in pair.values()}
            if answers != {"deny"}:
                print(f"{form:<34} {source:<12} answers differ or allow: {sorted(answers)}")
                continue
            run = lambda k, pair=pair: answer(policy, pair[k][1], source, service, pair[k][0])  # noqa: E731
            m_out, m_abs, t = measure(rand, args.n, run, ["outside", "absent"])
            print(f"{form:<34} {source:<12} {m_out:>10.1f} {m_abs:>10.1f} {m_out - m_abs:>8.1f} {abs(t):>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

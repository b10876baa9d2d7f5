#!/usr/bin/env python3
"""Compares `qmcp policy eval` with qrexec's own policy parser on a corpus.

Each corpus case is a JSON file: {"fleet": FILE?, "files": {PATH: [LINES]},
"calls": [[SERVICE, ARG]], "sources": [...], "targets": [...]}; its queries are
every call from every source to every target, in that order. PATH is relative
to a dom0 root (etc/qubes/policy.d/..., run/qubes/policy.d/...,
etc/qubes-rpc/policy/...). The checkout of qubes-core-qrexec must be on
PYTHONPATH. With --record the real parser's answers are written back into the
cases as "expect" (one compact row per query, see `row`), for the TypeScript
tests to check without Python.
"""
import argparse
import asyncio
import collections
import hashlib
import itertools
import json
import logging
import pathlib
import subprocess
import sys
import tempfile

from qrexec import exc
from qrexec.policy import parser, parser_compat

DOM0_UUID = "00000000-0000-0000-0000-000000000000"


def fleet_uuid(name):
    """Same derivation as src/cli/fleet-system-info.ts."""
    b = bytearray(hashlib.sha256(("qmcp-fleet:" + name).encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def qube_ref(value):
    return value if isinstance(value, str) and value not in ("", "None") else None


def truthy(value):
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


def icon(klass, label):
    """qubesd's icon name for a qube (only qrexec's ask dialog reads it)."""
    kind = {"TemplateVM": "templatevm", "DispVM": "dispvm", "StandaloneVM": "standalonevm"}.get(klass, "appvm")
    return f"{kind}-{label}"


def system_info(fleet):
    """The fleet as qubesd's internal.GetSystemInfo reports it, indexed as
    qrexec's get_system_info() indexes it. A qube's default_dispvm defaults to
    the global one (dom0's too), a disposable's to its own template; guivm to
    dom0. Of these the parser reads type, tags, template_for_dispvms,
    default_dispvm, power_state, uuid and internal."""
    global_props = fleet.get("properties") or {}
    global_dispvm = qube_ref(global_props.get("default_dispvm"))
    global_guivm = qube_ref(global_props.get("default_guivm", "dom0"))
    domains = {
        "dom0": {"tags": [], "type": "AdminVM", "template_for_dispvms": False,
                 "default_dispvm": global_dispvm, "power_state": "Running", "uuid": DOM0_UUID,
                 "icon": "adminvm-black", "label": "black", "guivm": None,
                 "relayvm": None, "transport_rpc": None, "internal": None},
    }
    for q in fleet["qubes"]:
        props = q.get("properties") or {}
        own_default = q.get("template") if q["klass"] == "DispVM" else global_dispvm
        label = q.get("label", "red")
        domains[q["name"]] = {
            "tags": list(q.get("tags") or []),
            "type": q["klass"],
            "template_for_dispvms": truthy(props.get("template_for_dispvms")),
            "default_dispvm": qube_ref(props["default_dispvm"]) if "default_dispvm" in props else own_default,
            "power_state": q.get("power_state", "Halted"),
            "uuid": q.get("uuid") or fleet_uuid(q["name"]),
            "icon": icon(q["klass"], label), "label": label,
            "guivm": qube_ref(props["guivm"]) if "guivm" in props else global_guivm,
            "relayvm": None, "transport_rpc": None,
            "internal": (q.get("features") or {}).get("internal"),
        }
    for name, entry in list(domains.items()):
        entry["name"] = name
        domains["uuid:" + entry["uuid"]] = entry
    return {"domains": domains}


def load(root):
    run = root / "run/qubes/policy.d"
    etc = root / "etc/qubes/policy.d"
    parser_compat.POLICYPATH_OLD = root / "etc/qubes-rpc/policy"
    return parser.FilePolicy(policy_path=[run, etc] if run.is_dir() else [etc])


def real_answer(policy, info, q):
    """What qrexec decides; `execute()` supplies the allow target it would connect to."""
    try:
        request = parser.Request(q["service"], "+" + q.get("arg", ""), q["source"],
                                 q.get("target", ""), system_info=info)
        res = policy.evaluate(request)
        if isinstance(res, parser.AskResolution):
            return {"action": "ask", "target": res.default_target,
                    "targets": sorted(res.targets_for_ask), "user": res.user,
                    "autostart": res.autostart, "notify": res.notify}
        lines = dict(l.split("=", 1) for l in asyncio.run(res.execute()).split("\n"))
        return {"action": "allow", "target": lines["target"], "user": res.user,
                "autostart": res.autostart, "notify": res.notify}
    except exc.AccessDenied as err:
        return {"action": "deny", "target": None, "notify": err.notify}
    except Exception as err:  # pylint: disable=broad-except
        return {"action": "error", "error": type(err).__name__}


# What qrexec-daemon makes of an evaluation that raised (docs/policy-engine.md):
# the call is refused and, as no AccessDenied reached handle_request, nobody is notified.
FAILED = {"action": "deny", "target": None, "notify": False}

KEYS = ("action", "target", "targets", "user", "autostart", "notify")


def ours(answer):
    return {k: answer.get(k) for k in KEYS if k in answer or k in ("action", "target")}


def agrees(real, qmcp):
    """qmcp answers as qrexec does; for an evaluation that raised, as qrexec-daemon does."""
    if real["action"] == "error":
        return ours(qmcp) == FAILED and qmcp.get("rule") is None
    return ours(qmcp) == real


def case_queries(case):
    return [{"source": s, "target": t, "service": svc, "arg": arg}
            for (svc, arg), s, t in itertools.product(case["calls"], case["sources"], case["targets"])]


def row(answer):
    """An answer as a compact row: [action, target, targets?, user, autostart, notify],
    ["deny", notify], or ["error", EXCEPTION_CLASS] where the parser raised."""
    if answer["action"] == "error":
        return ["error", answer["error"]]
    if answer["action"] == "deny":
        return ["deny", answer["notify"]]
    if answer["action"] == "ask":
        return ["ask", answer["target"], answer["targets"], answer["user"], answer["autostart"], answer["notify"]]
    return ["allow", answer["target"], answer["user"], answer["autostart"], answer["notify"]]


def write_case(path, case):
    expect = case.pop("expect", None)
    text = json.dumps(case, indent=1)
    if expect is not None:
        body = json.dumps(expect) if isinstance(expect, str) else (
            "[\n" + ",\n".join("  " + json.dumps(r) for r in expect) + "\n ]")
        text = text[: text.rindex("}")].rstrip() + ',\n "expect": ' + body + "\n}"
    path.write_text(text + "\n")


def run_case(path, corpus, qmcp):
    case = json.loads(path.read_text())
    fleet_path = corpus / case.get("fleet", "fleet.json")
    fleet = json.loads(fleet_path.read_text())
    queries = case_queries(case)
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for rel, lines in case["files"].items():
            f = root / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(l + "\n" for l in lines))
        for rel in case.get("dirs", []):
            (root / rel).mkdir(parents=True, exist_ok=True)
        (root / "etc/qubes/policy.d").mkdir(parents=True, exist_ok=True)
        try:
            policy = load(root)
            expected = [real_answer(policy, system_info(fleet), q) for q in queries]
        except Exception as err:  # pylint: disable=broad-except
            expected = "policy error: " + type(err).__name__
        proc = subprocess.run(
            ["node", str(qmcp), "policy", "eval", "--root", str(root), "--fleet", str(fleet_path)],
            input="".join(json.dumps(q) + "\n" for q in queries),
            capture_output=True, text=True, check=False)
    if isinstance(expected, str):
        ok = proc.returncode == 1 and "policy error" in proc.stderr
        return case, expected, len(queries), (len(queries) if ok else 0), [] if ok else [
            f"{path.name}: real parser refused the policy ({expected}) but qmcp exited "
            f"{proc.returncode}: {proc.stderr.strip()}"]
    if proc.returncode != 0:
        return case, expected, len(queries), 0, [f"{path.name}: qmcp exited {proc.returncode}: {proc.stderr.strip()}"]
    got = [json.loads(l) for l in proc.stdout.splitlines()]
    diffs, agreed = [], 0
    for q, want, have in zip(queries, expected, got):
        if agrees(want, have):
            agreed += 1
        else:
            diffs.append(f"{path.name}: {json.dumps(q)}\n    real: {json.dumps(want)}\n    qmcp: {json.dumps(ours(have))}")
    return case, expected, len(queries), agreed, diffs


def main():
    logging.disable(logging.CRITICAL)
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=pathlib.Path)
    ap.add_argument("qmcp", type=pathlib.Path, help="path to bin/qmcp.js")
    ap.add_argument("--record", action="store_true", help="write the real answers into the cases")
    ap.add_argument("--show", type=int, default=20, help="differences to print")
    args = ap.parse_args()
    total = agreed = 0
    shown = []
    raised = collections.Counter()
    for path in sorted(args.corpus.glob("*.case.json")):
        case, expected, n, ok, diffs = run_case(path, args.corpus, args.qmcp)
        total += n
        agreed += ok
        shown.extend(diffs)
        errors = [] if isinstance(expected, str) else [e["error"] for e in expected if e["action"] == "error"]
        raised.update(errors)
        if args.record:
            case["expect"] = expected if isinstance(expected, str) else [row(e) for e in expected]
            write_case(path, case)
        print(f"{path.name}: {ok}/{n} agree" + (f" ({len(errors)} where the parser raised)" if errors else ""))
    for d in shown[: args.show]:
        print(d)
    print(f"TOTAL: {agreed}/{total} queries agree")
    print(f"the parser raised on {sum(raised.values())} queries"
          + "".join(f", {name} {count}" for name, count in sorted(raised.items())))
    return 0 if agreed == total else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the policy corpus (test/fixtures/policy-corpus/*.case.json).

Queries are the cross product of a set of sources, targets and calls, so each
case probes every token against every kind of request. Run check.sh with
--record afterwards to store the real parser's answers in the cases.
"""
import hashlib
import json
import pathlib



def fleet_uuid(name):
    """Same derivation as src/cli/fleet-system-info.ts."""
    b = bytearray(hashlib.sha256(("qmcp-fleet:" + name).encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


OUT = pathlib.Path(__file__).resolve().parent.parent.parent / "test/fixtures/policy-corpus"
UUIDVM = "11111111-2222-3333-4444-555555555555"
Z = "uuid:00000000-0000-0000-0000-000000000000"

FLEET = {
    "properties": {"default_dispvm": "default-dvm"},
    "qubes": [
        {"name": "work", "klass": "AppVM", "template": "fedora", "tags": ["work"],
         "properties": {"default_dispvm": "dvm-work"}, "power_state": "Running"},
        {"name": "personal", "klass": "AppVM", "template": "fedora", "tags": ["personal"]},
        {"name": "vault", "klass": "AppVM", "template": "fedora", "tags": ["secret"],
         "properties": {"default_dispvm": None}},
        {"name": "default-dvm", "klass": "AppVM", "template": "fedora", "tags": ["dvm-tag"],
         "properties": {"template_for_dispvms": True}},
        {"name": "dvm-work", "klass": "AppVM", "template": "fedora", "tags": ["work", "dvm-tag"],
         "properties": {"template_for_dispvms": True}, "power_state": "Running"},
        {"name": "fedora", "klass": "TemplateVM"},
        {"name": "sys-net", "klass": "AppVM", "template": "fedora", "power_state": "Running"},
        {"name": "disp123", "klass": "DispVM", "template": "default-dvm", "tags": ["dvm-tag"],
         "power_state": "Running"},
        {"name": "standalone", "klass": "StandaloneVM", "tags": ["work"]},
        {"name": "sys-internal", "klass": "AppVM", "template": "fedora", "features": {"internal": "1"},
         "power_state": "Running"},
        {"name": "uuidvm", "klass": "AppVM", "template": "fedora", "uuid": UUIDVM,
         "properties": {"default_dispvm": "dvm-work"}},
    ],
}

WORK = "uuid:" + fleet_uuid("work")
DVMWORK = fleet_uuid("dvm-work")
# Every source is a qube, and every default_dispvm a disposable template or none: qrexec-daemon
# asks only for its own qube's calls, and qubesd keeps no other default_dispvm. A target may
# name anything, as a caller may.
SOURCES = ["work", "vault", "default-dvm", "disp123", "fedora", "dom0", "uuidvm",
           "uuid:" + UUIDVM, "standalone"]
TARGETS = ["work", "personal", "vault", "dom0", "@adminvm", Z, "@default", "", "@dispvm",
           "@dispvm:default-dvm", "@dispvm:dvm-work", "@dispvm:work", "@dispvm:nonexistent",
           "@dispvm:uuid:" + DVMWORK, "nonexistent", "uuid:" + UUIDVM, WORK, "@anyvm",
           "fedora", "sys-net", "disp123", "default-dvm"]
FEW_SOURCES = ["work", "vault", "disp123", "dom0", "uuidvm"]
FEW_TARGETS = ["work", "personal", "dom0", "@adminvm", "@default", "@dispvm",
               "@dispvm:dvm-work", "nonexistent", "sys-net"]


def queries(calls, sources=SOURCES, targets=TARGETS):
    return {"calls": [list(c) for c in calls], "sources": sources, "targets": targets}


def etc(name, lines):
    return {"etc/qubes/policy.d/" + name: lines}


CASES = {}


def case(name, files, calls, **kw):
    CASES[name] = {"files": files, **queries(calls, **kw.pop("q", {})), **kw}


SOURCE_TOKENS = ["work", "uuid:" + UUIDVM, Z, "dom0", "@adminvm", "*", "@anyvm", "@type:AppVM",
                 "@type:DispVM", "@tag:work", "@tag:nosuch", "@dispvm:default-dvm",
                 "@dispvm:@tag:dvm-tag", "nonexistent", WORK]
case("tokens-source",
     etc("50-src.policy", [f"src.{i} * {tok} * allow target=sys-net" for i, tok in enumerate(SOURCE_TOKENS)]),
     [(f"src.{i}", "") for i in range(len(SOURCE_TOKENS))], q={"targets": ["sys-net", "work", "@default"]})

TARGET_TOKENS = ["work", "uuid:" + UUIDVM, "dom0", "@adminvm", Z, "*", "@anyvm", "@type:AppVM",
                 "@type:AdminVM", "@tag:work", "@tag:dvm-tag", "@dispvm", "@dispvm:default-dvm",
                 "@dispvm:dvm-work", "@dispvm:@tag:work", "@dispvm:@tag:dvm-tag",
                 "@dispvm:uuid:" + DVMWORK, "nonexistent", WORK]
case("tokens-target",
     etc("50-tgt.policy",
         [f"tgt.{i} * @anyvm {tok} allow" for i, tok in enumerate(TARGET_TOKENS)]
         + ["tgt.def * @anyvm @default allow target=work",
            "tgt.defask * @anyvm @default ask"]
         + [f"tgtask.{i} * @anyvm {tok} ask" for i, tok in enumerate(TARGET_TOKENS)]),
     [(f"tgt.{i}", "") for i in range(len(TARGET_TOKENS))] + [("tgt.def", ""), ("tgt.defask", "")]
     + [(f"tgtask.{i}", "") for i in range(len(TARGET_TOKENS))])

REDIRECTS = ["work", "personal", "uuid:" + UUIDVM, "dom0", "@adminvm", Z, "@dispvm",
             "@dispvm:default-dvm", "@dispvm:work", "@dispvm:nonexistent", "nonexistent",
             "@dispvm:uuid:" + DVMWORK, "vault"]
case("redirect",
     etc("50-red.policy",
         [f"red.{i} * @anyvm @anyvm allow target={tok}" for i, tok in enumerate(REDIRECTS)]
         + [f"redask.{i} * @anyvm @anyvm ask target={tok} default_target={tok}" for i, tok in enumerate(REDIRECTS)]
         + [f"reddef.{i} * @anyvm @anyvm ask default_target={tok}" for i, tok in enumerate(REDIRECTS)]
         + ["red.admin * @anyvm @adminvm allow target=work",
            "red.default * @anyvm @default allow target=dom0"]),
     [(f"{p}.{i}", "") for p in ("red", "redask", "reddef") for i in range(len(REDIRECTS))]
     + [("red.admin", ""), ("red.default", "")], q={"targets": FEW_TARGETS})

case("ask",
     etc("50-ask.policy", [
         "ask.one * @anyvm @tag:work ask default_target=work",
         "ask.one * @anyvm personal deny",
         "ask.one * @anyvm @anyvm ask default_target=@dispvm",
         "ask.two * work @anyvm ask default_target=@adminvm",
         "ask.two * @anyvm @adminvm allow",
         "ask.two * @anyvm @type:TemplateVM deny",
         "ask.three * @anyvm @anyvm ask autostart=no default_target=sys-net",
         "ask.four * @anyvm @dispvm:@tag:dvm-tag ask",
         "ask.four * @anyvm @type:TemplateVM ask target=fedora",
         "ask.five * @anyvm * ask",
         "ask.five * @anyvm vault deny",
         "ask.five * vault @anyvm deny",
         "ask.six * @anyvm @anyvm ask target=@dispvm default_target=@dispvm",
         "ask.seven * @anyvm @tag:secret ask",
         "ask.seven * @anyvm @anyvm deny",
     ]),
     [(f"ask.{n}", "") for n in ("one", "two", "three", "four", "five", "six", "seven")])

case("params",
     etc("50-par.policy", [
         "par.user * @anyvm @anyvm allow user=root",
         "par.notify * @anyvm @anyvm allow notify=yes",
         "par.noauto * @anyvm @anyvm allow autostart=no",
         "par.noautoyes * @anyvm @anyvm allow autostart=yes notify=no",
         "par.denyquiet * @anyvm @anyvm deny notify=no",
         "par.denyloud * @anyvm @anyvm deny notify=yes",
         "par.askall * @anyvm @anyvm ask user=u notify=yes autostart=yes default_target=work",
         "par.emptyuser * @anyvm @anyvm allow user=",
         "par.admin * @anyvm @adminvm allow user=root autostart=no",
     ]),
     [(s, "") for s in ("par.user", "par.notify", "par.noauto", "par.noautoyes", "par.denyquiet",
                        "par.denyloud", "par.askall", "par.emptyuser", "par.admin")])

case("arguments",
     etc("50-arg.policy", [
         "arg.svc + @anyvm @anyvm allow target=work",
         "arg.svc +foo @anyvm @anyvm allow target=personal",
         "arg.svc +foo+bar @anyvm @anyvm allow target=vault",
         "arg.svc * @anyvm @anyvm deny notify=no",
         "arg.other +x.y_z-1 @anyvm @anyvm allow target=sys-net",
         "* * @anyvm dom0 allow",
         "* * @anyvm @anyvm ask",
     ]),
     [("arg.svc", a) for a in ("", "foo", "foo+bar", "other", "+")]
     + [("arg.other", a) for a in ("", "x.y_z-1", "x")] + [("unknown.Svc", ""), ("unknown.Svc", "a")],
     q={"sources": FEW_SOURCES, "targets": FEW_TARGETS})

case("files",
     {
         "etc/qubes/policy.d/10-a.policy": ["# first file", "", "   ", "file.a * @anyvm @anyvm allow target=work"],
         "etc/qubes/policy.d/20-b.policy": ["file.b * @anyvm @anyvm allow target=work"],
         "etc/qubes/policy.d/.hidden.policy": ["this is not a policy"],
         "etc/qubes/policy.d/notes.txt": ["neither is this"],
         "etc/qubes/policy.d/Upper.conf": ["nor this"],
         "etc/qubes/policy.d/dir.policy/x": ["a directory named like a policy file"],
         "etc/qubes/policy.d/30-inc.policy": [
             "!include include/inc1",
             "!include-dir more",
             "!include-service file.old * include/old-format",
             "!include-service file.oldarg +a include/old-format",
             "file.b * @anyvm @anyvm allow target=vault",
         ],
         "etc/qubes/policy.d/include/inc1": ["file.inc * @anyvm @anyvm allow target=personal",
                                             "!include include/inc2"],
         "etc/qubes/policy.d/include/inc2": ["file.inc2 * @anyvm @anyvm ask default_target=work"],
         "etc/qubes/policy.d/more/b.policy": ["file.dir * @anyvm @anyvm allow target=sys-net"],
         "etc/qubes/policy.d/more/a.policy": ["file.dir * @anyvm @anyvm allow target=vault"],
         "etc/qubes/policy.d/more/.x.policy": ["junk"],
         "etc/qubes/policy.d/more/ignored": ["junk"],
         "etc/qubes/policy.d/include/old-format": [
             "# old format", "$anyvm $dispvm allow", "work $anyvm ask,default_target=personal",
             "$tag:work personal allow,user=root", "$include:include/old-more", "$anyvm $anyvm deny"],
         "etc/qubes/policy.d/include/old-more": ["vault $adminvm allow,target=dom0"],
         "etc/qubes/policy.d/90-default.policy": ["* * @anyvm @anyvm deny notify=no"],
         "run/qubes/policy.d/20-b.policy": ["file.b * @anyvm @anyvm allow target=personal"],
         "run/qubes/policy.d/05-run.policy": ["!include include/run-inc",
                                              "file.a * vault @anyvm deny"],
         "run/qubes/policy.d/include/run-inc": ["file.run * @anyvm @anyvm allow target=sys-net"],
     },
     [(s, a) for s in ("file.a", "file.b", "file.inc", "file.inc2", "file.dir", "file.old",
                       "file.oldarg", "file.run", "other") for a in ("", "a")],
     q={"sources": FEW_SOURCES, "targets": FEW_TARGETS})

case("compat",
     {
         "etc/qubes/policy.d/10-first.policy": ["comp.New * @anyvm @anyvm allow target=work"],
         "etc/qubes/policy.d/35-compat.policy": ["!compat-4.0"],
         "etc/qubes/policy.d/90-default.policy": ["* * @anyvm @anyvm ask"],
         "etc/qubes-rpc/policy/comp.Old": ["$anyvm $dispvm allow", "work $anyvm ask,default_target=personal",
                                           "$include:comp-inc"],
         "etc/qubes-rpc/policy/comp.Old+arg": ["work personal allow"],
         "etc/qubes-rpc/policy/comp.Old+zz": ["vault personal allow,user=root"],
         "etc/qubes-rpc/policy/comp-inc": ["$anyvm $adminvm allow"],
         "etc/qubes-rpc/policy/comp.Old.rpmnew": ["garbage line"],
         "etc/qubes-rpc/policy/.comp.Hidden": ["garbage line"],
         "etc/qubes-rpc/policy/bad name": ["garbage line"],
     },
     [(s, a) for s in ("comp.Old", "comp.New", "comp-inc", "comp.Other") for a in ("", "arg", "zz", "x")],
     q={"sources": FEW_SOURCES, "targets": FEW_TARGETS})

case("include-paths",
     {
         "etc/qubes/policy.d/30-a.policy": ["!include-dir sub", "!include ../policy.d/include/dots",
                                            "!include-service inc.svc +x include/old"],
         "etc/qubes/policy.d/sub/a.policy": ["!include include/z"],
         "etc/qubes/policy.d/sub/include/z": ["inc.z * @anyvm @anyvm allow target=vault"],
         "etc/qubes/policy.d/include/z": ["inc.z * @anyvm @anyvm allow target=personal"],
         "etc/qubes/policy.d/include/dots": ["inc.dots * @anyvm @anyvm allow target=sys-net"],
         "etc/qubes/policy.d/include/old": ["$include:include/old2", "$anyvm $anyvm allow,target=vault"],
         "etc/qubes/policy.d/include/old2": ["work $anyvm allow,target=personal,user=u,notify=yes"],
         "run/qubes/policy.d/10-r.policy": ["!include include/r"],
         "run/qubes/policy.d/include/r": ["inc.r * @anyvm @anyvm allow target=fedora"],
         "etc/qubes/policy.d/include/r": ["inc.r * @anyvm @anyvm allow target=vault"],
         "etc/qubes/policy.d/35-compat.policy": ["!compat-4.0"],
         "etc/qubes-rpc/policy/sub/inc.legacy": ["$anyvm $anyvm allow"],
         "etc/qubes-rpc/policy/inc.legacy+arg": ["$include:sub/inc.legacy"],
     },
     [(s, a) for s in ("inc.z", "inc.dots", "inc.svc", "inc.r", "inc.legacy") for a in ("", "x", "arg")],
     q={"sources": FEW_SOURCES, "targets": FEW_TARGETS})

case("whitespace",
     etc("50-ws.policy", ["\tws.tab\t*\t@anyvm\t@anyvm\tallow\ttarget=work  ",
                          "  # indented comment",
                          "ws.uni\u00a0*\u2003@anyvm @anyvm allow target=work",
                          "ws.crlf * @anyvm @anyvm allow target=personal\r"]),
     [("ws.tab", ""), ("ws.uni", ""), ("ws.crlf", "")], q={"sources": FEW_SOURCES, "targets": FEW_TARGETS})

case("dispvm-no-default",
     etc("50-d.policy", ["dv.a * @anyvm @dispvm:default-dvm allow", "dv.b * @anyvm @dispvm:@tag:dvm-tag allow",
                         "dv.c * @anyvm @dispvm allow", "dv.d * @anyvm @anyvm ask"]),
     [("dv.a", ""), ("dv.b", ""), ("dv.c", ""), ("dv.d", "")],
     q={"sources": ["work", "vault", "uuidvm", "personal", "dom0"],
        "targets": ["@dispvm", "@dispvm:default-dvm", "@dispvm:dvm-work", "work"]})

ERRORS = {
    "filename-upper": {"etc/qubes/policy.d/Bad.policy": ["x * @anyvm @anyvm allow"]},
    "filename-space": {"etc/qubes/policy.d/a b.policy": ["x * @anyvm @anyvm allow"]},
    "filename-run": {"run/qubes/policy.d/x+y.policy": ["x * @anyvm @anyvm allow"]},
    "source-default": {"etc/qubes/policy.d/a.policy": ["x * @default @anyvm allow"]},
    "source-dispvm": {"etc/qubes/policy.d/a.policy": ["x * @dispvm @anyvm allow"]},
    "target-unknown": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @foo allow"]},
    "target-empty-tag": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @tag: allow"]},
    "target-empty-dispvm-tag": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @dispvm:@tag: allow"]},
    "target-type-at": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @type:@x allow"]},
    "redirect-anyvm": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow target=@anyvm"]},
    "redirect-star": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow target=*"]},
    "redirect-tag": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm ask target=@tag:work"]},
    "redirect-default": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm ask target=@default"]},
    "redirect-empty": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow target="]},
    "default-target-type": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm ask default_target=@type:AppVM"]},
    "action-unknown": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm permit"]},
    "param-unknown": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow foo=bar"]},
    "param-deny-target": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm deny target=work"]},
    "param-allow-default-target": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow default_target=work"]},
    "param-twice": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow user=a user=b"]},
    "param-no-equals": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow user"]},
    "param-notify-value": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow notify=maybe"]},
    "param-autostart-value": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm deny autostart=true"]},
    "star-service-arg": {"etc/qubes/policy.d/a.policy": ["* +x @anyvm @anyvm allow"]},
    "arg-no-plus": {"etc/qubes/policy.d/a.policy": ["x foo @anyvm @anyvm allow"]},
    "arg-chars": {"etc/qubes/policy.d/a.policy": ["x +a/b @anyvm @anyvm allow"]},
    "service-plus": {"etc/qubes/policy.d/a.policy": ["x+y * @anyvm @anyvm allow"]},
    "service-chars": {"etc/qubes/policy.d/a.policy": ["x:y * @anyvm @anyvm allow"]},
    "fields": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm"]},
    "trailing-comment": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @anyvm allow # why"]},
    "include-missing": {"etc/qubes/policy.d/a.policy": ["!include include/nothing"]},
    "include-params": {"etc/qubes/policy.d/a.policy": ["!include a b"]},
    "include-dir-missing": {"etc/qubes/policy.d/a.policy": ["!include-dir nothing"]},
    "include-dir-bad-name": {"etc/qubes/policy.d/a.policy": ["!include-dir d"],
                             "etc/qubes/policy.d/d/X.policy": ["x * @anyvm @anyvm allow"]},
    "include-bad-line": {"etc/qubes/policy.d/a.policy": ["!include inc"],
                         "etc/qubes/policy.d/inc": ["x * @anyvm @anyvm allow", "y * @anyvm"]},
    "include-service-arg": {"etc/qubes/policy.d/a.policy": ["!include-service x arg inc"],
                            "etc/qubes/policy.d/inc": ["$anyvm $anyvm allow"]},
    "include-service-directive": {"etc/qubes/policy.d/a.policy": ["!include-service x * inc"],
                                  "etc/qubes/policy.d/inc": ["!include-dir foo"]},
    "directive-unknown": {"etc/qubes/policy.d/a.policy": ["!foo"]},
    "allow-default-no-target": {"etc/qubes/policy.d/a.policy": ["x * @anyvm @default allow"]},
    "compat-params": {"etc/qubes/policy.d/a.policy": ["!compat-4.0 yes"]},
    "compat-no-legacy-dir": {"etc/qubes/policy.d/a.policy": ["!compat-4.0"]},
    "compat-bad-legacy": {"etc/qubes/policy.d/a.policy": ["!compat-4.0"],
                          "etc/qubes-rpc/policy/svc": ["$anyvm $anyvm frobnicate"]},
    "late-error": {"etc/qubes/policy.d/a.policy": ["* * @anyvm @anyvm allow"],
                   "etc/qubes/policy.d/z.policy": ["x * @anyvm @anyvm allow target=@type:AppVM"]},
}
for name, files in ERRORS.items():
    CASES["error-" + name] = {"files": files, **queries([("x", "")], ["work"], ["personal"])}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fleet.json").write_text(json.dumps(FLEET, indent=1) + "\n")
    for old in OUT.glob("*.case.json"):
        old.unlink()
    for name, body in CASES.items():
        (OUT / f"{name}.case.json").write_text(json.dumps(body, indent=1) + "\n")
    count = sum(len(c["calls"]) * len(c["sources"]) * len(c["targets"]) for c in CASES.values())
    print(f"{len(CASES)} cases, {count} queries")


if __name__ == "__main__":
    main()

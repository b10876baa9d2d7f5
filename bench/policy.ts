/**
 * Policy evaluations per second: our engine on the installed dom0 tree
 * (Qubes-like defaults plus qmcp's rendered policy) and, given a
 * qubes-core-qrexec checkout, Qubes' own parser on the same queries.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { fleetSystemInfo } from '../src/cli/fleet-system-info.js';
import type { PolicyRequest, Resolution } from '../src/shared/policy/index.js';
import { loadPolicyFromRoot } from '../src/shared/policy/index.js';
import { dom0Root } from '../src/sim/host.js';
import type { Fleet } from '../src/sim/fleet.js';
import type { Row } from './stats.js';

const SECTION = 'policy engine';
const PARSER_BENCH = fileURLToPath(new URL('../../scripts/policy-parser-check/bench.py', import.meta.url));

/** Allows, denies and asks, from the principal, the agent's qubes and the operator's. */
const QUERIES: readonly PolicyRequest[] = [
  { source: 'mcp-control', target: '@adminvm', service: 'qmcp.List', argument: '' },
  { source: 'mcp-control', target: '@adminvm', service: 'qmcp.Info', argument: 'ai-sandbox' },
  { source: 'mcp-control', target: 'ai-full-box', service: 'admin.vm.CurrentState', argument: '' },
  { source: 'mcp-control', target: 'work', service: 'admin.vm.CurrentState', argument: '' },
  { source: 'mcp-control', target: 'ai-exec-box', service: 'qmcp.Exec', argument: '' },
  { source: 'mcp-control', target: 'ai-sandbox', service: 'qmcp.Exec', argument: '' },
  { source: 'mcp-control', target: 'ai-full-box', service: 'admin.vm.Start', argument: '' },
  { source: 'mcp-control', target: 'vault', service: 'qubes.VMShell', argument: '' },
  { source: 'ai-full-box', target: '@adminvm', service: 'qmcp.List', argument: '' },
  { source: 'ai-full-box', target: 'ai-dump', service: 'qubes.Filecopy', argument: '' },
  { source: 'personal', target: 'work', service: 'qubes.Filecopy', argument: '' },
  { source: 'work', target: '@default', service: 'qubes.OpenInVM', argument: '' },
  { source: 'work', target: '@dispvm', service: 'qubes.OpenURL', argument: '' },
  { source: 'sys-net', target: 'dom0', service: 'qubes.UpdatesProxy', argument: '' },
  { source: 'work', target: 'dom0', service: 'qubes.ClipboardPaste', argument: '' },
  { source: 'ai-net-box', target: '@adminvm', service: 'admin.vm.List', argument: '' },
];

/** An answer as driver.py's real_answer gives it, to compare verdicts. */
type Answer = Record<string, unknown>;

function answerOf(r: Resolution): Answer {
  switch (r.action) {
    case 'allow':
      return { action: 'allow', target: r.target, user: r.user, autostart: r.autostart, notify: r.notify };
    case 'ask':
      return { action: 'ask', target: r.defaultTarget, targets: r.targets, user: r.user, autostart: r.autostart, notify: r.notify };
    case 'deny':
      return { action: 'deny', target: null, notify: r.notify };
  }
}

/** qrexec-daemon refuses a call whose evaluation raised, and nobody is notified (docs/policy-engine.md). */
function parserVerdict(a: Answer): Answer {
  return a['action'] === 'error' ? { action: 'deny', target: null, notify: false } : a;
}

interface Rate {
  evaluations: number;
  ms: number;
}

function row(what: string, rate: Rate): Row {
  return {
    section: SECTION,
    what,
    n: String(rate.evaluations),
    median: `${Math.round((rate.evaluations / rate.ms) * 1000)}/s`,
    p95: `${((rate.ms / rate.evaluations) * 1000).toFixed(1)} µs each`,
  };
}

/** Qubes' parser on the same tree, system info and queries, in a python3 with the checkout on PYTHONPATH. */
function parserRate(root: string, system: unknown, budgetMs: number, checkout: string): { rate: Rate; answers: Answer[] } {
  const queries = QUERIES.map((q) => ({ source: q.source, target: q.target, service: q.service, arg: q.argument }));
  const env = { ...process.env, PYTHONPATH: [checkout, process.env['PYTHONPATH']].filter(Boolean).join(':') };
  const run = spawnSync('python3', [PARSER_BENCH], {
    input: JSON.stringify({ root, system, queries, ms: budgetMs }),
    env,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (run.status !== 0) throw new Error(`qrexec parser bench failed (${run.status ?? run.signal}): ${run.stderr.trim()}`);
  const out = JSON.parse(run.stdout) as { answers: Answer[]; evaluations: number; seconds: number };
  return { rate: { evaluations: out.evaluations, ms: out.seconds * 1000 }, answers: out.answers.map(parserVerdict) };
}

/**
 * Evaluates the query set round after round for about `budgetMs`; checks every query resolves.
 * With `qrexecCheckout`, runs Qubes' parser as long on the same queries (between two halves of
 * ours), fails on any verdict that differs, and gives the ratio.
 */
export function policyRate(dir: string, fleet: Fleet, budgetMs: number, qrexecCheckout?: string): Row[] {
  const root = dom0Root(dir);
  const policy = loadPolicyFromRoot(root);
  const system = fleetSystemInfo(fleet);
  const counts = { allow: 0, deny: 0, ask: 0 };
  const ours = QUERIES.map((q) => policy.evaluate(q, system));
  for (const r of ours) counts[r.action]++;
  const run = (ms: number): Rate => {
    let evaluations = 0;
    const t0 = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (const q of QUERIES) policy.evaluate(q, system);
      evaluations += QUERIES.length;
      elapsed = performance.now() - t0;
    }
    return { evaluations, ms: elapsed };
  };
  const what = `${QUERIES.length} queries: ${counts.allow} allow, ${counts.deny} deny, ${counts.ask} ask`;
  if (qrexecCheckout === undefined) return [row(`evaluations/s, qmcp engine (${what})`, run(budgetMs))];
  // Our engine runs half before and half after the parser, so that a machine whose load
  // changes during the run weighs on both sides alike.
  const before = run(budgetMs / 2);
  const parser = parserRate(root, system, budgetMs, qrexecCheckout);
  const after = run(budgetMs / 2);
  const engine: Rate = { evaluations: before.evaluations + after.evaluations, ms: before.ms + after.ms };
  const rows = [row(`evaluations/s, qmcp engine (${what})`, engine)];
  QUERIES.forEach((q, i) => {
    const mine = JSON.stringify(answerOf(ours[i] as Resolution));
    const theirs = JSON.stringify(parser.answers[i]);
    if (mine !== theirs) throw new Error(`policy verdicts differ for ${JSON.stringify(q)}: qmcp ${mine}, qrexec ${theirs}`);
  });
  const ratio = engine.evaluations / engine.ms / (parser.rate.evaluations / parser.rate.ms);
  rows.push(row('evaluations/s, Qubes qrexec parser (same queries, same verdicts)', parser.rate));
  rows.push({ section: SECTION, what: 'ratio: qmcp engine / Qubes parser', n: '-', median: `${ratio.toFixed(1)}×`, p95: '-' });
  return rows;
}

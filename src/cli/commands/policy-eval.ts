import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { fleetSystemInfo, parseFleet } from '../fleet-system-info.js';
import type { Policy, Resolution, SystemInfo } from '../../shared/policy/index.js';
import { loadPolicyDir, loadPolicyFromRoot, PolicySyntaxError } from '../../shared/policy/index.js';

const USAGE = `usage: qmcp policy eval (--policy-dir DIR | --root ROOT) --fleet FILE

Evaluates qrexec calls exactly as qrexec would. Reads one JSON object per
line on stdin, {"source", "target", "service", "arg"} (target and arg may be
left out), and writes one JSON line per call: {"action": "allow", "ask" or
"deny", "target", ...} with the rule that decided it. The policy is the
policy.d directory DIR, or ROOT/etc/qubes/policy.d with ROOT/run/qubes/policy.d
over it; FILE is a fleet file (the qubes, their classes, tags and
properties). Exit 0 answered, 1 policy invalid, fleet unreadable or a line
not a query, 2 usage.`;

interface Query {
  source: string;
  target: string;
  service: string;
  arg: string;
}

function options(args: string[]): { policyDir?: string; root?: string; fleet: string } {
  let values: Record<string, unknown>;
  try {
    const parsed = parseArgs({
      args,
      options: { 'policy-dir': { type: 'string' }, root: { type: 'string' }, fleet: { type: 'string' } },
      allowPositionals: false,
      strict: true,
    });
    values = parsed.values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const policyDir = values['policy-dir'] as string | undefined;
  const root = values['root'] as string | undefined;
  const fleet = values['fleet'] as string | undefined;
  if ((policyDir === undefined) === (root === undefined)) throw new UsageError('give exactly one of --policy-dir DIR and --root ROOT');
  if (fleet === undefined) throw new UsageError('--fleet FILE is required');
  return { ...(policyDir !== undefined ? { policyDir } : {}), ...(root !== undefined ? { root } : {}), fleet };
}

function parseQuery(line: string, lineNo: number): Query {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error(`stdin line ${lineNo}: not JSON`);
  }
  const q = json as Record<string, unknown>;
  const str = (key: string, fallback?: string): string => {
    const v = q[key] ?? fallback;
    if (typeof v !== 'string') throw new Error(`stdin line ${lineNo}: "${key}" must be a string`);
    return v;
  };
  return { source: str('source'), target: str('target', ''), service: str('service'), arg: str('arg', '') };
}

/** One answer line; `target` is where the call goes (allow), the dialog's default (ask) or null (deny). */
function answer(r: Resolution): Record<string, unknown> {
  const rule = r.rule ? `${r.rule.file}:${r.rule.line}` : null;
  switch (r.action) {
    case 'allow':
      return { action: 'allow', target: r.target, user: r.user, autostart: r.autostart, notify: r.notify, rule };
    case 'ask':
      return {
        action: 'ask', target: r.defaultTarget, targets: r.targets, default_target: r.defaultTarget,
        user: r.user, autostart: r.autostart, notify: r.notify, rule,
      };
    case 'deny':
      return { action: 'deny', target: null, reason: r.reason, notify: r.notify, rule };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const policyEvalCommand: Command = {
  path: ['policy', 'eval'],
  summary: 'evaluate qrexec calls (JSON lines on stdin) against a policy',
  usage: USAGE,
  async run(args) {
    const opts = options(args);
    let system: SystemInfo;
    try {
      system = fleetSystemInfo(parseFleet(JSON.parse(readFileSync(opts.fleet, 'utf8'))));
    } catch (err) {
      process.stderr.write(`qmcp: fleet ${opts.fleet}: ${(err as Error).message}\n`);
      return 1;
    }
    let policy: Policy;
    try {
      policy = opts.root !== undefined ? loadPolicyFromRoot(opts.root) : loadPolicyDir(opts.policyDir ?? '');
    } catch (err) {
      if (!(err instanceof PolicySyntaxError)) throw err;
      // qrexec refuses every call while the policy is invalid; say why instead of answering.
      process.stderr.write(`qmcp: policy error: ${err.file}:${err.line}: ${err.detail}\n`);
      return 1;
    }
    const lines = (await readStdin()).split('\n');
    const out: string[] = [];
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      let q: Query;
      try {
        q = parseQuery(line, i + 1);
      } catch (err) {
        process.stdout.write(out.join(''));
        process.stderr.write(`qmcp: ${(err as Error).message}\n`);
        return 1;
      }
      const resolution = policy.evaluate({ service: q.service, argument: q.arg, source: q.source, target: q.target }, system);
      out.push(JSON.stringify(answer(resolution)) + '\n');
    }
    process.stdout.write(out.join(''));
    return 0;
  },
};

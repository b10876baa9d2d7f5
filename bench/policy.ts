/** Policy evaluations per second: our engine on the installed dom0 tree (Qubes-like defaults plus qmcp's rendered policy). */
import { performance } from 'node:perf_hooks';
import { fleetSystemInfo } from '../src/cli/fleet-system-info.js';
import type { PolicyRequest } from '../src/shared/policy/index.js';
import { loadPolicyFromRoot } from '../src/shared/policy/index.js';
import { dom0Root } from '../src/sim/host.js';
import type { Fleet } from '../src/sim/fleet.js';
import type { Row } from './stats.js';

const SECTION = 'policy engine';

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

/** Evaluates the query set round after round for about `budgetMs`; checks every query resolves. */
export function policyRate(dir: string, fleet: Fleet, budgetMs: number): Row[] {
  const policy = loadPolicyFromRoot(dom0Root(dir));
  const system = fleetSystemInfo(fleet);
  const counts = { allow: 0, deny: 0, ask: 0 };
  for (const q of QUERIES) counts[policy.evaluate(q, system).action]++;
  let evaluations = 0;
  const t0 = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (const q of QUERIES) policy.evaluate(q, system);
    evaluations += QUERIES.length;
    elapsed = performance.now() - t0;
  }
  const perSecond = Math.round((evaluations / elapsed) * 1000);
  return [
    {
      section: SECTION,
      what: `evaluations/s (${QUERIES.length} queries: ${counts.allow} allow, ${counts.deny} deny, ${counts.ask} ask)`,
      n: String(evaluations),
      median: `${perSecond}/s`,
      p95: `${((elapsed / evaluations) * 1000).toFixed(1)} µs each`,
    },
  ];
}

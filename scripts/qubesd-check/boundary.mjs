/**
 * The boundary's raw-qrexec refusal checks (test/boundary/refusal-cases.ts)
 * against real qubesd and against the simulator, on the boundary's fleet:
 * installs qmcp's dom0 side for each, then decides each call with the
 * installed policy over that side's internal.GetSystemInfo (what qrexec's
 * policy daemon reads from qubesd), and makes the device attaches through
 * the dom0 service. Compares the system info (uuids and power states
 * masked: offline nothing runs), each decision and each reply.
 *
 * usage: node scripts/qubesd-check/boundary.mjs REAL_SOCKET FLEET_JSON
 * (run.sh --boundary starts the real qubesd on the boundary's fleet; build
 * first). Prints the differences and 'BOUNDARY agreed/compared'; exits 1 on
 * a difference.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => import(join(repo, 'dist', p));
const { installDom0 } = await dist('src/dom0/install/index.js');
const { fleetState } = await dist('src/sim/fleet.js');
const { startQubesd } = await dist('src/sim/qubesd/index.js');
const { OPEN_GATE } = await dist('src/sim/open-gate.js');
const { InProcessHost } = await dist('verify/malformed/host.js');
const { qubesdCall } = await dist('src/shared/adminapi/client.js');
const { loadPolicyFromRoot } = await dist('src/shared/policy/index.js');
const { PRINCIPAL } = await dist('test/boundary/helpers.js');
const cases = await dist('test/boundary/refusal-cases.js');

const [realSocket, fleetPath] = process.argv.slice(2);
if (!realSocket || !fleetPath) {
  process.stderr.write('usage: boundary.mjs REAL_SOCKET FLEET_JSON\n');
  process.exit(2);
}
const fleet = JSON.parse(readFileSync(fleetPath, 'utf8'));
// test/boundary's settings (startBoundary)
const SETTINGS = {
  principal: PRINCIPAL,
  mode: 'least-privilege',
  tags: { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  gate: OPEN_GATE,
};
const bin = join(repo, 'bin', 'qmcp.js');
const work = mkdtempSync(join(tmpdir(), 'qmcp-boundary-check-'));
const sim = await startQubesd({ dir: join(work, 'sim'), seed: () => fleetState(fleet) });
const cleanup = () => rmSync(work, { recursive: true, force: true });
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

async function side(name, socketPath, internalSocket) {
  const root = join(work, name, 'dom0');
  await installDom0({ root, qubesdSocket: socketPath, initialSettings: SETTINGS });
  return { name, root, socketPath, internalSocket, host: InProcessHost.attach(root, { socketPath }) };
}
const sides = [await side('real', realSocket, `${realSocket}.internal`), await side('simulator', sim.socketPath, sim.internalSocketPath)];

async function systemInfo(s) {
  const r = await qubesdCall(s.internalSocket, { method: 'internal.GetSystemInfo', dest: 'dom0' });
  if (!r.ok) throw new Error(`${s.name}: internal.GetSystemInfo failed: ${r.message}`);
  return JSON.parse(r.data.toString('utf8'));
}
const mode = (m) => (s) =>
  new Promise((resolve) => {
    execFile(process.execPath, [bin, 'dom0', 'mode', m, '--json', '--root', s.root, '--qubesd-socket', s.socketPath], (err, stdout) => resolve(err ? `failed: ${err.message}` : stdout));
  });

const results = [];
async function step(label, run) {
  const out = [];
  for (const s of sides) out.push(JSON.stringify(await run(s)));
  results.push({ label, agreed: out[0] === out[1], real: out[0], sim: out[1] });
}

// what qrexec's policy daemon reads: offline the real qubes are all halted
await step('internal.GetSystemInfo', async (s) => {
  const info = await systemInfo(s);
  for (const d of Object.values(info.domains)) {
    d.uuid = 'UUID';
    d.power_state = 'MASKED';
    // qubesd's tags are a Python set: its order is the hash's
    d.tags = [...d.tags].sort();
  }
  return info;
});

/** qrexec's decision on a call, as the sim's router takes it: the installed policy over the side's system info. */
const decide = (source, target, call) => async (s) => {
  const [service, ...rest] = call.split('+');
  const r = loadPolicyFromRoot(s.root).evaluate({ service, argument: rest.join('+'), source, target }, await systemInfo(s));
  return r.action === 'deny' ? 'deny' : `${r.action} ${r.target ?? ''}`;
};
const denied = { real: 0, simulator: 0 };
const decideCounted = (source, target, call) => async (s) => {
  const d = await decide(source, target, call)(s);
  if (d === 'deny') denied[s.name] += 1;
  return d;
};

for (const source of cases.SANDBOX_SOURCES) {
  for (const [target, service] of cases.SANDBOX_DENIED) {
    if (target !== source) await step(`(c) ${source} -> ${target} ${service}`, decideCounted(source, target, service));
  }
}
for (const s of sides) await mode('compat')(s);
for (const service of cases.NATIVE_DENIED) {
  for (const target of cases.NATIVE_TARGETS) await step(`(d) ${PRINCIPAL} -> ${target} ${service}`, decideCounted(PRINCIPAL, target, service));
}
for (const source of cases.DOM0_ADMIN_SOURCES) {
  for (const target of ['dom0', '@adminvm']) {
    for (const service of cases.DOM0_ADMIN) await step(`(e) ${source} -> ${target} ${service}`, decideCounted(source, target, service));
  }
}
for (const s of sides) await mode('least-privilege')(s);
// the dom0 service's refusals: every case answers as an absent frontend does
const attach = (frontend, payload) => (s) => s.host.call(`qmcp.DeviceAttach+${frontend}`, JSON.stringify(payload), { caller: PRINCIPAL });
await step('(b) qmcp.DeviceAttach+ai-nosuch', attach('ai-nosuch', { class: 'block', backend: 'ai-t-full', port: 'xvdi' }));
for (const [frontend, payload] of cases.DEVICE_REFUSALS) await step(`(b) qmcp.DeviceAttach+${frontend} ${JSON.stringify(payload)}`, attach(frontend, payload));

const diffs = results.filter((r) => !r.agreed);
process.stdout.write('DIFFERENCES\n');
for (const d of diffs) process.stdout.write(`  ${d.label}\n    real ${d.real.slice(0, 2000)}\n    sim  ${d.sim.slice(0, 2000)}\n`);
const decided = results.filter((r) => /^\((c|d|e)\) /.test(r.label)).length;
process.stdout.write(`refused by the policy: real ${denied.real}, simulator ${denied.simulator} of ${decided} calls\n`);
process.stdout.write(`BOUNDARY ${results.length - diffs.length}/${results.length} agreed\n`);
process.exitCode = diffs.length === 0 ? 0 : 1;
await sim.close();

/**
 * qmcp's dom0 side against real qubesd and against the simulator, on the
 * same fleet: installs into a dom0 root for each, then makes the same dom0
 * service calls as the principal (List, Info, SetProperty, SetFeature,
 * Create, CreateDispTemplate, Clone, Remove with entombing), the operator's
 * tombstone restore, doctor, explain, tier and mode, and compares each
 * answer, then the qubes' state, with the roots, sockets, uuids and clocks
 * masked. Only paths that start no qube: the real qubesd runs offline.
 *
 * usage: node scripts/qubesd-check/services.mjs REAL_SOCKET FLEET_JSON
 * (run.sh --services starts the real qubesd; build first). Prints one line
 * per step, the differences, and 'SERVICES agreed/compared'; exits 1 on a
 * difference.
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
const { DEMO_SETTINGS } = await dist('src/sim/demo-settings.js');
const { InProcessHost } = await dist('verify/malformed/host.js');
const { rawCall } = await dist('test/qubesd/helpers.js');
const { normalise } = await dist('test/qubesd/recorded-replay.js');

const [realSocket, fleetPath] = process.argv.slice(2);
if (!realSocket || !fleetPath) {
  process.stderr.write('usage: services.mjs REAL_SOCKET FLEET_JSON\n');
  process.exit(2);
}
const fleet = JSON.parse(readFileSync(fleetPath, 'utf8'));
// the demo's settings without its gate: every call answers at once
const SETTINGS = { ...DEMO_SETTINGS, gate: OPEN_GATE };
const PRINCIPAL = SETTINGS.principal;
const bin = join(repo, 'bin', 'qmcp.js');

const work = mkdtempSync(join(tmpdir(), 'qmcp-services-check-'));
const sim = await startQubesd({ dir: join(work, 'sim'), seed: () => fleetState(fleet) });
// whatever happens, the temp roots go (run.sh's trap covers only its own dir)
const cleanup = () => rmSync(work, { recursive: true, force: true });
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** One side: a dom0 root installed against its qubesd. */
async function side(name, socketPath) {
  const root = join(work, name, 'dom0');
  const install = await installDom0({ root, qubesdSocket: socketPath, initialSettings: SETTINGS });
  const host = InProcessHost.attach(root, { socketPath });
  return { name, root, socketPath, host, install };
}

const sides = [await side('real', realSocket), await side('simulator', sim.socketPath)];

const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** What must differ between the sides: their roots and sockets, uuids, clocks. */
function mask(s, text) {
  return String(text)
    .split(s.root)
    .join('ROOT')
    .split(s.socketPath)
    .join('SOCKET')
    .replace(UUID, 'UUID')
    .replace(ISO, 'TIME')
    .replace(/"(ms|elapsedMs|durationMs|at|time|created|removedAt)":\s*("[^"]*"|\d+)/g, '"$1":MASKED');
}

const results = [];
async function step(label, run) {
  const out = [];
  for (const s of sides) out.push(mask(s, JSON.stringify(await run(s))));
  const agreed = out[0] === out[1];
  results.push({ label, agreed, real: out[0], sim: out[1] });
  // the real side's answer in brief, to see what was compared
  process.stdout.write(`${agreed ? 'same' : 'DIFF'}  ${label}: ${out[0].slice(0, 160)}\n`);
}

const service = (full, payload = '') => (s) => s.host.call(full, typeof payload === 'string' ? payload : JSON.stringify(payload), { caller: PRINCIPAL });
// asynchronously: the simulator it talks to is served by this process
const cli = (...args) => (s) =>
  new Promise((resolve) => {
    execFile(process.execPath, [bin, 'dom0', ...args, '--root', s.root, '--qubesd-socket', s.socketPath], (err, stdout, stderr) => {
      resolve({ status: err ? (err.code ?? 'signal') : 0, stdout, stderr });
    });
  });

await step('install', (s) => ({ warnings: s.install.warnings, files: s.install.files.map((f) => `${f.path} ${f.status}`) }));
await step('doctor', cli('doctor', '--json'));
await step('explain', cli('explain', '--json'));
await step('explain --operations', cli('explain', '--operations', '--json'));
await step('qmcp.List', service('qmcp.List'));
for (const q of ['ai-sandbox', 'ai-dvm', 'ai-debian-tpl', 'ai-egress', 'ai-exec-box', 'work', 'no-such-qube']) {
  await step(`qmcp.Info+${q}`, service(`qmcp.Info+${q}`));
}
for (const [q, p] of [
  ['ai-sandbox', { name: 'memory', value: 800 }],
  ['ai-sandbox', { name: 'maxmem', value: 0 }],
  ['ai-sandbox', { name: 'vcpus', value: 2 }],
  ['ai-sandbox', { name: 'label', value: 'blue' }],
  ['ai-sandbox', { name: 'autostart', value: true }],
  ['ai-sandbox', { name: 'include_in_backups', value: false }],
  ['ai-sandbox', { name: 'default_dispvm', value: 'ai-dvm' }],
  ['ai-sandbox', { name: 'default_dispvm', value: 'ai-sandbox' }],
  ['ai-net-box', { name: 'netvm', value: null }],
  ['ai-egress', { name: 'netvm', value: null }],
  ['ai-sandbox', { name: 'memory', value: 0 }],
  ['ai-sandbox', { name: 'kernel', value: 'x' }],
  ['work', { name: 'memory', value: 800 }],
]) {
  await step(`qmcp.SetProperty+${q} ${JSON.stringify(p)}`, service(`qmcp.SetProperty+${q}`, p));
}
for (const [q, p] of [
  ['ai-sandbox', { name: 'gui', value: '0' }],
  ['ai-sandbox', { name: 'gui', value: '' }],
  ['ai-sandbox', { name: 'servicevm', value: '1' }],
  ['work', { name: 'gui', value: '0' }],
]) {
  await step(`qmcp.SetFeature+${q} ${JSON.stringify(p)}`, service(`qmcp.SetFeature+${q}`, p));
}
for (const p of [
  { name: 'ai-new', template: 'ai-debian-tpl' },
  { name: 'ai-new2', template: 'ai-debian-tpl', label: 'green', netvm: 'none' },
  { name: 'ai-new', template: 'ai-debian-tpl' },
  { name: 'ai-bad', template: 'debian-12-xfce' },
  { name: 'ai-bad', template: 'ai-sandbox' },
  { name: 'outside', template: 'ai-debian-tpl' },
]) {
  await step(`qmcp.Create ${JSON.stringify(p)}`, service('qmcp.Create', p));
}
await step('qmcp.CreateDispTemplate', service('qmcp.CreateDispTemplate', { name: 'ai-new-dvm', template: 'ai-debian-tpl' }));
await step('qmcp.CreateDispTemplate (not a template)', service('qmcp.CreateDispTemplate', { name: 'ai-new-dvm2', template: 'ai-sandbox' }));
await step('qmcp.Clone+ai-sandbox', service('qmcp.Clone+ai-sandbox', { name: 'ai-copy' }));
await step('qmcp.Clone+ai-debian-tpl', service('qmcp.Clone+ai-debian-tpl', { name: 'ai-tpl-copy' }));
await step('qmcp.Clone+work', service('qmcp.Clone+work', { name: 'ai-work-copy' }));
await step('qmcp.Info+ai-new', service('qmcp.Info+ai-new'));
await step('qmcp.Info+ai-copy', service('qmcp.Info+ai-copy'));
await step('qmcp.Remove+ai-new', service('qmcp.Remove+ai-new'));
await step('qmcp.Remove+ai-copy', service('qmcp.Remove+ai-copy'));
await step('qmcp.Remove+ai-egress', service('qmcp.Remove+ai-egress'));
await step('qmcp.Create over a tombstone', service('qmcp.Create', { name: 'ai-new', template: 'ai-debian-tpl' }));
await step('tombstones list', cli('tombstones', 'list', '--json'));
await step('tombstones restore ai-new', cli('tombstones', 'restore', 'ai-new', '--json'));
await step('qmcp.Info+ai-new (restored)', service('qmcp.Info+ai-new'));
await step('tier ai-new exec', cli('tier', 'ai-new', 'exec', '--json'));
await step('tier ai-sandbox full', cli('tier', 'ai-sandbox', 'full', '--json'));
await step('tier work exec', cli('tier', 'work', 'exec', '--json'));
await step('mode compat', cli('mode', 'compat', '--json'));
await step('explain ai-new', cli('explain', 'ai-new', '--json'));
await step('mode least-privilege', cli('mode', 'least-privilege', '--json'));
await step('qmcp.List (after)', service('qmcp.List'));
await step('doctor (after)', cli('doctor', '--json'));

// The qubes' state, as the Admin API shows it on each side.
const admin = (s, method, dest, arg = '') => rawCall(s.socketPath, Buffer.from(`${method}${arg ? `+${arg}` : ''} dom0 name ${dest}\0`)).then((b) => b.toString('latin1'));
const names = (await admin(sides[1], 'admin.vm.List', 'dom0')).slice(2).split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
await step('admin.vm.List (state)', (s) => admin(s, 'admin.vm.List', 'dom0').then((r) => normalise('admin.vm.List', 'dom0', '', r)));
for (const q of names) {
  await step(`state of ${q}`, async (s) => {
    const features = {};
    for (const f of (await admin(s, 'admin.vm.feature.List', q)).slice(2).split('\n').filter(Boolean)) features[f] = await admin(s, 'admin.vm.feature.Get', q, f);
    return {
      tags: await admin(s, 'admin.vm.tag.List', q),
      features,
      properties: normalise('admin.vm.property.GetAll', q, '', await admin(s, 'admin.vm.property.GetAll', q)),
    };
  });
}

const diffs = results.filter((r) => !r.agreed);
process.stdout.write('DIFFERENCES\n');
for (const d of diffs) process.stdout.write(`  ${d.label}\n    real ${d.real.slice(0, 1500)}\n    sim  ${d.sim.slice(0, 1500)}\n`);
process.stdout.write(`SERVICES ${results.length - diffs.length}/${results.length} agreed\n`);
process.exitCode = diffs.length === 0 ? 0 : 1;
await sim.close();

/**
 * What starting a dom0 service costs: qrexec runs a fresh Node process for
 * every qmcp call, where a native admin.* call goes to qubesd's open socket.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { dom0Root } from '../src/sim/host.js';
import { routerCall } from './router-call.js';
import { latencyRow, ms, sample, type Row } from './stats.js';

const SECTION = 'dom0 service start';

/** qmcp's uniform refusal status, as qrexec-client-vm reports a refusal. */
const REFUSED = 126;

async function expectStatus(p: Promise<{ status: number }>, want: number, what: string): Promise<void> {
  const { status } = await p;
  if (status !== want) throw new Error(`${what}: exit status ${status}, expected ${want}`);
}

/** Runs the installed qmcp wrapper as qrexec would, for a service name it does not serve: a refusal. */
function spawnRefusal(wrapper: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(wrapper, [], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {
        ...process.env,
        QREXEC_SERVICE_FULL_NAME: 'qmcp.BenchNoSuchService+',
        QREXEC_REMOTE_DOMAIN: 'mcp-control',
        QREXEC_REQUESTED_TARGET_TYPE: 'keyword',
        QREXEC_REQUESTED_TARGET_KEYWORD: 'adminvm',
        QREXEC_SERVICE_ARGUMENT: '',
      },
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1 }));
  });
}

function spawnBareNode(): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1 }));
  });
}

export async function serviceStart(dir: string, principal: string, calls: number): Promise<Row[]> {
  const list = await sample(calls, () => expectStatus(routerCall(dir, principal, '@adminvm', 'qmcp.List'), 0, 'qmcp.List'));
  const native = await sample(calls, () => expectStatus(routerCall(dir, principal, 'ai-full-box', 'admin.vm.CurrentState'), 0, 'admin.vm.CurrentState'));
  const denied = await sample(calls, () => expectStatus(routerCall(dir, principal, '@adminvm', 'qmcp.BenchNoPolicy'), REFUSED, 'unlisted service'));
  const wrapper = join(dom0Root(dir), 'etc', 'qubes-rpc', 'qmcp.List');
  const refusal = await sample(calls, () => expectStatus(spawnRefusal(wrapper), REFUSED, 'service-main refusal'));
  const bare = await sample(calls, () => expectStatus(spawnBareNode(), 0, 'node -e'));
  return [
    latencyRow(SECTION, 'qmcp.List via router', list),
    latencyRow(SECTION, 'admin.vm.CurrentState via router', native),
    latencyRow(SECTION, 'policy deny via router (no service)', denied),
    {
      section: SECTION,
      what: 'start cost: qmcp.List − admin.vm.CurrentState',
      n: String(calls),
      median: ms(list.medianMs - native.medianMs),
      p95: '-',
    },
    latencyRow(SECTION, 'service-main spawn, refusal', refusal),
    latencyRow(SECTION, 'bare node spawn (floor)', bare),
  ];
}

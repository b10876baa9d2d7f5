/**
 * Races with the action gate on: a gated call waits for the operator while
 * the other side lowers its qube's tier or hides it, and the answerer
 * allows only once that is done (a barrier, not a delay). The call must then
 * be refused, after the approval, with nothing changed since the other side
 * acted: an approval never lifts what the tiers say now. A round with no
 * race shows the same call acting once allowed.
 */
import { readTail } from '../../src/dom0/audit/index.js';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Decision } from '../../src/dom0/gate/store.js';
import { startAnswerer } from '../gate/answerer.js';
import type { WaitingCall } from '../gate/answerer.js';
import { gateSetting } from '../gate/settings.js';
import { BASE_SETTINGS, TAGS, isRefused, show } from '../malformed/host.js';
import type { InProcessHost } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';

/** The qube the gated calls name: full tier, inside the umbrella, halted. */
export const GATE_TARGET = 'ai-gate';

/** Gated calls on GATE_TARGET, each needing at least the exec tier over it. */
const CALLS: readonly { readonly op: string; readonly payload: string }[] = [
  { op: 'property.set', payload: JSON.stringify({ name: 'memory', value: 1234 }) },
  { op: 'feature.set', payload: JSON.stringify({ name: 'gui', value: '0' }) },
  { op: 'remove', payload: '' },
  { op: 'start', payload: '' },
  { op: 'clone', payload: JSON.stringify({ name: 'ai-gate-clone' }) },
];

/** What the other side does while the request waits, and how it is undone for the next round. */
const SIDES: readonly { readonly what: string; readonly tag: string }[] = [
  { what: 'its tier lowered', tag: TAGS.full },
  { what: 'hidden', tag: TAGS.umbrella },
];

export interface GateRaceOptions {
  readonly settings?: Record<string, unknown>;
  readonly fail: (what: string, how: string) => void;
}

/** Runs the rounds on `h` (a full host's dom0 root); resolves to the number of calls refused after their approval. */
export async function raceTheGate(h: InProcessHost, scale: number, o: GateRaceOptions): Promise<{ rounds: number; refusedAfterApproval: number }> {
  // every operation that can ask asks, the rest as the host was installed
  h.writeSettings({ ...BASE_SETTINGS, ...o.settings, gate: gateSetting('every') });
  const dom0 = new Qubesd(h.sim.socketPath);
  let barrier: (call: WaitingCall) => Promise<Decision> = async () => 'deny';
  const answerer = startAnswerer({ root: h.root, seed: 0, decide: (call) => barrier(call) });
  let rounds = 0;
  let refused = 0;
  const call = (op: string, payload: string): ReturnType<InProcessHost['call']> => h.call(qrexecService(op, GATE_TARGET), payload);
  try {
    // no race: the call acts once allowed
    barrier = async () => 'allow';
    const control = await call('property.set', JSON.stringify({ name: 'memory', value: 999 }));
    if (control.status !== 0 || h.sim.app.vms.get(GATE_TARGET)?.props['memory'] !== 999) o.fail(`an allowed property.set of ${GATE_TARGET} did not act: ${show(control)}`, 'the control round');

    for (let round = 0; round < scale; round++) {
      for (const c of CALLS) {
        for (const side of SIDES) {
          rounds++;
          let acted: string | null = null;
          barrier = async (waiting) => {
            // the request exists: now the other side acts, and only then the operator allows
            if (waiting.qubes.includes(GATE_TARGET)) {
              await dom0.call('admin.vm.tag.Remove', GATE_TARGET, side.tag);
              acted = h.state();
            }
            return 'allow';
          };
          const how = `${qrexecService(c.op, GATE_TARGET)} ${c.payload}, ${side.what} while its request waited`;
          const r = await call(c.op, c.payload);
          const after = h.state();
          await dom0.call('admin.vm.tag.Set', GATE_TARGET, side.tag);
          if (acted === null) {
            o.fail(`${c.op} of ${GATE_TARGET} made no request: ${show(r)}`, how);
            continue;
          }
          const trail = await trailOfLastRequest(h.root);
          const answers = trail.filter((e) => e.kind === 'answer').map((e) => `${e.result ?? '-'} ${e.detail ?? '-'}`);
          // the newlines a waiting service writes say only that it waited
          const refusedNow = isRefused({ ...r, stdout: r.stdout.replace(/^\n+/, '') });
          if (!refusedNow || after !== acted || trail.some((e) => e.kind === 'intent') || !/^refused recheck: /.test(answers.at(-1) ?? '')) {
            o.fail(`${c.op} of ${GATE_TARGET}, ${side.what} while it waited, went on after the approval: ${show(r)}, machine ${after === acted ? 'unchanged' : 'changed'}, answers ${JSON.stringify(answers)}`, how);
          } else refused++;
        }
      }
    }
  } finally {
    await answerer.stop();
    for (const e of answerer.errors) o.fail(`the answerer failed: ${e}`, 'the gate races');
  }
  return { rounds, refusedAfterApproval: refused };
}

/** The audit entries of the last request, in order. */
async function trailOfLastRequest(root: string): Promise<AuditEntry[]> {
  const entries = (await readTail(root, 100)).map((l) => l.entry).filter((e): e is AuditEntry => e !== null);
  const request = entries.filter((e) => e.kind === 'request').at(-1);
  return request ? entries.filter((e) => e.correlation === request.correlation) : [];
}

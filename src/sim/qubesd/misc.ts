/**
 * qubesd's misc socket (qubes/api/misc.py): calls qubes make to dom0 outside
 * the Admin API, passed on by dom0's qrexec service scripts. Only
 * qubes.NotifyUpdates: qubes.FeaturesRequest and qubes.NotifyTools read what
 * the qube wrote into QubesDB, which the simulator does not have.
 */
import type { SimApp } from './app.js';
import { err } from './errors.js';
import type { MethodTable } from './methods/types.js';
import { m } from './methods/types.js';
import type { VmState } from './state.js';

/** Python's bytes.strip(): ASCII whitespace off both ends. */
function pyStrip(b: Buffer): string {
  return b.toString('latin1').replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '');
}

/** datetime.today().strftime("%Y-%m-%d %H:%M:%S"): local time. */
function today(now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())} ${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}`;
}

function templateOf(app: SimApp, vm: VmState): VmState | undefined {
  const t = app.propValue(vm, 'template');
  return typeof t === 'string' ? app.get(t) : undefined;
}

/** Sets the features qubesd keeps about a qube's updates; a bool feature is '1' or ''. */
function featureOfUpdate(app: SimApp, qube: VmState, available: boolean): void {
  const date = today(new Date());
  if (qube.features['updates-available'] && !available) app.setFeature(qube, 'last-update', date);
  app.setFeature(qube, 'updates-available', available ? '1' : '');
  app.setFeature(qube, 'last-updates-check', date);
}

export const miscMethods: MethodTable = {
  /**
   * A qube reports how many updates it sees. An updateable qube (template,
   * standalone) marks itself; any other marks the nearest updateable qube up
   * its template chain, unless that one runs, the count is 0, or the caller's
   * snapshot of it is outdated.
   */
  'qubes.NotifyUpdates': m(false, true, true, (ctx) => {
    const { app, src } = ctx;
    const count = pyStrip(ctx.payload);
    if (!/^[0-9]+$/.test(count)) throw err.protocol('Update count is not a digit');
    const available = /[1-9]/.test(count);
    let template = templateOf(app, src);
    const seen = new Set<string>([src.name]);
    while (template && app.propValue(template, 'updateable') !== true && !seen.has(template.name)) {
      seen.add(template.name);
      template = templateOf(app, template);
    }
    if (app.propValue(src, 'updateable') === true) {
      featureOfUpdate(app, src, available);
      app.save();
    } else if (template && app.propValue(template, 'updateable') === true) {
      if (template.power !== 'Halted' || !available || app.hasOutdatedVolumes(src)) return null;
      featureOfUpdate(app, template, available);
      app.save();
    }
    return null;
  }),
};

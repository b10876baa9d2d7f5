/** qmcp.DeviceDetach+FRONTEND: undoes a manual attachment between two visible full-tier qubes. */
import { QubesdError } from '../qubesd.js';
import { ActionableError } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import { actionable, parseDeviceRef } from './device-attach.js';
import type { DeviceRef } from './device-attach.js';

export const deviceDetachService: ServiceSpec<DeviceRef> = {
  operation: 'device.detach',
  changesState: true,
  parse: (argument, payload) => parseDeviceRef(argument, payload, false),
  targets: (d) => [
    { name: d.frontend, tier: 'full' },
    { name: d.backend, tier: 'full' },
  ],
  keys: (d) => [d.cls],
  reads: 'named',
  async handle({ input: d, qubesd }): Promise<{ frontend: string; class: string; backend: string; port: string }> {
    try {
      await qubesd.call(`admin.vm.device.${d.cls}.Detach`, d.frontend, `${d.backend}+${d.port}`);
    } catch (err) {
      if (err instanceof QubesdError && err.errorClass === 'DeviceNotAssigned') {
        throw new ActionableError('not_attached', 'the device is not attached to this qube');
      }
      throw actionable(err);
    }
    return { frontend: d.frontend, class: d.cls, backend: d.backend, port: d.port };
  },
};

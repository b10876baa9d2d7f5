/** qmcp.DeviceList: block, usb and mic devices of visible backends, allowlisted fields, frontends redacted. */
import type { ServiceSpec } from '../service/run.js';
import { redactRef } from './redact.js';
import { availableDevices } from './reads.js';
import { parseNothing } from './shapes.js';

const CLASSES = ['block', 'mic', 'usb'] as const;
/** Device ids and ports are short identifiers; anything else is dropped, not passed on. */
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const DESCRIPTION_MAX = 128;

export interface DeviceRow {
  readonly class: string;
  readonly backend: string;
  readonly port: string;
  readonly device_id: string;
  readonly description: string;
  readonly attached_to: string | null;
}

/** Printable ASCII only, bounded. */
function clean(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, DESCRIPTION_MAX);
}

export const deviceListService: ServiceSpec<Record<string, never>> = {
  operation: 'device.list',
  changesState: false,
  parse: parseNothing,
  targets: () => [],
  async handle({ qubesd, snapshot }): Promise<{ devices: DeviceRow[] }> {
    const devices: DeviceRow[] = [];
    for (const backend of snapshot.allVisible()) {
      for (const cls of CLASSES) {
        for (const d of await availableDevices(qubesd, backend.name, cls)) {
          const port = d.get('port_id') ?? '';
          const deviceId = d.get('device_id') ?? '';
          if (!ID.test(port) || !ID.test(deviceId)) continue;
          devices.push({
            class: cls,
            backend: backend.name,
            port,
            device_id: deviceId,
            description: clean(d.get('name') ?? ''),
            attached_to: redactRef(snapshot, d.get('attachment') ?? ''),
          });
        }
      }
    }
    return { devices };
  },
};

/** Device attach and detach: both ends must be full-tier qubes; never a persistent assignment. */
import * as z from 'zod';
import { dom0Exact, dom0Result } from '../calls.js';
import { QubeName, renamed } from '../schemas.js';
import { REFUSABLE } from '../texts.js';
import { callTool } from './exact.js';

const deviceFields = {
  qube: QubeName.describe('the qube the device is attached to (the frontend)'),
  devclass: z.enum(['block', 'usb', 'mic']).describe('the device class, as in device_list'),
  backend: QubeName.describe('the qube that exposes the device, as in device_list'),
  port: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).describe('the port, as in device_list'),
  device_id: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
    .optional()
    .describe('the device identity, as in device_list; pins the attachment to that device'),
};

const AttachInput = z.strictObject({
  ...deviceFields,
  read_only: z.boolean().optional().describe('block devices only: attach read-only'),
});

const DeviceDone = z.object({ qube: z.string(), devclass: z.string(), backend: z.string(), port: z.string() });

/** dom0's reply names the qube `frontend` and the device class `class`. */
const DONE_NAMES = { frontend: 'qube', class: 'devclass' };

function payload(input: { devclass: string; backend: string; port: string; device_id?: string | undefined }): Record<string, unknown> {
  return {
    class: input.devclass,
    backend: input.backend,
    port: input.port,
    ...(input.device_id !== undefined ? { device_id: input.device_id } : {}),
  };
}

export const deviceAttach = callTool({
  name: 'device_attach',
  title: 'Attach a device',
  operation: 'device.attach',
  description: 'Attach a block, usb or mic device from its backend qube to a qube, until detached or shut down (never persistently).' + REFUSABLE,
  input: AttachInput,
  output: DeviceDone,
  call: (input) =>
    dom0Exact('device.attach', input.qube, {
      ...payload(input),
      ...(input.read_only !== undefined ? { options: { 'read-only': input.read_only } } : {}),
    }),
  result: (_call, reply) => renamed(dom0Result(reply), DONE_NAMES),
});

const DetachInput = z.strictObject(deviceFields);

export const deviceDetach = callTool({
  name: 'device_detach',
  title: 'Detach a device',
  operation: 'device.detach',
  description: 'Detach a device from a qube.' + REFUSABLE,
  input: DetachInput,
  output: DeviceDone,
  call: (input) => dom0Exact('device.detach', input.qube, payload(input)),
  result: (_call, reply) => renamed(dom0Result(reply), DONE_NAMES),
});

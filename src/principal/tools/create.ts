/** Tools that create qubes; dom0 names, tags and caps what they create, atomically. */
import * as z from 'zod';
import { dom0Exact, dom0Result, type Exited } from '../calls.js';
import { Label, Netvm, QubeName, renamed } from '../schemas.js';
import { REFUSABLE } from '../texts.js';
import { callTool } from './exact.js';

const NEW_NAME = 'name of the new qube; it must start with the reserved prefix the operator chose (usually "ai-")';
const AFTER_CANCEL = ' A cancelled call may still complete in dom0: run qube_list before retrying.';

const common = { name: QubeName.describe(NEW_NAME), label: Label.optional(), netvm: Netvm.optional() };
const lease = {
  lease_seconds: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe("how long the new qube lives, in seconds, at most the operator's default lease (the default); qube_renew extends it"),
};

function payload(input: { name?: string | undefined; label?: string | undefined; netvm?: string | undefined; lease_seconds?: number | undefined }): Record<string, unknown> {
  return {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.label !== undefined ? { label: input.label } : {}),
    ...(input.netvm !== undefined ? { netvm: input.netvm } : {}),
    ...(input.lease_seconds !== undefined ? { leaseSeconds: input.lease_seconds } : {}),
  };
}

const Created = z.object({
  name: z.string(),
  class: z.string(),
  template: z.string().optional(),
  template_for_dispvms: z.boolean().optional(),
  auto_cleanup: z.boolean().optional(),
});

/** A create operation's reply, with Qubes' `klass` called `class` as in every tool. */
function created(_call: unknown, reply: Exited): Record<string, unknown> {
  return renamed(dom0Result(reply), { klass: 'class' });
}

const CreateInput = z.strictObject({ ...common, ...lease, template: QubeName.describe('a template you can see') });

export const qubeCreate = callTool({
  name: 'qube_create',
  title: 'Create a qube',
  operation: 'create',
  description: 'Create an AppVM from a template in your sandbox.' + AFTER_CANCEL + REFUSABLE,
  input: CreateInput,
  output: Created,
  long: true,
  call: (input) => dom0Exact('create', '', { ...payload(input), template: input.template }),
  result: created,
});

export const qubeCreateDispTemplate = callTool({
  name: 'qube_create_disposable_template',
  title: 'Create a disposable template',
  operation: 'create.disptemplate',
  description: 'Create an AppVM that serves as a disposable template, from a template in your sandbox.' + AFTER_CANCEL + REFUSABLE,
  input: CreateInput,
  output: Created,
  long: true,
  call: (input) => dom0Exact('create.disptemplate', '', { ...payload(input), template: input.template }),
  result: created,
});

const DisposableInput = z.strictObject({
  ...common,
  name: QubeName.optional().describe(`${NEW_NAME}; leave it out and dom0 names it (e.g. "ai-disp1")`),
  disposable_template: QubeName.describe('a disposable template you can see'),
  auto_cleanup: z.boolean().optional().describe('remove it when it shuts down (default true)'),
});

export const qubeCreateDisposable = callTool({
  name: 'qube_create_disposable',
  title: 'Create a disposable',
  operation: 'disposable',
  description: 'Create a disposable qube from a disposable template in your sandbox.' + AFTER_CANCEL + REFUSABLE,
  input: DisposableInput,
  output: Created,
  long: true,
  call: (input) =>
    dom0Exact('disposable', input.disposable_template, {
      ...payload(input),
      ...(input.auto_cleanup !== undefined ? { autoCleanup: input.auto_cleanup } : {}),
    }),
  result: created,
});

const CloneInput = z.strictObject({ ...common, ...lease, source: QubeName.describe('the qube to clone; a clone of a template is a template') });

export const qubeClone = callTool({
  name: 'qube_clone',
  title: 'Clone a qube',
  operation: 'clone',
  description: 'Clone a qube of your sandbox under a new name.' + AFTER_CANCEL + REFUSABLE,
  input: CloneInput,
  output: Created,
  long: true,
  call: (input) => dom0Exact('clone', input.source, payload(input)),
  result: created,
});

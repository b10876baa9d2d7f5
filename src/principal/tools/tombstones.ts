/** Tools over the qubes the agent removed: its tombstones, which it can list and restore. */
import * as z from 'zod';
import { dom0Exact, dom0Result } from '../calls.js';
import { Failed } from '../results.js';
import { QubeName, renamed } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { callTool } from './exact.js';

const TombstoneRow = z.object({ qube: z.string(), class: z.string(), removed_at: z.string().nullable(), bytes: z.number() });

export const tombstoneList = callTool({
  name: 'tombstone_list',
  title: 'List removed qubes',
  operation: 'tombstone.list',
  description:
    'List the qubes you removed that are still kept (tombstones): name, class, when it was removed and the bytes it holds, which count in pool_figures until it is restored or the retention period passes.' +
    UNTRUSTED,
  input: z.strictObject({}),
  output: z.object({ tombstones: z.array(TombstoneRow) }),
  call: () => dom0Exact('tombstone.list', ''),
  result: (_call, reply) => {
    const out = dom0Result(reply) as { tombstones?: unknown };
    if (!Array.isArray(out.tombstones)) throw new Failed();
    return { tombstones: out.tombstones.map((row) => renamed(row, { name: 'qube', klass: 'class', removed: 'removed_at' })) };
  },
});

export const tombstoneRestore = callTool({
  name: 'tombstone_restore',
  title: 'Restore a removed qube',
  operation: 'tombstone.restore',
  description:
    'Bring back a qube you removed (one tombstone_list shows), halted, with its data, at the tier new qubes get. Its bytes count in the budget already; a budget lowered since may leave no room.' +
    REFUSABLE,
  input: z.strictObject({ qube: QubeName }),
  output: z.object({ qube: z.string(), tier: z.string() }),
  long: true,
  call: (input) => dom0Exact('tombstone.restore', input.qube),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

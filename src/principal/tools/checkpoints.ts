/** Checkpoints of a qube's private volume on Qubes' volume revisions (docs/checkpoints.md). */
import * as z from 'zod';
import { dom0Exact, dom0Result } from '../calls.js';
import { QubeName, renamed } from '../schemas.js';
import { REFUSABLE } from '../texts.js';
import { callTool } from './exact.js';

const QubeInput = z.strictObject({ qube: QubeName });

export const qubeCheckpoint = callTool({
  name: 'qube_checkpoint',
  title: 'Checkpoint a qube',
  operation: 'checkpoint',
  description:
    "Mark the current state of a halted qube's private volume (its home and /rw) so that qube_revert can bring it back after the next runs. Qubes saves it when the qube next stops; shut the qube down first. A checkpoint keeps one more revision of the volume, counted in pool_figures." +
    REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), revisions_to_keep: z.number() }),
  call: (input) => dom0Exact('checkpoint', input.qube),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

export const qubeRevert = callTool({
  name: 'qube_revert',
  title: 'Revert a qube to its checkpoint',
  operation: 'revert',
  description:
    "Bring a halted qube's private volume back to its checkpoint, dropping what it gained since (shut the qube down first). The checkpoint is used up; take another before the next change you may want to undo." +
    REFUSABLE,
  input: QubeInput,
  output: z.object({ qube: z.string(), revision: z.string() }),
  call: (input) => dom0Exact('revert', input.qube),
  result: (_call, reply) => renamed(dom0Result(reply), { name: 'qube' }),
});

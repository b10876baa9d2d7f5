/**
 * Run one command in a fresh disposable, composed from the other tools'
 * calls: create (auto-cleanup), start, run, kill. Removal runs whatever
 * happened before it, on its own deadline, so a failed or cancelled run
 * leaves no disposable behind when dom0 lets it go.
 */
import * as z from 'zod';
import { dom0Call, type CallContext } from '../calls.js';
import { QubeName } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { Actionable } from '../results.js';
import type { ToolSpec } from '../tool.js';
import { commandFields, runCommand, RunOutput } from './inqube.js';

const CLEANUP_TIMEOUT_MS = 120_000;

const OneShotInput = z.strictObject({
  disposable_template: QubeName.describe('a disposable template you can see'),
  name: QubeName.describe('name for the disposable; it must start with the reserved prefix the operator chose (usually "ai-")'),
  ...commandFields,
});

const OneShotOutput = RunOutput.extend({ name: z.string(), removed: z.boolean() });

/** Kills the disposable (auto-cleanup then removes it); a born-halted one is removed directly. */
async function removeQuietly(ctx: CallContext, name: string): Promise<boolean> {
  const own: CallContext = { qrexec: ctx.qrexec, signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS) };
  try {
    await dom0Call(own, 'kill', name);
    return true;
  } catch {
    try {
      await dom0Call(own, 'remove', name);
      return true;
    } catch {
      return false;
    }
  }
}

export const qubeRunDisposable: ToolSpec<typeof OneShotInput> = {
  name: 'qube_run_disposable',
  title: 'Run a command in a fresh disposable',
  // a composition with its own effect columns (src/shared/model/compositions.ts)
  operation: 'run.disposable',
  description:
    'Create a disposable from a disposable template, start it, run one command in it (as qube_run: its default user unless user says root; its saved output goes with it), then kill it (Qubes removes an auto-cleanup disposable when it stops). The removed field says whether that succeeded; if not, check qube_list.' +
    REFUSABLE +
    UNTRUSTED,
  input: OneShotInput,
  output: OneShotOutput,
  long: true,
  run: async (input, ctx) => {
    // a request that cannot run must not create anything
    if ((input.argv === undefined) === (input.shell === undefined)) throw new Actionable('Give exactly one of argv and shell.');
    await dom0Call(ctx, 'disposable', input.disposable_template, { name: input.name, autoCleanup: true });
    let ran: z.infer<typeof RunOutput> | undefined;
    let removed = false;
    try {
      await dom0Call(ctx, 'start', input.name);
      ran = await runCommand(input.name, input, ctx);
    } finally {
      removed = await removeQuietly(ctx, input.name);
    }
    return { ...ran, name: input.name, removed };
  },
};

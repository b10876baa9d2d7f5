import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import type { SettingsReading } from '../../shared/model/index.js';
import { DEFAULT_SETTINGS, hasFatal, readSettingsFile, renderPolicy } from '../../shared/model/index.js';

const USAGE = `usage: qmcp policy render [--settings FILE] [--mode compat|least-privilege]

Prints the qrexec policy qmcp installs as /etc/qubes/policy.d/30-qmcp.policy,
rendered from the settings in FILE (default: the default settings), with
--mode in place of theirs. Settings problems go to stderr. Exit 0 printed,
1 settings unusable, 2 usage.`;

/** `qmcp policy render`: prints 30-qmcp.policy for the given settings. */
export const policyRenderCommand: Command = {
  path: ['policy', 'render'],
  summary: 'print /etc/qubes/policy.d/30-qmcp.policy for a settings file [--settings FILE] [--mode compat|least-privilege]',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let values: { settings?: string | undefined; mode?: string | undefined };
    try {
      values = parseArgs({ args, options: { settings: { type: 'string' }, mode: { type: 'string' } }, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (values.mode !== undefined && values.mode !== 'compat' && values.mode !== 'least-privilege') {
      throw new UsageError('--mode must be compat or least-privilege');
    }
    const reading: SettingsReading =
      values.settings !== undefined ? readSettingsFile(values.settings) : { settings: structuredClone(DEFAULT_SETTINGS), problems: [] };
    for (const p of reading.problems) process.stderr.write(`qmcp: settings${p.key ? ` ${p.key}` : ''}: ${p.message}\n`);
    if (hasFatal(reading.problems)) {
      process.stderr.write('qmcp: refusing to render a policy from these settings\n');
      return 1;
    }
    const settings = { ...reading.settings };
    if (values.mode !== undefined) settings.mode = values.mode;
    process.stdout.write(renderPolicy(settings));
    return 0;
  },
};

/** `qmcp dom0 install`: the policy, dom0 services, settings and reaper timer into ROOT. */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import { DEFAULT_SOCKET, InstallError, installDom0 } from '../../dom0/install/index.js';

const USAGE = `usage: qmcp dom0 install --root DIR [--settings FILE] [--dry-run] [--qubesd-socket PATH] [--service-user UID:GID] [--service-mode per-call|resident] [--json]

Installs the qrexec policy, the dom0 services, the settings and the reaper
timer into DIR (/ on a real dom0). Checks first that Node is 20 or newer,
that the principal qube exists and that no qube is both ai-managed and
ai-dump (through qubesd at PATH, default ${DEFAULT_SOCKET}; under a DIR
other than / with no qubesd answering, those checks are skipped and said
so), and that the rendered policy parses. Shows a diff of each file it
changes, keeps a backup of what it replaces, writes atomically, records a
manifest for uninstall; a second run changes nothing. --dry-run shows the
same and writes nothing. The audit log and var/lib/qmcp are given to the
user the services run as: UID:GID, else the user who ran sudo (SUDO_UID,
SUDO_GID), else whoever runs install. --service-mode chooses how qrexec
reaches the dom0 services: per-call (an executable per call, the default)
or resident (one process started by systemd, qmcp-dom0.socket and
qmcp-dom0.service); a later install keeps the last choice unless given.
Exit 0 done, 1 refused (nothing written) or the reaper timer (or the
resident service) could not be started, 2 usage.`;

/** Who the services run as: the dom0 user, never root. */
function serviceOwner(flag: string | undefined): { uid: number; gid: number } | undefined {
  if (flag !== undefined) {
    const m = /^(\d{1,9}):(\d{1,9})$/.exec(flag);
    if (!m) throw new UsageError(`--service-user wants UID:GID, not ${flag}\n${USAGE}`);
    return { uid: Number(m[1]), gid: Number(m[2]) };
  }
  const uid = process.env['SUDO_UID'];
  const gid = process.env['SUDO_GID'];
  if (uid && gid && /^\d+$/.test(uid) && /^\d+$/.test(gid)) return { uid: Number(uid), gid: Number(gid) };
  return undefined;
}

export const dom0InstallCommand: Command = {
  path: ['dom0', 'install'],
  summary: 'install the qmcp policy, dom0 services, settings and reaper timer into ROOT',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseCli(
      argv,
      { root: { type: 'string' }, settings: { type: 'string' }, 'service-user': { type: 'string' }, 'service-mode': { type: 'string' }, 'qubesd-socket': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
      USAGE,
    );
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
    if (!values.root) throw new UsageError(`--root DIR is required (use --root / on a real dom0)\n${USAGE}`);
    const json = values.json ?? false;
    const owner = serviceOwner(values['service-user']);
    const mode = values['service-mode'];
    if (mode !== undefined && mode !== 'per-call' && mode !== 'resident') throw new UsageError(`--service-mode is per-call or resident, not ${mode}\n${USAGE}`);
    try {
      const report = await installDom0({
        root: resolve(values.root),
        dryRun: values['dry-run'] ?? false,
        preconditions: true,
        ...(owner ? { serviceOwner: owner } : {}),
        ...(mode ? { serviceMode: mode } : {}),
        ...(values.settings ? { settingsFile: resolve(values.settings) } : {}),
        ...(values['qubesd-socket'] ? { qubesdSocket: values['qubesd-socket'] } : {}),
      });
      const changed = report.files.filter((f) => f.status !== 'unchanged');
      if (json) {
        process.stdout.write(JSON.stringify({ ...report, changed: changed.length, unchanged: report.files.length - changed.length }) + '\n');
        return report.timerProblem ? 1 : 0;
      }
      for (const n of report.notes) console.log(`note: ${n}`);
      for (const w of report.warnings) console.log(`settings: ${w}`);
      const verb = report.dryRun ? 'would write' : 'wrote';
      for (const f of changed) {
        console.log(`${verb} ${f.status === 'new' ? 'new' : 'changed'}: ${f.path}`);
        if (f.status === 'changed' && f.diff) process.stdout.write(f.diff);
      }
      for (const p of report.removed) console.log(`${report.dryRun ? 'would remove' : 'removed'}: ${p}`);
      for (const b of report.backups) console.log(`backup: ${b}`);
      if (changed.length === 0 && report.removed.length === 0) console.log(`${report.root}: already installed; nothing changed`);
      else console.log(`${report.root}: ${changed.length} file(s) ${report.dryRun ? 'to change' : 'changed'}, ${report.files.length - changed.length} unchanged`);
      if (report.timerProblem) {
        console.error(`qmcp dom0 install: files installed, but the reaper timer is not running: ${report.timerProblem}`);
        return 1;
      }
      return 0;
    } catch (err) {
      if (!(err instanceof InstallError)) throw err;
      if (json) process.stdout.write(JSON.stringify({ refused: err.message }) + '\n');
      console.error(`qmcp dom0 install: refused: ${err.message}`);
      return 1;
    }
  },
};

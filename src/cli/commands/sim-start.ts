/** `qmcp sim start`: the simulated host in the foreground (SPEC §10). */
import { resolve } from 'node:path';
import { parseCli } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { hostWarnings } from '../sim-notes.js';
import { stopSignal } from '../stop-signal.js';
import { InstallError } from '../../dom0/install/index.js';
import { FleetError, loadFleet } from '../../sim/fleet.js';
import type { Fleet } from '../../sim/fleet.js';
import { DEMO_HOST_SETTINGS } from '../../sim/demo-settings.js';
import { startSimHost } from '../../sim/host.js';
import { StateFileError } from '../../sim/qubesd/index.js';

const USAGE = `usage: qmcp sim start --dir DIR [--fleet demo|FILE] [--settings FILE] [--no-install]

Runs the simulated Qubes host in the foreground until SIGTERM or SIGINT.
DIR/qubesd.sock is its dom0 Admin API socket. The fleet seeds a new
directory only. Unless --no-install, qmcp's dom0 side is installed into
DIR/dom0 with the real installer, with the settings in FILE (of one
principal or several: docs/principals.md); without
--settings, the ones installed there, else the defaults of the fleet: for
the demo fleet the demo's settings (what \`qmcp demo\` uses: caps, and its
egress qube), for a fleet FILE the installer's defaults, which refuse every
create until caps are set (said at start). Exit 0 stopped, 1 failed,
2 usage.`;

interface Args {
  dir: string;
  fleet: string;
  settings: string | undefined;
  install: boolean;
}

function parseArgs(args: string[]): Args {
  const { values, positionals } = parseCli(
    args,
    {
      dir: { type: 'string' },
      fleet: { type: 'string', default: 'demo' },
      settings: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
    },
    USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
  if (!values.dir) throw new UsageError(`--dir DIR is required\n${USAGE}`);
  if (values.settings !== undefined && values['no-install']) throw new UsageError(`--settings has no effect with --no-install\n${USAGE}`);
  return { dir: resolve(values.dir), fleet: values.fleet, settings: values.settings === undefined ? undefined : resolve(values.settings), install: !values['no-install'] };
}

export const simStartCommand: Command = {
  path: ['sim', 'start'],
  summary: 'run the simulated Qubes host until SIGTERM/SIGINT',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const args = parseArgs(argv);
    let fleet: Fleet;
    try {
      fleet = loadFleet(args.fleet);
    } catch (e) {
      if (e instanceof FleetError) {
        console.error(`qmcp sim start: ${e.message}`);
        return 1;
      }
      throw e;
    }
    const log = (line: string): void => console.log(`qmcp sim: ${line}`);
    log(`starting the simulated host in ${args.dir} (fleet ${args.fleet}, used only for a new directory)`);
    let host;
    try {
      // the demo fleet's defaults are the demo's settings, which name its egress qube and set caps
      const settings = args.settings ? { settingsFile: args.settings } : args.fleet === 'demo' ? { initialSettings: DEMO_HOST_SETTINGS } : {};
      host = await startSimHost({ dir: args.dir, fleet, install: args.install, log, ...settings });
    } catch (e) {
      if (e instanceof StateFileError) {
        console.error(`qmcp sim start: ${e.message}; refusing to start (the file is left as it is)`);
        return 1;
      }
      if (e instanceof InstallError) {
        console.error(`qmcp sim start: installing qmcp into the simulated dom0 failed: ${e.message}`);
        return 1;
      }
      throw e;
    }
    // Handlers first: a supervisor may signal the moment it reads "ready".
    const stopped = stopSignal();
    for (const w of hostWarnings(host)) console.error(`qmcp sim: WARNING: ${w}`);
    log('ready; SIGTERM or SIGINT stops it');
    const signal = await stopped;
    log(`${signal}: stopping`);
    await host.close();
    return 0;
  },
};

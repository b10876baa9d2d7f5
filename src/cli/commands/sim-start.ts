/** `qmcp sim start --dir DIR [--fleet demo|FILE] [--no-install]`: the simulated host in the foreground. */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { FleetError, loadFleet } from '../../sim/fleet.js';
import type { Fleet } from '../../sim/fleet.js';
import { startSimHost } from '../../sim/host.js';
import { StateFileError } from '../../sim/qubesd/index.js';

interface Args {
  dir: string;
  fleet: string;
  install: boolean;
}

function parseArgs(args: string[]): Args {
  let dir: string | undefined;
  let fleet = 'demo';
  let install = true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--dir') dir = value();
    else if (a?.startsWith('--dir=')) dir = a.slice(6);
    else if (a === '--fleet') fleet = value();
    else if (a?.startsWith('--fleet=')) fleet = a.slice(8);
    else if (a === '--no-install') install = false;
    else throw new UsageError(`unknown argument: ${a}`);
  }
  if (!dir) throw new UsageError('--dir DIR is required');
  return { dir: resolve(dir), fleet, install };
}

export const simStartCommand: Command = {
  path: ['sim', 'start'],
  summary: 'run the simulated Qubes host until SIGTERM/SIGINT',
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
      host = await startSimHost({ dir: args.dir, fleet, install: args.install, log });
    } catch (e) {
      if (e instanceof StateFileError) {
        console.error(`qmcp sim start: ${e.message}; refusing to start (the file is left as it is)`);
        return 1;
      }
      throw e;
    }
    log('ready; SIGTERM or SIGINT stops it');
    const signal = await new Promise<NodeJS.Signals>((resolveSignal) => {
      process.once('SIGINT', () => resolveSignal('SIGINT'));
      process.once('SIGTERM', () => resolveSignal('SIGTERM'));
    });
    log(`${signal}: stopping`);
    await host.close();
    return 0;
  },
};

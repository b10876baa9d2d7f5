/** `qmcp demo [--dir DIR]`: what `npm start` runs — the simulated host with the demo fleet. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { stopSignal } from '../stop-signal.js';
import { loadFleet } from '../../sim/fleet.js';
import { DEMO_SETTINGS } from '../../sim/demo-settings.js';
import { startSimHost } from '../../sim/host.js';
import { StateFileError } from '../../sim/qubesd/index.js';

function defaultDir(): string {
  const state = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  return process.env['QMCP_DEMO_DIR'] || join(state, 'qmcp', 'demo');
}

export const demoCommand: Command = {
  path: ['demo'],
  summary: 'run the demo: the simulated host with the demo fleet (what npm start runs)',
  async run(argv: string[]): Promise<number> {
    let dir = defaultDir();
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--dir' && argv[i + 1]) dir = argv[++i] as string;
      else throw new UsageError(`unknown argument: ${argv[i]}`);
    }
    dir = resolve(dir);
    const log = (line: string): void => console.log(`qmcp demo: ${line}`);
    const fresh = !existsSync(join(dir, 'state'));
    log(fresh ? `creating a simulated Qubes host in ${dir} with the demo fleet` : `resuming the simulated Qubes host in ${dir}`);
    let host;
    try {
      host = await startSimHost({ dir, fleet: loadFleet('demo'), install: true, initialSettings: DEMO_SETTINGS, log });
    } catch (e) {
      if (e instanceof StateFileError) {
        console.error(`qmcp demo: ${e.message}; move it aside or choose another --dir`);
        return 1;
      }
      throw e;
    }
    log(`try: npx qmcp sim qrexec --dir ${dir} --as mcp-control @adminvm qmcp.List </dev/null`);
    log('Ctrl-C stops the demo; its state is kept for next time');
    const signal = await stopSignal();
    log(`${signal}: stopping`);
    await host.close();
    return 0;
  },
};

/**
 * The dom0 service entry of a weakened variant, on a simulated dom0 root:
 * what a machine's wrapper for a weakened service execs in place of the
 * service entry. It runs the real table through the real runner, with the
 * rows weakened.ts replaces, or through the weakened runner its wrapper names,
 * or (QMCP_WEAKENED_FIRSTS) with the first principal's settings, or its gate setting, for every caller.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openAudit } from '../../src/dom0/audit/index.js';
import { processDeps } from '../../src/dom0/create/deps.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { runService as realRunService } from '../../src/dom0/service/run.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { readDeps } from '../../src/dom0/services/read-services.js';
import { firstsOf, servedAs, weakenedTable } from './weakened.js';

const env = process.env;
const root = resolve(env['QMCP_ROOT'] ?? '');
const log = (): void => undefined;
// a caller gone makes writes fail (EPIPE): the gate withdraws on it
process.stdout.on('error', () => undefined);
const { served, config, reload } = servedAs(root, log, env['QREXEC_REMOTE_DOMAIN'], firstsOf(env['QMCP_WEAKENED_FIRSTS']));
const real = serviceTable({ write: processDeps({ ...env, QMCP_ROOT: root, ...(served ? { QREXEC_REMOTE_DOMAIN: served } : {}) }, log), read: readDeps(config) });
const table = config ? weakenedTable(real, config.service.scope) : real;
// a weakened runner (weakened.ts), when the wrapper names one
const runner = env['QMCP_WEAKENED_RUNNER'];
const runService = runner ? ((await import(pathToFileURL(runner).href)) as { runService: typeof realRunService }).runService : realRunService;
process.exitCode = await runService(table, {
  env,
  stdin: process.stdin,
  io: { stdout: process.stdout, stderr: process.stderr },
  qubesd: new Qubesd(env['QMCP_QUBESD_SOCKET'] ?? ''),
  audit: openAudit({ root }),
  config: config ? config.service : null,
  log,
  gate: { reload },
});

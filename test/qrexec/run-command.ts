/**
 * Runs `qmcp sim qrexec` or `qmcp sim ask` in a child process from its own
 * module, so these tests do not depend on every other command loading.
 * Usage: node run-command.js qrexec|ask ARGS...
 */
import { UsageError } from '../../src/cli/command.js';
import { simAskCommand } from '../../src/cli/commands/sim-ask.js';
import { simQrexecCommand } from '../../src/cli/commands/sim-qrexec.js';

const [which, ...args] = process.argv.slice(2);
const command = which === 'ask' ? simAskCommand : simQrexecCommand;
try {
  process.exitCode = await command.run(args);
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(e.message);
  process.exitCode = 2;
}

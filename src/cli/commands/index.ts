import type { Command } from '../command.js';
import { demoCommand } from './demo.js';
import { dom0Commands } from './dom0.js';
import { policyEvalCommand } from './policy-eval.js';
import { policyRenderCommand } from './policy-render.js';
import { selftestCommand } from './selftest.js';
import { serveCommand } from './serve.js';
import { simAskCommand } from './sim-ask.js';
import { simQrexecCommand } from './sim-qrexec.js';
import { simStartCommand } from './sim-start.js';

/** Every qmcp subcommand, in the order `qmcp --help` lists them. */
export const commands: readonly Command[] = [
  demoCommand,
  serveCommand,
  selftestCommand,
  ...dom0Commands,
  policyEvalCommand,
  policyRenderCommand,
  simStartCommand,
  simQrexecCommand,
  simAskCommand,
];

import type { Command } from '../command.js';
import { auditTailCommand, auditVerifyCommand } from './dom0-audit.js';
import { dom0InstallCommand } from './dom0-install.js';
import { dom0ModeCommand } from './dom0-mode.js';
import { dom0TierCommand } from './dom0-tier.js';
import { tombstonesCommand } from './dom0-tombstones.js';
import { policyEvalCommand } from './policy-eval.js';
import { policyRenderCommand } from './policy-render.js';
import { simAskCommand } from './sim-ask.js';
import { simQrexecCommand } from './sim-qrexec.js';
import { simStartCommand } from './sim-start.js';
import { demoCommand } from './demo.js';
import { serveCommand } from './serve.js';

/** Every qmcp subcommand, in the order `qmcp --help` lists them. */
export const commands: readonly Command[] = [
  demoCommand,
  serveCommand,
  auditVerifyCommand,
  auditTailCommand,
  dom0InstallCommand,
  tombstonesCommand,
  dom0TierCommand,
  dom0ModeCommand,
  policyEvalCommand,
  policyRenderCommand,
  simStartCommand,
  simQrexecCommand,
  simAskCommand,
];

import type { Command } from '../command.js';
import { auditTailCommand, auditVerifyCommand } from './dom0-audit.js';
import { policyEvalCommand } from './policy-eval.js';
import { simStartCommand } from './sim-start.js';
import { demoCommand } from './demo.js';

/** Every qmcp subcommand, in the order `qmcp --help` lists them. */
export const commands: readonly Command[] = [
  demoCommand,
  auditVerifyCommand,
  auditTailCommand,
  policyEvalCommand,
  simStartCommand,
];

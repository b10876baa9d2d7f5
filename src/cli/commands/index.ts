import type { Command } from '../command.js';
import { auditTailCommand, auditVerifyCommand } from './dom0-audit.js';
import { policyEvalCommand } from './policy-eval.js';

/** Every qmcp subcommand, in the order `qmcp --help` lists them. */
export const commands: readonly Command[] = [
  auditVerifyCommand,
  auditTailCommand,
  policyEvalCommand,
];

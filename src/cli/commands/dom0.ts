/**
 * The operator's dom0 commands. They load only Node's standard library and
 * the dom0 and shared modules, so dom0 runs them from the release bundle
 * (src/cli/dom0-main.ts) without any package code.
 */
import type { Command } from '../command.js';
import { approvalsCommand } from './dom0-approvals.js';
import { auditTailCommand, auditVerifyCommand } from './dom0-audit.js';
import { dom0DoctorCommand } from './dom0-doctor.js';
import { dom0ExplainCommand } from './dom0-explain.js';
import { dom0InstallCommand } from './dom0-install.js';
import { dom0ModeCommand } from './dom0-mode.js';
import { dom0PrincipalCommand } from './dom0-principal.js';
import { dom0TierCommand } from './dom0-tier.js';
import { tombstonesCommand } from './dom0-tombstones.js';
import { leasesCommand } from './dom0-leases.js';
import { plansCommand } from './dom0-plans.js';
import { dom0UninstallCommand } from './dom0-uninstall.js';

export const dom0Commands: readonly Command[] = [
  auditVerifyCommand,
  auditTailCommand,
  dom0InstallCommand,
  dom0UninstallCommand,
  dom0DoctorCommand,
  dom0ExplainCommand,
  tombstonesCommand,
  leasesCommand,
  plansCommand,
  approvalsCommand,
  dom0TierCommand,
  dom0ModeCommand,
  dom0PrincipalCommand,
];

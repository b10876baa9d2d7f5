import { QmcpError } from '../errors.js';

/** The kinds of domain qubesd reports in `internal.GetSystemInfo`. */
export type DomainType = 'AdminVM' | 'AppVM' | 'TemplateVM' | 'StandaloneVM' | 'DispVM';

/** One domain as policy evaluation sees it. */
export interface DomainInfo {
  tags: string[];
  type: DomainType;
  template_for_dispvms: boolean;
  default_dispvm: string | null;
  power_state: string;
  uuid: string;
  icon?: string;
  guivm?: string | null;
  /** The `internal` feature (any non-empty value): such qubes are never offered in an `ask` dialog. */
  internal?: boolean | string | null;
}

/** Domains keyed by name, the shape of qubesd's `internal.GetSystemInfo`. */
export interface SystemInfo {
  domains: Record<string, DomainInfo>;
}

/** One qrexec call as the policy daemon receives it. */
export interface PolicyRequest {
  service: string;
  /** The argument without its leading `+`; '' when there is none. */
  argument: string;
  source: string;
  /** The target as requested: a name, `uuid:…`, `@adminvm`, `@default`, `@dispvm[:X]`; '' means `@default`. */
  target: string;
}

export interface RuleLocation {
  file: string;
  /** 1-based; 0 for rules a directive made up (the `!compat-4.0` fall-through denies). */
  line: number;
}

export type Resolution =
  | { action: 'allow'; target: string; user: string | null; autostart: boolean; notify: boolean; rule: RuleLocation }
  | {
      action: 'ask';
      targets: string[];
      defaultTarget: string | null;
      user: string | null;
      autostart: boolean;
      notify: boolean;
      rule: RuleLocation;
    }
  | { action: 'deny'; reason: string; notify: boolean; rule: RuleLocation | null };

export interface Policy {
  evaluate(req: PolicyRequest, system: SystemInfo): Resolution;
}

/**
 * A policy that qrexec would refuse to load. qrexec treats it as a refusal of
 * every call; `line` is 0 when the problem is not on a line (a file name, an
 * unreadable file or directory).
 */
export class PolicySyntaxError extends QmcpError {
  readonly code = 'ERR_QMCP_POLICY_SYNTAX';

  readonly file: string;
  readonly line: number;
  /** The message without the location. */
  readonly detail: string;

  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.file = file;
    this.line = line;
    this.detail = message;
  }
}

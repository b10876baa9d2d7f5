import { join, posix } from 'node:path';
import { diskFs, memoryFs } from './fs.js';
import type { PolicyFs } from './fs.js';
import { PolicyLoader } from './loader.js';
import { RulePolicy } from './evaluate.js';
import type { Policy, PolicySyntaxError } from './types.js';

export type { DomainInfo, DomainType, Policy, PolicyRequest, Resolution, RuleLocation, SystemInfo } from './types.js';
export { PolicySyntaxError } from './types.js';
export type { Position, TokenKind } from './tokens.js';
export { ALLOWED as TOKEN_POSITIONS } from './tokens.js';

const MEMORY_DIR = '/etc/qubes/policy.d';
const MEMORY_LEGACY_DIR = '/etc/qubes-rpc/policy';

export interface MemoryPolicyOptions {
  /**
   * Other files by path, absolute or relative to the policy directory, for
   * `!include`, `!include-dir` and `!include-service` to find.
   */
  includes?: Record<string, string>;
  /** The old per-service files `!compat-4.0` reads, by file name (`qubes.Filecopy`, `qubes.Foo+arg`). */
  legacy?: Record<string, string>;
}

/**
 * A policy from in-memory files, as if they were the only files of
 * `/etc/qubes/policy.d`. Throws PolicySyntaxError as loadPolicyDir does.
 */
export function parsePolicy(files: { name: string; text: string }[], options: MemoryPolicyOptions = {}): Policy {
  const all = new Map<string, string>();
  for (const [path, text] of Object.entries(options.includes ?? {})) all.set(posix.resolve(MEMORY_DIR, path), text);
  for (const [name, text] of Object.entries(options.legacy ?? {})) all.set(posix.join(MEMORY_LEGACY_DIR, name), text);
  for (const f of files) all.set(posix.join(MEMORY_DIR, f.name), f.text);
  const loader = new PolicyLoader(memoryFs(all), MEMORY_LEGACY_DIR);
  loader.loadDirs([MEMORY_DIR]);
  return new RulePolicy(loader.rules);
}

export interface PolicyDirOptions {
  /** Where `!compat-4.0` reads old per-service files; default DIR/../../qubes-rpc/policy. */
  legacyDir?: string;
}

/** The policy of one policy.d directory. Throws PolicySyntaxError for anything qrexec would refuse. */
export function loadPolicyDir(dir: string, options: PolicyDirOptions = {}): Policy {
  const loader = new PolicyLoader(diskFs, options.legacyDir ?? join(dir, '..', '..', 'qubes-rpc', 'policy'));
  loader.loadDirs([diskFs.resolve(dir)]);
  return new RulePolicy(loader.rules);
}

/**
 * The policy of a dom0 file tree: ROOT/run/qubes/policy.d over
 * ROOT/etc/qubes/policy.d by file name, `!compat-4.0` reading
 * ROOT/etc/qubes-rpc/policy. A missing run directory counts as empty.
 */
export function loadPolicyFromRoot(root: string, fs: PolicyFs = diskFs): Policy {
  const etc = fs.resolve(join(root, 'etc', 'qubes', 'policy.d'));
  const run = fs.resolve(join(root, 'run', 'qubes', 'policy.d'));
  const loader = new PolicyLoader(fs, join(root, 'etc', 'qubes-rpc', 'policy'));
  loader.loadDirs(fs.isDir(run) ? [run, etc] : [etc]);
  return new RulePolicy(loader.rules);
}

/** A policy that refuses every call, for when loading failed: qrexec's behaviour then. */
export function denyAllPolicy(error: PolicySyntaxError): Policy {
  return {
    evaluate: () => ({ action: 'deny', reason: `error loading policy: ${error.message}`, notify: true, rule: null }),
  };
}

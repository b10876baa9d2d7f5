import { posix } from 'node:path';
import type { PolicyFs } from './fs.js';
import type { Origin, Rule } from './rule.js';
import { checkServiceAndArgument, parseRuleLine, parseServiceRuleLine, splitFields, WHITESPACE } from './rule.js';
import { PolicySyntaxError } from './types.js';

const POLICY_SUFFIX = '.policy';
// Characters a policy.d file name may have; any other makes the policy invalid.
const FILE_NAME = /^[0-9a-z_.-]*$/;
// Characters a legacy per-service file name may have; others are skipped.
const LEGACY_NAME = /^[A-Za-z0-9+._-]*$/;
const LEGACY_IGNORED_SUFFIXES = ['.rpmsave', '.rpmnew', '.swp'];

const STRIP = new RegExp(`^(?:${WHITESPACE.source})|(?:${WHITESPACE.source})$`, 'gu');
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Python's Path.suffix: from the last dot, unless that dot leads or ends the name. */
function suffixOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot) : '';
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lines as Python's text mode yields them (`\n`, `\r\n` and `\r` all end a line). */
function linesOf(text: string): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Reads policy files into an ordered list of rules the way qrexec's file
 * loader does. Include paths resolve against the directory of the top-level
 * file being read, even from nested includes.
 */
export class PolicyLoader {
  readonly rules: Rule[] = [];
  private base: string | null = null;

  constructor(
    private readonly fs: PolicyFs,
    /** The old per-service policy directory that `!compat-4.0` reads. */
    private readonly legacyDir: string,
  ) {}

  /** Loads the `*.policy` files of several directories, the first directory winning per file name. */
  loadDirs(dirs: readonly string[]): void {
    const seen = new Set<string>();
    const chosen: { dir: string; name: string }[] = [];
    for (const dir of dirs) {
      for (const path of this.policyFiles(dir)) {
        const name = posix.basename(path);
        if (seen.has(name)) continue;
        seen.add(name);
        chosen.push({ dir: posix.dirname(path), name });
      }
    }
    chosen.sort((a, b) => byCodePoint(a.name, b.name));
    for (const { dir, name } of chosen) {
      this.base = dir;
      try {
        this.loadFile(posix.join(dir, name));
      } finally {
        this.base = null;
      }
    }
  }

  /** The `*.policy` files of a directory in load order; throws for a bad name. */
  private policyFiles(dir: string): string[] {
    let names: string[];
    try {
      names = this.fs.list(dir);
    } catch (err) {
      throw new PolicySyntaxError(dir, 0, `failed to load ${dir}: ${(err as Error).message}`);
    }
    const paths = names
      .filter((n) => !n.startsWith('.') && suffixOf(n) === POLICY_SUFFIX)
      .map((n) => posix.join(dir, n))
      .filter((p) => this.fs.isFile(p));
    for (const path of paths) {
      if (!FILE_NAME.test(posix.basename(path))) throw new PolicySyntaxError(path, 0, `invalid filename: ${path}`);
    }
    return paths.sort(byCodePoint);
  }

  private text(path: string): string {
    try {
      return decoder.decode(this.fs.read(path));
    } catch (err) {
      throw new PolicySyntaxError(path, 0, `failed to load ${path}: ${(err as Error).message}`);
    }
  }

  private resolveInclude(included: string, origin: Origin, want: 'file' | 'dir', base: string | null = this.base): string {
    if (base === null) throw new PolicySyntaxError(origin.file, origin.line, 'include outside of a policy directory');
    const resolved = this.fs.resolve(posix.resolve(base, included));
    const ok = want === 'file' ? this.fs.isFile(resolved) : this.fs.isDir(resolved);
    if (!ok) throw new PolicySyntaxError(origin.file, origin.line, `not a ${want === 'file' ? 'file' : 'directory'}: ${resolved}`);
    return resolved;
  }

  /** One file of the current format, with its directives. */
  loadFile(path: string): void {
    const lines = linesOf(this.text(path));
    lines.forEach((raw, i) => {
      const origin: Origin = { file: path, line: i + 1 };
      const line = raw.replace(STRIP, '');
      if (line === '' || line.startsWith('#')) return;
      if (!line.startsWith('!')) {
        this.rules.push(parseRuleLine(line, origin));
        return;
      }
      const [directive, ...params] = splitFields(line) as [string, ...string[]];
      const arity = (n: number): void => {
        if (params.length !== n) throw new PolicySyntaxError(origin.file, origin.line, 'invalid number of params');
      };
      switch (directive) {
        case '!include':
          arity(1);
          this.loadFile(this.resolveInclude(params[0] ?? '', origin, 'file'));
          return;
        case '!include-dir': {
          arity(1);
          const dir = this.resolveInclude(params[0] ?? '', origin, 'dir');
          for (const file of this.policyFiles(dir)) this.loadFile(file);
          return;
        }
        case '!include-service': {
          arity(3);
          const [service, argument, included] = params as [string, string, string];
          this.includeService(service, argument, included, origin, this.base);
          return;
        }
        case '!compat-4.0':
          arity(0);
          this.compat40(origin);
          return;
        default:
          throw new PolicySyntaxError(origin.file, origin.line, 'invalid directive');
      }
    });
  }

  private includeService(service: string, argument: string, included: string, origin: Origin, base: string | null): void {
    const checked = checkServiceAndArgument(service, argument, origin);
    const path = this.resolveInclude(included, origin, 'file', base);
    this.loadServiceFile(checked.service ?? '*', checked.argument ?? '*', path, base);
  }

  /** One file of the old per-service format (`$` for `@`, `,` between action and parameters). */
  private loadServiceFile(service: string, argument: string, path: string, base: string | null): void {
    const lines = linesOf(this.text(path));
    lines.forEach((raw, i) => {
      const origin: Origin = { file: path, line: i + 1 };
      let line = raw.replace(STRIP, '');
      if (line === '' || line.startsWith('#')) return;
      line = line.replaceAll('$include:', '!include ').replaceAll('$', '@').replaceAll(',', ' ');
      if (line.startsWith('!')) {
        const [directive, ...params] = splitFields(line) as [string, ...string[]];
        if (directive !== '!include') throw new PolicySyntaxError(origin.file, origin.line, 'invalid directive');
        if (params.length !== 1) throw new PolicySyntaxError(origin.file, origin.line, 'invalid number of params');
        this.includeService(service, argument, params[0] ?? '', origin, base);
        return;
      }
      this.rules.push(parseServiceRuleLine(service, argument, line, origin));
    });
  }

  /**
   * `!compat-4.0`: the old `/etc/qubes-rpc/policy` files, by service then
   * argument (the argument-less file last); a file for one argument is closed
   * with denies so that it does not fall through to the service's general file.
   */
  private compat40(origin: Origin): void {
    let names: string[];
    try {
      names = this.fs.list(this.legacyDir);
    } catch (err) {
      throw new PolicySyntaxError(this.legacyDir, 0, `failed to load ${this.legacyDir}: ${(err as Error).message}`);
    }
    const byService = new Map<string, Map<string, string>>();
    for (const name of names) {
      const path = posix.join(this.legacyDir, name);
      if (!this.fs.isFile(path)) continue;
      if (LEGACY_IGNORED_SUFFIXES.includes(suffixOf(name))) continue;
      if (name.startsWith('.') || !LEGACY_NAME.test(name)) continue;
      const plus = name.indexOf('+');
      const service = plus < 0 ? name : name.slice(0, plus);
      const argument = plus < 0 ? '*' : name.slice(plus);
      let args = byService.get(service);
      if (!args) byService.set(service, (args = new Map()));
      args.set(argument, path);
    }
    const legacyBase = this.fs.resolve(this.legacyDir);
    for (const service of [...byService.keys()].sort(byCodePoint)) {
      const args = byService.get(service) ?? new Map<string, string>();
      const order = [...args.keys()].sort((a, b) => (a === '*' ? 1 : b === '*' ? -1 : byCodePoint(a, b)));
      for (const argument of order) {
        const path = args.get(argument) ?? '';
        this.includeService(service, argument, path, origin, legacyBase);
        if (argument !== '*') {
          const closing: Origin = { file: path, line: 0 };
          this.rules.push(parseServiceRuleLine(service, argument, '@anyvm @anyvm deny', closing));
          this.rules.push(parseServiceRuleLine(service, argument, '@anyvm @adminvm deny', closing));
        }
      }
    }
  }
}

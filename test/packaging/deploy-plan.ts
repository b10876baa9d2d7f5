/**
 * docs/deploy.md as a plan: every command of its fenced shell blocks is run
 * against a simulated host, or is real-Qubes-only with the reason below;
 * anything else (a command nobody classified, a qmcp subcommand the seat's
 * qmcp does not have, a qmcp command with no simulated form) is a problem,
 * never a skip. Functions of the doc's text, so a test can hand them an
 * altered copy.
 */

/** Where a block runs: the word after the language in its info string. */
export type Seat = 'qmcp-build' | 'dom0' | 'ai-template' | 'ai-drop' | 'mcp-control' | 'client';
export const SEATS: readonly Seat[] = ['qmcp-build', 'dom0', 'ai-template', 'ai-drop', 'mcp-control', 'client'];

export interface Block {
  readonly lang: string;
  readonly tag: string;
  readonly line: number;
  readonly body: string;
}

/** Commands no simulator can run, and why; the test stands in for each where it can. */
export const REAL_ONLY: readonly { pattern: RegExp; reason: string }[] = [
  { pattern: /^npm (ci|run release)$/, reason: 'rebuilds the checkout this suite runs from; the test builds the same archives with buildRelease, which npm run release runs' },
  { pattern: /^qvm-(create|clone) /, reason: "creates real qubes with Qubes' qvm-* tools; the simulated host starts with the same qubes" },
  { pattern: /^qvm-tags /, reason: 'tags a real qube; the sink is checked by the policy tests and test/qube/sink.test.ts' },
  { pattern: /^qvm-copy-to-vm /, reason: 'moves files between real qubes; the test puts them where they land (~/QubesIncoming/qmcp-build)' },
  { pattern: /^qvm-run --pass-io /, reason: "reads a file out of a real qube into dom0; the test copies the release files into dom0's directory" },
  { pattern: /^qvm-shutdown /, reason: 'shuts a real template down so its qubes see the new files; simulated qubes read them directly' },
  { pattern: /^sudo qubes-dom0-update /, reason: "installs from Qubes' dom0 repositories; the test's Node is checked with node --version" },
  { pattern: /^systemctl --user /, reason: "needs a systemd user session in a real qube; the unit's ExecStart is run by the test instead" },
  { pattern: /^claude mcp add /, reason: 'configures Claude Code on the client machine' },
  { pattern: /^qvm-connect-tcp /, reason: 'forwards a TCP port between real qubes over qrexec' },
];

/** Commands run as they are, in their seat's directories (paths below / mapped into the test's temp dir). */
const LOCAL = /^(sudo )?(sha256sum|tar|mkdir|ln|rm|cat|chmod|openssl|sh|cd|node --version$|qmcp --help$)/;

/** qmcp commands with a simulated form: the dom0 operator commands, and selftest from the principal's seat. */
const SIMULATED: readonly { seat: Seat; first: string }[] = [
  { seat: 'dom0', first: 'dom0' },
  { seat: 'mcp-control', first: 'selftest' },
];

export type Step =
  | { readonly kind: 'real-only'; readonly seat: Seat; readonly command: string; readonly reason: string }
  | { readonly kind: 'local'; readonly seat: Seat; readonly command: string }
  | { readonly kind: 'qmcp'; readonly seat: Seat; readonly command: string; readonly path: readonly string[] };

export interface Plan {
  readonly steps: readonly Step[];
  readonly problems: readonly string[];
}

/** The command words each seat's qmcp offers (what its `qmcp --help` lists). */
export type Offered = Partial<Record<Seat, readonly (readonly string[])[]>>;

export function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) body.push(lines[i] as string);
    out.push({ lang: open[1] as string, tag: (open[2] as string).trim(), line: start + 1, body: body.join('\n') });
  }
  return out;
}

export function commands(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** The longest command path of `offered` that `words` start with. */
function commandPath(words: readonly string[], offered: readonly (readonly string[])[]): readonly string[] | undefined {
  let best: readonly string[] | undefined;
  for (const path of offered) {
    if (path.every((w, i) => words[i] === w) && (!best || path.length > best.length)) best = path;
  }
  return best;
}

/** One command's step, or what is wrong with it. */
function classify(seat: Seat, command: string, offered: Offered): Step | string {
  const real = REAL_ONLY.filter((r) => r.pattern.test(command));
  const local = LOCAL.test(command);
  const qmcp = /^(sudo )?qmcp (.*)$/.exec(command);
  const kinds = real.length + (local ? 1 : 0) + (qmcp && !local ? 1 : 0);
  if (kinds !== 1) return `${command}: ${kinds === 0 ? 'neither run nor listed as real-Qubes-only' : 'matches more than one kind'}`;
  if (real[0]) return { kind: 'real-only', seat, command, reason: real[0].reason };
  if (seat === 'client') return `${command}: a client command the test cannot run must be listed as real-Qubes-only`;
  if (local || !qmcp) return { kind: 'local', seat, command };
  const words = (qmcp[2] as string).split(/\s+/);
  const path = commandPath(words, offered[seat] ?? []);
  if (!path) return `${command}: ${seat}'s qmcp has no command ${words.slice(0, 2).join(' ')} (not in its qmcp --help)`;
  if (!SIMULATED.some((s) => s.seat === seat && s.first === path[0])) {
    return `${command}: qmcp ${path.join(' ')} in ${seat} has no simulated form; run it or list it as real-Qubes-only with the reason`;
  }
  return { kind: 'qmcp', seat, command, path };
}

/** The doc's shell commands, each run or real-Qubes-only, and every problem found on the way. */
export function planDeploy(doc: string, offered: Offered): Plan {
  const steps: Step[] = [];
  const problems: string[] = [];
  const shell = blocks(doc).filter((b) => b.lang === 'sh');
  if (shell.length < 10) problems.push(`only ${shell.length} sh blocks`);
  for (const b of shell) {
    if (!(SEATS as readonly string[]).includes(b.tag)) {
      problems.push(`deploy.md:${b.line}: \`\`\`sh needs one of ${SEATS.join(', ')}`);
      continue;
    }
    for (const c of commands(b.body)) {
      const step = classify(b.tag as Seat, c, offered);
      if (typeof step === 'string') problems.push(`deploy.md:${b.line}: ${step}`);
      else steps.push(step);
    }
  }
  for (const r of REAL_ONLY) {
    if (!steps.some((s) => s.kind === 'real-only' && r.pattern.test(s.command))) problems.push(`real-Qubes-only entry ${String(r.pattern)} matches no documented command`);
  }
  return { steps, problems };
}

/**
 * The selftest scenarios deploy.md says do not run with its settings and
 * qubes: the rows of its table headed "| scenario | not run here because |".
 */
export function expectedNotRun(doc: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = doc.split('\n');
  const head = lines.findIndex((l) => /^\| scenario \| not run here because \|$/.test(l.trim()));
  if (head < 0) return out;
  for (const line of lines.slice(head + 2)) {
    const row = /^\| `([a-z-]+)` \| (.+) \|$/.exec(line.trim());
    if (!row) break;
    out.set(row[1] as string, row[2] as string);
  }
  return out;
}

/**
 * What is wrong with a selftest run: any FAIL; a scenario not run that the
 * doc does not expect, or one the doc expects not to run that ran; an exit
 * status other than 3 (incomplete) when some are expected not to run, or 0
 * when none are.
 */
export function judgeSelftest(status: number | null, stdout: string, expected: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const l of stdout.split('\n').filter((x) => /^FAIL\b/.test(x))) problems.push(`selftest: ${l}`);
  const notRun = new Map<string, string>();
  for (const m of stdout.matchAll(/^NOT-RUN +(\S+) +(.*)$/gm)) notRun.set(m[1] as string, m[2] as string);
  for (const [id, reason] of notRun) if (!expected.has(id)) problems.push(`selftest did not run ${id} (${reason}), and deploy.md does not say it does not run here`);
  for (const id of expected.keys()) if (!notRun.has(id)) problems.push(`deploy.md says selftest does not run ${id} here, but it did`);
  const want = expected.size > 0 ? 3 : 0;
  if (status !== want) problems.push(`selftest exited ${status}, not ${want}`);
  return problems;
}

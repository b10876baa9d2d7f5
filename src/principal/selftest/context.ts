/** What the scenarios share: the caller, the names they probe with, and what earlier scenarios learnt. */
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, jsonOf, PROBES } from './agent.js';
import type { Json } from './agent.js';
import type { Caller, CallHooks, Reply } from './caller.js';

export type Verdict = 'PASS' | 'FAIL' | 'NOT-RUN';

/** How the operator will answer the gate scenario's request; `skip` withdraws every call that waits. */
export type GateAnswers = 'allow' | 'deny' | 'skip';

/** A call of the self-test that waits for the operator, and the answer it asks for. */
export interface Ask {
  readonly operation: string;
  readonly qube: string;
  readonly want: 'allow' | 'deny';
}

/** The line that tells the operator what to run in dom0 (the request id is dom0's alone). */
export function askLine(a: Ask): string {
  return `the self-test's ${a.operation} of ${JSON.stringify(a.qube)} waits for you: in dom0, \`qmcp dom0 approvals list\` shows it as ${a.operation} ${JSON.stringify(a.qube)}; run \`qmcp dom0 approvals ${a.want} ID\` with its id`;
}

/** A call the gate may hold: its reply, whether it waited, whether the self-test withdrew it. */
export interface GatedReply {
  readonly reply: Reply;
  readonly waited: boolean;
  readonly withdrawn: boolean;
}

export interface Outcome {
  readonly verdict: Verdict;
  /** One line saying why. */
  readonly reason: string;
}

export interface SelftestOptions {
  /** The reserved prefix for new qube names the operator chose. */
  readonly prefix: string;
  /** Template to create fixtures from; else the first visible template that accepts a create. */
  readonly template?: string;
  /** Disposable template for the disposable fixture; else the first visible one. */
  readonly dvmt?: string;
  /** Keep the fixtures no scenario had to remove. */
  readonly keep: boolean;
  /** Run `true` in visible running qubes to see which allow exec. */
  readonly probeExec: boolean;
  /** Elevation and sink tag names, which must never appear in any output. */
  readonly tierTags: readonly string[];
  /** Random token for fixture and probe names (tests may fix it). */
  readonly token?: string;
  /** The answer the gate scenario asks of the operator (default deny). */
  readonly gateAnswers?: GateAnswers;
  /** Told each time a call waits for the operator and an answer is asked for. */
  readonly onAsk?: (ask: Ask) => void;
}

export const DEFAULT_TIER_TAGS: readonly string[] = ['ai-exec', 'ai-net', 'ai-full', 'ai-dump'];

export interface World {
  /** The rows of qmcp.List, in its order. */
  readonly rows: readonly Json[];
  readonly names: readonly string[];
  /** The sinks qmcp.List names: in the agent's world, not visible. */
  readonly sinks: readonly string[];
  /** qmcp.Info of each listed qube that answered with an object. */
  readonly infos: ReadonlyMap<string, Json>;
  /** Every raw reply read so far (list and infos), for the tag scan. */
  readonly outputs: Buffer[];
}

export interface Fixture {
  readonly name: string;
  readonly kind: 'appvm' | 'clone' | 'disposable';
  removed: boolean;
}

/** Names that must all look alike to the agent: none of them is in its world. */
export function outOfWorldNames(prefix: string, token: string): string[] {
  return ['dom0', '@adminvm', '@default', '@dispvm', `uuid:${randomUUID()}`, `qst${token}x`, `${prefix}st${token}-absent`];
}

export class Context {
  readonly agent: Agent;
  readonly token: string;
  readonly outOfWorld: readonly string[];
  /** The name the first fixture gets; clones and disposables add a suffix. */
  readonly fixtureName: string;
  readonly fixtures: Fixture[] = [];
  /** The template the first fixture came from. */
  template: string | null = null;
  private world: Promise<World | null> | null = null;
  private matrix: Promise<Map<string, Map<string, Reply>>> | null = null;

  constructor(
    caller: Caller,
    readonly options: SelftestOptions,
  ) {
    this.agent = new Agent(caller);
    this.token = options.token ?? randomBytes(3).toString('hex');
    this.outOfWorld = outOfWorldNames(options.prefix, this.token);
    this.fixtureName = `${options.prefix}selftest-${this.token}`;
  }

  /** The absent name inside the prefix: the reference an invisible qube must look like. */
  get absentInPrefix(): string {
    return this.outOfWorld[this.outOfWorld.length - 1] as string;
  }

  /** The list and every listed qube's info, read once; null when the list did not answer. */
  loadWorld(): Promise<World | null> {
    this.world ??= (async () => {
      const reply = await this.agent.list();
      const outputs = [reply.stdout];
      const rows = jsonOf(reply)?.['qubes'];
      if (!Array.isArray(rows) || !rows.every((r) => typeof r === 'object' && r !== null && typeof (r as Json)['name'] === 'string')) return null;
      const names = (rows as Json[]).map((r) => r['name'] as string);
      const listed = jsonOf(reply)?.['sinks'];
      const sinks = Array.isArray(listed) ? listed.filter((s): s is string => typeof s === 'string') : [];
      const infos = new Map<string, Json>();
      const replies = await Promise.all(names.map((n) => this.agent.info(n)));
      names.forEach((n, i) => {
        const r = replies[i] as Reply;
        outputs.push(r.stdout);
        const info = jsonOf(r);
        if (info) infos.set(n, info);
      });
      return { rows: rows as Json[], names, sinks, infos, outputs };
    })();
    return this.world;
  }

  /** Each probe service's reply for each out-of-world name, made once: [service][name]. */
  probeMatrix(): Promise<Map<string, Map<string, Reply>>> {
    this.matrix ??= (async () => {
      const out = new Map<string, Map<string, Reply>>();
      const jobs: Promise<void>[] = [];
      for (const p of PROBES) {
        const row = new Map<string, Reply>();
        out.set(p.id, row);
        for (const name of this.outOfWorld) jobs.push(p.call(this.agent, name).then((r) => void row.set(name, r)));
      }
      await Promise.all(jobs);
      return out;
    })();
    return this.matrix;
  }

  /**
   * Makes a call the gate may hold. When it waits, it is withdrawn at once
   * if `want` is null or the operator chose `skip`; otherwise the operator
   * is asked for `want` and the call waits for the answer or the lapse.
   */
  async gated(operation: string, qube: string, want: Ask['want'] | null, make: (hooks: CallHooks) => Promise<Reply>): Promise<GatedReply> {
    const stop = new AbortController();
    let waited = false;
    const onWait = (): void => {
      waited = true;
      if (want === null || this.options.gateAnswers === 'skip') stop.abort();
      else this.options.onAsk?.({ operation, qube, want });
    };
    const reply = await make({ onWait, signal: stop.signal });
    return { reply, waited, withdrawn: stop.signal.aborted };
  }

  fixture(kind: Fixture['kind']): Fixture | undefined {
    return this.fixtures.find((f) => f.kind === kind && !f.removed);
  }
}

/** Collects a scenario's checks: the first failure decides, then the first thing not run. */
export class Findings {
  private readonly failures: string[] = [];
  private readonly skipped: string[] = [];
  private readonly notes: string[] = [];

  fail(why: string): void {
    this.failures.push(why);
  }
  notRun(why: string): void {
    this.skipped.push(why);
  }
  note(what: string): void {
    this.notes.push(what);
  }
  check(ok: boolean, why: string): boolean {
    if (!ok) this.fail(why);
    return ok;
  }
  get failed(): boolean {
    return this.failures.length > 0;
  }

  outcome(): Outcome {
    const more = (list: string[]): string => (list.length > 1 ? ` (+${list.length - 1} more)` : '');
    if (this.failures.length > 0) return { verdict: 'FAIL', reason: (this.failures[0] as string) + more(this.failures) };
    if (this.skipped.length > 0) return { verdict: 'NOT-RUN', reason: [this.skipped[0] as string, ...this.notes].join('; ') + more(this.skipped) };
    return { verdict: 'PASS', reason: this.notes.join('; ') };
  }
}

export interface Scenario {
  readonly id: string;
  run(ctx: Context): Promise<Outcome>;
}

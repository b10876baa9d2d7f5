/** Sample statistics and the one table the benchmark prints. */
import { performance } from 'node:perf_hooks';

export interface Summary {
  readonly n: number;
  readonly medianMs: number;
  readonly p95Ms: number;
}

/** Nearest-rank percentile of an unsorted sample, in the sample's unit. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function summarise(samples: readonly number[]): Summary {
  return { n: samples.length, medianMs: percentile(samples, 50), p95Ms: percentile(samples, 95) };
}

/** Milliseconds one awaited call takes. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `fn` `n` times in sequence and summarises the times. */
export async function sample(n: number, fn: (i: number) => Promise<unknown>): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await timeMs(() => fn(i)));
  return summarise(times);
}

export interface Row {
  readonly section: string;
  readonly what: string;
  readonly n: string;
  readonly median: string;
  readonly p95: string;
}

export function ms(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} ms` : '-';
}

export function latencyRow(section: string, what: string, s: Summary): Row {
  return { section, what, n: String(s.n), median: ms(s.medianMs), p95: ms(s.p95Ms) };
}

/** A Markdown table, so the output pastes into docs unchanged. */
export function renderTable(rows: readonly Row[]): string {
  const head: Row = { section: 'section', what: 'what', n: 'n', median: 'median', p95: 'p95' };
  const cols: (keyof Row)[] = ['section', 'what', 'n', 'median', 'p95'];
  const width = cols.map((c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
  const line = (r: Row): string => `| ${cols.map((c, i) => r[c].padEnd(width[i] ?? 0)).join(' | ')} |`;
  const rule = `| ${width.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

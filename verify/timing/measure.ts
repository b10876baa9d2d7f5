/**
 * How the timing check measures two classes of input (the dudect method):
 * samples of either class in a seeded random order, timed, cropped at the
 * pooled 95th percentile, compared with Welch's t.
 *
 * The timed loop does the same work whichever class a sample is: the order
 * is an array of 0 and 1 made before timing, each time goes into one
 * preallocated array at the sample's position, and the classes are split
 * only after: keying the bookkeeping by class inside the loop (a lookup and
 * a push into a per-class array, which grows) can add a few nanoseconds
 * that differ by class. Timing the classes in two blocks instead of a
 * random order reads the compiler's tiering and the clock's drift as a
 * difference (median |t| above 10 between two calls that are the same,
 * test/verify/timing-measure.test.ts). Where a run takes under a microsecond, a sample is a
 * batch of runs of its class, so that it lasts hundreds of clock ticks.
 * The untimed warm-up is in a seeded random order too: which input the
 * compiler's feedback sees first (the order of the maps in a polymorphic
 * inline cache, checked in turn) is then a coin toss per process, not
 * always class 0's.
 */
import { performance } from 'node:perf_hooks';

/** The seeded source of the order (verify/malformed/host.ts's prng). */
export interface Shuffler {
  shuffle<T>(xs: T[]): T[];
}

/** Welch's t statistic of two samples. */
export function welch(a: readonly number[], b: readonly number[]): number {
  const stats = (xs: readonly number[]): [number, number] => {
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length - 1);
    return [mean, v];
  };
  const [ma, va] = stats(a);
  const [mb, vb] = stats(b);
  const se = Math.sqrt(va / a.length + vb / b.length);
  return se === 0 ? 0 : (ma - mb) / se;
}

/** Drops measurements above the pooled 95th percentile (dudect's cropping of GC and scheduler spikes). */
export function crop(a: readonly number[], b: readonly number[]): [number[], number[]] {
  const all = [...a, ...b].sort((x, y) => x - y);
  const cut = all[Math.floor(all.length * 0.95)] ?? Infinity;
  return [a.filter((x) => x <= cut), b.filter((x) => x <= cut)];
}

/** n samples of each class, 0 and 1, in a seeded random order. */
export function order(n: number, rand: Shuffler): number[] {
  const classes = Array.from({ length: 2 * n }, (_, i) => (i < n ? 0 : 1));
  return rand.shuffle(classes);
}

/** The times of each class, in the order they were taken. */
function split(classes: readonly number[], times: Float64Array): [number[], number[]] {
  const out: [number[], number[]] = [[], []];
  for (let i = 0; i < classes.length; i++) out[classes[i] as 0 | 1].push(times[i] as number);
  return out;
}

/** Welch's t of class 0 against class 1, after cropping. */
export function tOf([a, b]: readonly [readonly number[], readonly number[]]): number {
  return welch(...crop(a, b));
}

/**
 * Times a synchronous run of each of two inputs: `warm` runs of each
 * untimed, interleaved (the compiler settles), then n samples of each, a sample being
 * `batch` runs of one input with no turn of the event loop inside.
 */
export function sampleSync<T>(run: (input: T) => unknown, inputs: readonly [T, T], n: number, batch: number, rand: Shuffler, warm: number): [number[], number[]] {
  for (const c of order(warm, rand)) run(inputs[c as 0 | 1]);
  const classes = order(n, rand);
  const times = new Float64Array(classes.length);
  for (let i = 0; i < classes.length; i++) {
    const input = inputs[classes[i] as 0 | 1];
    const t0 = performance.now();
    for (let j = 0; j < batch; j++) run(input);
    times[i] = performance.now() - t0;
  }
  return split(classes, times);
}

/** `sampleSync` for a run that takes milliseconds: one run a sample. */
export async function sampleAsync<T>(run: (input: T) => Promise<unknown>, inputs: readonly [T, T], n: number, rand: Shuffler, warm: number): Promise<[number[], number[]]> {
  for (const c of order(warm, rand)) await run(inputs[c as 0 | 1]);
  const classes = order(n, rand);
  const times = new Float64Array(classes.length);
  for (let i = 0; i < classes.length; i++) {
    const input = inputs[classes[i] as 0 | 1];
    const t0 = performance.now();
    await run(input);
    times[i] = performance.now() - t0;
  }
  return split(classes, times);
}

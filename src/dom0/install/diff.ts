/** A readable line diff for the operator: unified-style hunks with three lines of context. */

const CONTEXT = 3;
/** Above this many line pairs the diff is summarised instead of computed. */
const MAX_CELLS = 4_000_000;

type Edit = { kind: ' ' | '-' | '+'; text: string; a: number; b: number };

function lines(text: string): string[] {
  if (text === '') return [];
  const out = text.split('\n');
  if (out[out.length - 1] === '') out.pop();
  return out;
}

/** Longest common subsequence by dynamic programming: small files only. */
function edits(a: string[], b: string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  const width = m + 1;
  const table = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * width + j] = a[i] === b[j] ? (table[(i + 1) * width + j + 1] as number) + 1 : Math.max(table[(i + 1) * width + j] as number, table[i * width + j + 1] as number);
    }
  }
  const out: Edit[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) out.push({ kind: ' ', text: a[i++] as string, a: i, b: ++j });
    else if (j < m && (i === n || (table[i * width + j + 1] as number) >= (table[(i + 1) * width + j] as number))) out.push({ kind: '+', text: b[j++] as string, a: i, b: j });
    else out.push({ kind: '-', text: a[i++] as string, a: i, b: j });
  }
  return out;
}

/**
 * The diff from OLD to NEW as text (`--- path` / `+++ path` / `@@` hunks),
 * or '' when they are equal. A file too large or not text is summarised.
 */
export function unifiedDiff(path: string, oldText: Buffer | null, newText: Buffer): string {
  if (oldText !== null && oldText.equals(newText)) return '';
  const binary = (buf: Buffer | null): boolean => buf !== null && buf.includes(0);
  if (binary(oldText) || binary(newText)) return `binary ${path}: ${oldText?.length ?? 0} -> ${newText.length} bytes\n`;
  const a = lines(oldText?.toString('utf8') ?? '');
  const b = lines(newText.toString('utf8'));
  const header = `--- ${oldText === null ? '/dev/null' : `a/${path}`}\n+++ b/${path}\n`;
  if ((a.length + 1) * (b.length + 1) > MAX_CELLS) return `${header}@@ ${a.length} lines -> ${b.length} lines (too long to show) @@\n`;
  const all = edits(a, b);
  const changed = all.map((e, k) => (e.kind === ' ' ? -1 : k)).filter((k) => k >= 0);
  if (changed.length === 0) return `${header}@@ only the file mode changes @@\n`;
  let out = header;
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, (changed[k] as number) - CONTEXT);
    let end = Math.min(all.length, (changed[k] as number) + CONTEXT + 1);
    while (k + 1 < changed.length && (changed[k + 1] as number) - CONTEXT <= end) {
      k++;
      end = Math.min(all.length, (changed[k] as number) + CONTEXT + 1);
    }
    const hunk = all.slice(start, end);
    const first = hunk[0] as Edit;
    const aLen = hunk.filter((e) => e.kind !== '+').length;
    const bLen = hunk.filter((e) => e.kind !== '-').length;
    // an empty side names the line before, as diff -u does
    const aStart = aLen && first.kind === '+' ? first.a + 1 : first.a;
    const bStart = bLen && first.kind === '-' ? first.b + 1 : first.b;
    out += `@@ -${aStart},${aLen} +${bStart},${bLen} @@\n`;
    for (const e of hunk) out += `${e.kind}${e.text}\n`;
    k++;
  }
  return out;
}

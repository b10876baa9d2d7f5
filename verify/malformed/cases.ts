/** Malformed inputs from a grammar: (argument, payload) pairs for a dom0 service, targets for what the policy decides; near misses first, then noise. */
import fc from 'fast-check';
import type { Grammar, PayloadGrammar } from './grammar.js';
import { BAD_NAMES, BAD_VALUES, VISIBLE, deeplyNested, wellFormed, wellFormedTarget } from './grammar.js';

export interface MalformedCase {
  /** What rule the case breaks, for the figures and the reproduction. */
  readonly kind: string;
  readonly argument: string;
  readonly payload: Buffer;
}

const OVERSIZE = 70 * 1024;
const EXTRA_KEYS = ['Name', 'name ', ' name', '__proto__', 'constructor', 'tags', 'klass', 'template_for_dispvms', '', '\0', 'n\u0430me'];

function text(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** Textual near misses of a valid JSON payload. */
function textMisses(json: string): [string, Buffer][] {
  const inner = json.slice(1, -1);
  return [
    ['trailing comma', text(`{${inner},}`)],
    ['single quotes', text(json.replace(/"/g, "'"))],
    ['unquoted keys', text(json.replace(/"([a-zA-Z_]+)":/g, '$1:'))],
    ['byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text(json)])],
    ['trailing garbage', text(`${json}x`)],
    ['two objects', text(`${json}${json}`)],
    ['comment', text(`/*c*/${json}`)],
    ['NaN literal', text(`{${inner},"x":NaN}`)],
    ['wrapped in an array', text(`[${json}]`)],
    ['as a string', text(JSON.stringify(json))],
    ['null', text('null')],
    ['number', text('1')],
    ['empty', Buffer.alloc(0)],
    ['whitespace', text(' \n')],
    ['utf-16', Buffer.from(json, 'utf16le')],
    ['raw NUL after', Buffer.concat([text(json), Buffer.from([0])])],
    ['raw NUL inside', text(json.replace(/":"/, '":"\0'))],
    ['invalid utf-8 in a string', Buffer.concat([text(json.slice(0, json.indexOf(':"') + 2)), Buffer.from([0xff, 0xfe]), text(json.slice(json.indexOf(':"') + 2))])],
    ['oversize padding', text(json + ' '.repeat(OVERSIZE))],
    ['deep nesting', text(`{${inner},"x":${deeplyNested(10_000)}}`)],
    ['truncated', text(json.slice(0, Math.max(1, json.length - 2)))],
  ];
}

function withField(o: Record<string, unknown>, key: string, value: unknown): Buffer {
  return text(JSON.stringify({ ...o, [key]: value }));
}

/** Every single-rule near miss of a payload grammar, with the example argument. */
function payloadMisses(g: Grammar, p: PayloadGrammar): MalformedCase[] {
  const out: MalformedCase[] = [];
  const arg = g.example;
  for (const ex of p.examples) {
    for (const key of p.required) {
      const rest = Object.fromEntries(Object.entries(ex).filter(([k]) => k !== key));
      out.push({ kind: `missing ${key}`, argument: arg, payload: text(JSON.stringify(rest)) });
    }
    for (const key of [...p.required, ...p.optional]) {
      for (const v of BAD_VALUES) out.push({ kind: `bad ${key}`, argument: arg, payload: withField(ex, key, v) });
      out.push({ kind: `oversize ${key}`, argument: arg, payload: withField(ex, key, 'a'.repeat(OVERSIZE)) });
    }
    for (const key of EXTRA_KEYS) out.push({ kind: 'extra key', argument: arg, payload: withField(ex, key, 'x') });
    // A duplicate key: JSON.parse keeps the last, so the last is the bad one.
    const json = JSON.stringify(ex);
    out.push({ kind: 'duplicate key', argument: arg, payload: text(`${json.slice(0, -1)},"${p.required[0]}":"@adminvm"}`) });
    for (const [kind, payload] of textMisses(json)) out.push({ kind, argument: arg, payload });
  }
  return out;
}

/** The deterministic near misses of one service's grammar. */
export function nearMisses(g: Grammar): MalformedCase[] {
  const good = g.lines ? text(g.lines.examples[0] ?? '') : g.payload ? text(JSON.stringify(g.payload.examples[0])) : Buffer.alloc(0);
  const out: MalformedCase[] = BAD_NAMES.map((a) => ({ kind: 'bad argument', argument: a, payload: good }));
  if (g.lines) {
    for (const [kind, payload] of g.lines.misses) out.push({ kind, argument: g.example, payload: text(payload) });
    out.push({ kind: 'oversize payload', argument: g.example, payload: text('action=drop\n'.repeat(OVERSIZE / 12)) });
  } else if (g.payload) {
    out.push(...payloadMisses(g, g.payload));
  } else {
    for (const [kind, payload] of [
      ['a payload where none is taken', text('{}')],
      ['a NUL payload', Buffer.from([0])],
      ['a newline payload', text('\n')],
      ['a JSON payload', text('{"name":"ai-box"}')],
      ['oversize payload', text('a'.repeat(OVERSIZE))],
    ] as const) {
      out.push({ kind, argument: g.example, payload });
    }
  }
  return out.filter((c) => !wellFormed(g, c.argument, c.payload));
}

/**
 * Strings of any code point, made once per length and only when first
 * needed: each such arbitrary builds a map of every code point as it is
 * made, which costs more than many calls (and every process that imports
 * the checks would pay it).
 */
const binaryStrings = new Map<number, fc.Arbitrary<string>>();
function binary(maxLength: number): fc.Arbitrary<string> {
  let a = binaryStrings.get(maxLength);
  if (a === undefined) binaryStrings.set(maxLength, (a = fc.string({ unit: 'binary', maxLength })));
  return a;
}

/** Generated noise and mutations, for fast-check to shrink. */

export function malformedArbitrary(g: Grammar | undefined): fc.Arbitrary<MalformedCase> {
  const example = g?.example ?? '';
  const json = g?.lines?.examples[0] ?? (g?.payload ? JSON.stringify(g.payload.examples[0]) : '{}');
  const examples = g?.payload?.examples ?? [{}];
  const keys = g?.payload ? [...g.payload.required, ...g.payload.optional] : ['name'];
  const argument = fc.oneof(fc.constant(example), fc.constantFrom(...BAD_NAMES), fc.string({ maxLength: 40 }), binary(40));
  const bytes = fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a));
  const edit = fc.tuple(fc.nat(), fc.constantFrom('{', '}', ',', '"', ':', '\\', '\0', '\n', '\u2028', ' ', '[', 'x', '')).map(([at, ch]) => {
    const i = at % (json.length + 1);
    return text(json.slice(0, i) + ch + json.slice(i + 1));
  });
  const field = fc
    .tuple(fc.constantFrom(...examples), fc.constantFrom(...keys), fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(...BAD_VALUES), binary(40)))
    .map(([ex, key, v]) => withField(ex, key, v));
  const payload = fc.oneof(bytes, edit, field, fc.constant(Buffer.alloc(0)));
  return fc.record({ argument, payload }).map((c) => ({ kind: 'generated', ...c }));
}

/** A malformed target for an operation the policy decides: the argument and payload stay well-formed. */
export interface TargetCase {
  readonly kind: string;
  readonly target: string;
}

/**
 * Not a near miss: an outside qube carrying an elevation tag without the
 * umbrella is matched by the tier lines, the documented residual that
 * install notes and doctor fails on (docs/threat-model.md).
 */
const ELEVATED_OUTSIDE = 'ai-outside';

/** Every bad name, and each visible name edited by one character, as a target. */
export function targetMisses(): TargetCase[] {
  const edits = VISIBLE.flatMap((n) => [`${n}x`, n.slice(0, -1), `${n.slice(0, -1)}_`, n.replace('-', '_'), `uuid:${n}`, `@dispvm:${n}`]);
  return [
    ...BAD_NAMES.filter((t) => t !== ELEVATED_OUTSIDE).map((target) => ({ kind: 'bad target', target })),
    ...edits.map((target) => ({ kind: 'edited target', target })),
  ].filter((c) => !wellFormedTarget(c.target));
}

/** Generated targets, for fast-check to shrink: noise, and visible names with one character changed. */
export function targetArbitrary(): fc.Arbitrary<TargetCase> {
  const edited = fc.tuple(fc.constantFrom(...VISIBLE), fc.nat(), binary(2)).map(([n, at, ch]) => {
    const i = at % (n.length + 1);
    return n.slice(0, i) + ch + n.slice(i + 1);
  });
  const target = fc.oneof(fc.string({ maxLength: 70 }), binary(70), edited).filter((t) => t !== ELEVATED_OUTSIDE);
  return target.map((t) => ({ kind: 'generated target', target: t }));
}

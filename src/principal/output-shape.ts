/**
 * One output stream of a command as the agent gets it: the head and the
 * tail the in-qube service kept, joined by a marker that says how much was
 * left out and where the whole stream is, with its totals.
 */
import type { StreamShape } from '../shared/inqube-protocol.js';
import { cut } from '../shared/inqube-protocol.js';

export interface ShapedStream {
  readonly text: string;
  readonly encoding: 'utf8' | 'base64';
  readonly truncated: boolean;
  readonly bytes: number;
  readonly lines: number;
  /** The whole stream's file in the qube, when bytes were left out. */
  readonly path: string | null;
}

const isContinuation = (b: number | undefined): boolean => b !== undefined && (b & 0xc0) === 0x80;

/** How many bytes a UTF-8 sequence that starts with LEAD has; 0 for a byte that starts none. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 0;
}

/** HEAD without a character its cut split in two. */
function trimEnd(head: Buffer): Buffer {
  for (let back = 1; back <= Math.min(4, head.length); back++) {
    const b = head[head.length - back] ?? 0;
    if (isContinuation(b)) continue;
    const n = sequenceLength(b);
    return n > back ? head.subarray(0, head.length - back) : head;
  }
  return head;
}

/** TAIL without the continuation bytes of a character its cut split. */
function trimStart(tail: Buffer): Buffer {
  let at = 0;
  while (at < 3 && isContinuation(tail[at])) at++;
  return tail.subarray(at);
}

const validUtf8 = (b: Buffer): boolean => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

/** The stream as text; SAVED is the directory in the qube holding it whole, NAME its file there. */
export function shapeStream(stream: StreamShape, saved: string | null, name: 'stdout' | 'stderr'): ShapedStream {
  const base = { bytes: stream.total, lines: stream.lines };
  if (!cut(stream)) {
    const whole = Buffer.concat([stream.head, stream.tail]);
    const utf8 = validUtf8(whole);
    return { ...base, text: whole.toString(utf8 ? 'utf8' : 'base64'), encoding: utf8 ? 'utf8' : 'base64', truncated: false, path: null };
  }
  const path = saved === null ? null : `${saved}/${name}`;
  let head = trimEnd(stream.head);
  let tail = trimStart(stream.tail);
  const utf8 = validUtf8(head) && validUtf8(tail);
  if (!utf8) {
    head = stream.head;
    tail = stream.tail;
  }
  const omitted = stream.total - head.length - tail.length;
  const where = path === null ? '' : `; all of it is in ${path}, from byte ${head.length} on (qube_read_file with offset)`;
  const marker = `\n[... ${omitted} bytes omitted${where} ...]\n`;
  const encoding = utf8 ? 'utf8' : 'base64';
  return { ...base, text: head.toString(encoding) + marker + tail.toString(encoding), encoding, truncated: true, path };
}

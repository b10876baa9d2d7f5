/** Tools of the `exec` capability that look at a qube's files without reading them: a directory listing and a stat. */
import * as z from 'zod';
import {
  decodeListDirReply,
  decodeListDirRequest,
  decodeStatReply,
  decodeStatRequest,
  encodeListDirRequest,
  encodeStatRequest,
} from '../../shared/inqube-protocol.js';
import { inQubeExact, inQubeResult } from '../calls.js';
import { encodeBytes, Encoding, QubeName, QubePath } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { callTool } from './exact.js';
import { HEADER_ROOM, requestPath } from './inqube.js';

const DEFAULT_ENTRIES = 500;
const MAX_ENTRIES = 10_000;
/** A listed entry's line and name at their longest: the name bound of Linux, and its counts. */
const ENTRY_BYTES = 255 + 64;

const EntryType = z.enum(['file', 'directory', 'link', 'fifo', 'socket', 'char', 'block', 'other']);

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

const ListInput = z.strictObject({
  qube: QubeName,
  path: QubePath.or(z.literal('/')),
  limit: z.number().int().min(1).max(MAX_ENTRIES).optional().describe(`entries returned at most (default ${DEFAULT_ENTRIES})`),
});

export const qubeListDir = callTool({
  name: 'qube_list_dir',
  title: 'List a directory in a qube',
  operation: 'dir.list',
  description:
    "List one directory inside a qube, as root: each entry's basename, type, size, permission bits and modification time, in byte order of names, dot files after the others. 'total' counts every entry and 'truncated' says whether the limit left some out. The qube must be running (qube_start first): a call into a halted qube is refused like any other." +
    REFUSABLE +
    UNTRUSTED,
  input: ListInput,
  output: z.object({
    path: z.string(),
    total: z.number(),
    truncated: z.boolean(),
    entries: z.array(
      z.object({ basename: z.string(), basename_encoding: Encoding, type: EntryType, size: z.number(), mode: z.number(), mtime: z.string() }),
    ),
  }),
  call: (input) => {
    const limit = input.limit ?? DEFAULT_ENTRIES;
    return inQubeExact(input.qube, 'dir.list', '', encodeListDirRequest({ path: input.path, limit }), { maxOutput: limit * ENTRY_BYTES + HEADER_ROOM });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeListDirReply);
    const entries = r.entries.map((e) => {
      const name = encodeBytes(e.name);
      return { basename: name.text, basename_encoding: name.encoding, type: e.type, size: e.size, mode: e.mode, mtime: iso(e.mtime) };
    });
    return { path: requestPath(decodeListDirRequest(call.payload)), total: r.total, truncated: entries.length < r.total, entries };
  },
});

export const qubeStat = callTool({
  name: 'qube_stat',
  title: 'Stat a path in a qube',
  operation: 'file.stat',
  description:
    "The type, size, permission bits, modification time and owner of one path inside a qube, not following a last symbolic link (a link's target is given). The qube must be running (qube_start first): a call into a halted qube is refused like any other." +
    REFUSABLE +
    UNTRUSTED,
  input: z.strictObject({ qube: QubeName, path: QubePath.or(z.literal('/')) }),
  output: z.object({
    path: z.string(),
    type: EntryType,
    size: z.number(),
    mode: z.number(),
    mtime: z.string(),
    uid: z.number(),
    gid: z.number(),
    link_target: z.string().nullable(),
  }),
  call: (input) => inQubeExact(input.qube, 'file.stat', '', encodeStatRequest({ path: input.path }), { maxOutput: HEADER_ROOM }),
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeStatReply);
    return {
      path: requestPath(decodeStatRequest(call.payload)),
      type: r.type,
      size: r.size,
      mode: r.mode,
      mtime: iso(r.mtime),
      uid: r.uid,
      gid: r.gid,
      link_target: r.target === null ? null : r.target.toString('utf8'),
    };
  },
});

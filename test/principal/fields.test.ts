/**
 * One name for one thing: every field of every tool's input and output
 * schema, as a client sees them in tools/list, against src/principal/fields.ts.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { FIELDS } from '../../src/principal/fields.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { QubeName } from '../../src/principal/schemas.js';
import { createServer } from '../../src/principal/server.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { composition } from '../../src/shared/model/compositions.js';

type Schema = Record<string, unknown>;

interface Use {
  readonly tool: string;
  readonly side: 'input' | 'output';
  readonly path: string;
  readonly key: string;
  readonly schema: Schema;
}

const QUBE_NAME_PATTERN = (z.toJSONSchema(QubeName) as Schema)['pattern'];

function resolve(root: Schema, s: Schema): Schema {
  const ref = s['$ref'];
  if (typeof ref !== 'string') return s;
  const name = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(ref)?.[1];
  const defs = (root['$defs'] ?? root['definitions']) as Record<string, Schema> | undefined;
  const target = name === undefined ? undefined : defs?.[name];
  assert.ok(target, `unresolvable ${ref}`);
  return target;
}

/** Every property of a schema, nested objects, arrays and unions included. */
function walk(root: Schema, s: Schema, path: string, out: (key: string, schema: Schema, path: string) => void): void {
  const here = resolve(root, s);
  const props = here['properties'] as Record<string, Schema> | undefined;
  for (const [key, sub] of Object.entries(props ?? {})) {
    out(key, resolve(root, sub), `${path}.${key}`);
    walk(root, sub, `${path}.${key}`, out);
  }
  const items = here['items'];
  if (typeof items === 'object' && items !== null) walk(root, items as Schema, `${path}[]`, out);
  const extra = here['additionalProperties'];
  if (typeof extra === 'object' && extra !== null) walk(root, extra as Schema, `${path}{}`, out);
  for (const k of ['anyOf', 'oneOf', 'allOf']) for (const sub of (here[k] as Schema[] | undefined) ?? []) walk(root, sub, path, out);
}

/** The JSON type of a field, null aside; undefined when it has none or several. */
function typeOf(root: Schema, s: Schema): string | undefined {
  const here = resolve(root, s);
  const declared = here['type'];
  let types: string[];
  if (typeof declared === 'string') types = [declared];
  else if (Array.isArray(declared)) types = declared as string[];
  else if (Array.isArray(here['anyOf'])) types = (here['anyOf'] as Schema[]).map((b) => typeOf(root, b) ?? '?');
  else return undefined;
  const kinds = [...new Set(types.filter((t) => t !== 'null').map((t) => (t === 'integer' ? 'number' : t)))];
  if (kinds.length !== 1 || kinds[0] === '?') return undefined;
  if (kinds[0] === 'array' && typeof here['items'] === 'object') return `array of ${typeOf(root, here['items'] as Schema) ?? 'any'}`;
  return kinds[0];
}

/** Tools whose operation, or one it is composed of, creates a qube: the only ones with a `name`. */
function createsQube(operationId: string): boolean {
  const ids = composition(operationId)?.operations ?? [operationId];
  return ids.some((id) => /^qmcp\.(Create\w*|Clone)$/.test(OPERATIONS.find((o) => o.id === id)?.service ?? ''));
}

describe('tool field names', () => {
  const uses: Use[] = [];
  const roots = new Map<string, Schema>();
  before(async () => {
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(new QrexecRunner({ client: '/nonexistent' })).connect(serverSide);
    const client = new Client({ name: 'test', version: '0' });
    await client.connect(clientSide);
    const { tools } = await client.listTools();
    await client.close();
    assert.equal(tools.length, TOOLS.length);
    for (const tool of tools) {
      for (const side of ['input', 'output'] as const) {
        const root = (side === 'input' ? tool.inputSchema : tool.outputSchema) as Schema | undefined;
        assert.ok(root, `${tool.name} has an ${side} schema`);
        roots.set(`${tool.name} ${side}`, root);
        walk(root, root, side, (key, schema, path) => uses.push({ tool: tool.name, side, path, key, schema }));
      }
    }
    assert.ok(uses.length > 100, 'the walk found the fields');
  });

  it('uses only names listed in src/principal/fields.ts, and every listed name is used', () => {
    const unknown = uses.filter((u) => !Object.hasOwn(FIELDS, u.key)).map((u) => `${u.tool} ${u.path}`);
    assert.deepEqual(unknown, [], 'add each to src/principal/fields.ts, under a name that means one thing');
    const unused = Object.keys(FIELDS).filter((k) => !uses.some((u) => u.key === k));
    assert.deepEqual(unused, []);
  });

  it('gives every qube name given as input a qube-naming field, and such a field only a qube name', () => {
    for (const u of uses.filter((x) => x.side === 'input')) {
      const isQubeName = u.schema['pattern'] === QUBE_NAME_PATTERN;
      assert.equal(FIELDS[u.key]?.qubeName === true, isQubeName, `${u.tool} ${u.path}`);
    }
  });

  it('calls the qube acted on `qube`, and keeps `name` for a qube the call creates', () => {
    for (const spec of TOOLS) {
      const mine = uses.filter((u) => u.tool === spec.name);
      const creates = createsQube(spec.operation);
      assert.equal(mine.some((u) => u.side === 'input' && u.path === 'input.name'), creates, `${spec.name} input`);
      if (!creates) assert.ok(!mine.some((u) => u.key === 'name'), `${spec.name} says name for something it does not create`);
    }
  });

  it('gives each name one type wherever it appears', () => {
    const seen = new Map<string, { type: string; where: string }>();
    for (const u of uses) {
      const root = roots.get(`${u.tool} ${u.side}`) ?? {};
      const type = typeOf(root, u.schema);
      if (type === undefined) continue;
      const first = seen.get(u.key);
      if (first === undefined) seen.set(u.key, { type, where: `${u.tool} ${u.path}` });
      else assert.equal(type, first.type, `${u.tool} ${u.path} is a ${type}, but ${first.where} is a ${first.type}`);
    }
  });
});

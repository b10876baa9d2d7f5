/**
 * One read of every qube as the operator commands need it (doctor, explain,
 * install's preconditions): class, state, tags and the properties that name
 * other qubes. dom0 is left out.
 */
import { Qubesd, QubesdError } from '../qubesd.js';
import { QmcpError } from '../../shared/errors.js';

export interface QubeRecord {
  readonly name: string;
  readonly klass: string;
  readonly state: string;
  readonly tags: ReadonlySet<string>;
  readonly template: string | null;
  readonly netvm: string | null;
  readonly defaultDispvm: string | null;
  readonly templateForDispvms: boolean;
  /** The `prohibit-start` feature, set while a disposable template is held mid-create. */
  readonly prohibitStart: boolean;
}

const BATCH = 16;

/** qubesd could not be reached at all (no socket, refused): distinct from a Qubes exception. */
export class QubesdUnreachable extends QmcpError {
  readonly code = 'ERR_QMCP_QUBESD_UNREACHABLE';
}

async function prop(q: Qubesd, qube: string, name: string): Promise<string | null> {
  try {
    const { value } = await q.property(qube, name);
    return value === '' || value === 'None' ? null : value;
  } catch (err) {
    // a class without the property (a TemplateVM has no template)
    if (err instanceof QubesdError) return null;
    throw err;
  }
}

async function feature(q: Qubesd, qube: string, name: string): Promise<string | null> {
  try {
    return await q.call('admin.vm.feature.Get', qube, name);
  } catch (err) {
    if (err instanceof QubesdError) return null;
    throw err;
  }
}

/** Lists the qubes once; rejects with QubesdUnreachable when the socket does not answer. */
export async function listQubes(socketPath: string): Promise<Map<string, { klass: string; state: string }>> {
  const q = new Qubesd(socketPath);
  try {
    return await q.list();
  } catch (err) {
    if (err instanceof QubesdError) throw err;
    throw new QubesdUnreachable(`qubesd does not answer at ${socketPath} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** dom0's `tag-created-vm-with` feature: tags Qubes adds to every qube dom0 creates. */
export async function dom0CreatorTags(socketPath: string): Promise<string[]> {
  return ((await feature(new Qubesd(socketPath), 'dom0', 'tag-created-vm-with')) ?? '').split(/\s+/).filter(Boolean);
}

/** The qube QUBE's GUI qube (where Qubes shows a dialog for its calls), or null for none. */
export async function guivmOf(socketPath: string, qube: string): Promise<string | null> {
  return prop(new Qubesd(socketPath), qube, 'guivm');
}

/** Every qube but dom0, by name, in name order. */
export async function readQubes(socketPath: string, detail = true): Promise<Map<string, QubeRecord>> {
  const q = new Qubesd(socketPath);
  const listed = await listQubes(socketPath);
  const names = [...listed.keys()].filter((n) => listed.get(n)?.klass !== 'AdminVM').sort();
  const read = async (name: string): Promise<QubeRecord> => {
    const { klass, state } = listed.get(name) as { klass: string; state: string };
    const tags = new Set(await q.tags(name));
    if (!detail) return { name, klass, state, tags, template: null, netvm: null, defaultDispvm: null, templateForDispvms: false, prohibitStart: false };
    const [template, netvm, defaultDispvm, tfd, prohibit] = await Promise.all([
      prop(q, name, 'template'),
      prop(q, name, 'netvm'),
      prop(q, name, 'default_dispvm'),
      prop(q, name, 'template_for_dispvms'),
      feature(q, name, 'prohibit-start'),
    ]);
    return { name, klass, state, tags, template, netvm, defaultDispvm, templateForDispvms: tfd === 'True', prohibitStart: prohibit !== null && prohibit !== '' };
  };
  // a few qubes at a time, so a large machine does not open thousands of connections at once
  const records: QubeRecord[] = [];
  for (let i = 0; i < names.length; i += BATCH) records.push(...(await Promise.all(names.slice(i, i + BATCH).map(read))));
  return new Map(records.map((r) => [r.name, r]));
}

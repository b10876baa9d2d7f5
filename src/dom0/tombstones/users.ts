/** Who depends on a qube: qubes using it as template, netvm or disposable template, and global defaults. */
import type { Qubesd } from '../qubesd.js';
import { QubesdError, eachQube } from '../qubesd.js';

const REFERENCES = ['template', 'netvm', 'default_dispvm'];
const GLOBAL_REFERENCES = ['default_netvm', 'default_dispvm', 'default_template', 'updatevm', 'clockvm'];

async function value(get: () => Promise<string>): Promise<string> {
  try {
    const m = /^default=(?:True|False) type=\S+ ?(.*)$/s.exec(await get());
    return m ? (m[1] as string) : '';
  } catch (err) {
    if (err instanceof QubesdError && err.errorClass === 'QubesNoSuchPropertyError') return '';
    throw err;
  }
}

/** Names of qubes (or `@global`) that refer to `qube`. */
export async function usersOf(qubesd: Qubesd, qube: string): Promise<string[]> {
  const out = new Set<string>();
  for (const p of GLOBAL_REFERENCES) {
    if ((await value(() => qubesd.call('admin.property.Get', 'dom0', p))) === qube) out.add('@global');
  }
  const others = [...(await qubesd.list()).keys()].filter((n) => n !== qube);
  const refs = await eachQube(others, async (name) => {
    for (const p of REFERENCES) {
      if ((await value(() => qubesd.call('admin.vm.property.Get', name, p))) === qube) return true;
    }
    return false;
  });
  for (const [name, uses] of refs) if (uses) out.add(name);
  return [...out].sort();
}

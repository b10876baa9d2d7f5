// Adapts the simulated qubesd's collection of qubes to the sandbox layer's
// lookup, structurally, so that either side can change its internals.
import type { QubeShape } from './sandboxes.js';

interface RegistryQube {
  readonly klass: string;
  readonly volumes?: Readonly<Record<string, { readonly size: number }>>;
}

export interface QubeRegistry<V extends RegistryQube> {
  get(name: string): V | undefined;
  propValue(vm: V, prop: string): unknown;
}

/**
 * A lookup for QubeSandboxes over a registry that may exist only later
 * (qubesd is started with the sandbox hooks, then gives its app).
 */
export function registryLookup<V extends RegistryQube>(
  registry: () => QubeRegistry<V> | undefined,
): (name: string) => QubeShape | undefined {
  return (name) => {
    const app = registry();
    const vm = app?.get(name);
    if (app === undefined || vm === undefined) return undefined;
    const template = app.propValue(vm, 'template');
    const volumes: Partial<Record<'root' | 'private' | 'volatile', number>> = {};
    for (const volume of ['root', 'private', 'volatile'] as const) {
      const size = vm.volumes?.[volume]?.size;
      if (typeof size === 'number' && size > 0) volumes[volume] = size;
    }
    return { klass: vm.klass, template: typeof template === 'string' ? template : null, volumes };
  };
}

/**
 * qmcp.CreateDisposable+DVMT: a disposable from a visible disposable
 * template, auto-cleanup (removed by Qubes at its first shutdown) unless the
 * agent asks for a persistent one. Without a name, dom0 names it PREFIXdispN,
 * the lowest N no qube holds.
 */
import { isQubeName } from '../../shared/names.js';
import { giveBirth } from '../create/birth.js';
import type { WriteDeps } from '../create/deps.js';
import { isNewName, parseMaybeNamed } from '../create/input.js';
import type { NewQubeInput } from '../create/input.js';
import { inheritedDefaultDispvm, inheritedNetvm, requireFreeName } from '../create/source.js';
import { ActionableError } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

export interface DisposableInput extends Omit<NewQubeInput, 'name'> {
  /** Null: dom0 chooses it. */
  readonly name: string | null;
  readonly dvmt: string;
  readonly autoCleanup: boolean;
}

/** Names a disposable may be given by dom0, tried in order. */
const MAX_CHOSEN = 9999;

/**
 * The lowest PREFIXdispN that no qube holds. A name held outside the
 * umbrella is skipped, which the agent could notice: the residual a named
 * create already has (SPEC §4.1, a name inside the prefix held outside).
 */
export function freeDisposableName(prefix: string, taken: ReadonlySet<string>): string | null {
  for (let n = 1; n <= MAX_CHOSEN; n++) {
    const name = `${prefix}disp${n}`;
    if (!isNewName(name, prefix)) return null;
    if (!taken.has(name)) return name;
  }
  return null;
}

export function disposableService(deps: WriteDeps): ServiceSpec<DisposableInput> {
  return {
    operation: 'disposable',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const p = parseMaybeNamed(payload, deps.settings().prefix, [], ['autoCleanup']);
      if (!p) return null;
      const ac = p.extra['autoCleanup'];
      if (ac !== undefined && typeof ac !== 'boolean') return null;
      return { name: p.name, label: p.label, netvm: p.netvm, dvmt: argument, autoCleanup: ac ?? true };
    },
    targets: (i) => [{ name: i.dvmt, tier: 'full' }],
    async handle(ctx) {
      const { input, qubesd, snapshot, principal } = ctx;
      const settings = deps.settings();
      const source = ctx.targets[0];
      if (!source) throw new Error('no target');
      if (input.name !== null) requireFreeName(snapshot, input.name);
      const isDvmt = (await qubesd.property(source.name, 'template_for_dispvms').catch(() => null))?.value === 'True';
      // Qubes' disposable templates: AppVMs and StandaloneVMs with template_for_dispvms
      if ((source.klass !== 'AppVM' && source.klass !== 'StandaloneVM') || !isDvmt) {
        throw new ActionableError('not_a_disposable_template', 'the named qube is not a disposable template');
      }
      const netvm = await inheritedNetvm(qubesd, snapshot, settings.egress, source.name, input.netvm);
      const defaultDispvm = await inheritedDefaultDispvm(qubesd, snapshot, source.name);
      const label = input.label ?? (await qubesd.property(source.name, 'label')).value;
      const name = await giveBirth(
        { qubesd, principal, settings, deps },
        {
          source,
          keepPropagating: false,
          netvm,
          defaultDispvm,
          inheritsFromSource: true,
          estimate: { total: 0, privateSize: 0 },
          name: input.name ?? ((taken) => freeDisposableName(settings.prefix, taken)),
          async make(name) {
            await qubesd.call('admin.vm.Create.DispVM', 'dom0', source.name, `name=${name} label=${label}`);
          },
          async configure(n) {
            await qubesd.call('admin.vm.property.Set', n, 'auto_cleanup', input.autoCleanup ? 'True' : 'False');
          },
        },
      );
      return { name, klass: 'DispVM', template: source.name, auto_cleanup: input.autoCleanup };
    },
  };
}

/**
 * qmcp.CreateDisposable+DVMT: a named disposable from a visible disposable
 * template, auto-cleanup (removed by Qubes at its first shutdown) unless the
 * agent asks for a persistent one.
 */
import { isQubeName } from '../../shared/names.js';
import { giveBirth } from '../create/birth.js';
import type { WriteDeps } from '../create/deps.js';
import { parseNewQube } from '../create/input.js';
import type { NewQubeInput } from '../create/input.js';
import { inheritedDefaultDispvm, inheritedNetvm, requireFreeName } from '../create/source.js';
import { ActionableError } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

export interface DisposableInput extends NewQubeInput {
  readonly dvmt: string;
  readonly autoCleanup: boolean;
}

export function disposableService(deps: WriteDeps): ServiceSpec<DisposableInput> {
  return {
    operation: 'disposable',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const p = parseNewQube(payload, deps.settings().prefix, [], ['autoCleanup']);
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
      requireFreeName(snapshot, input.name);
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
          name: input.name,
          async make() {
            await qubesd.call('admin.vm.Create.DispVM', 'dom0', source.name, `name=${input.name} label=${label}`);
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

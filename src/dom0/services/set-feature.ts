/**
 * qmcp.SetFeature+QUBE: a default-deny allowlist of features the operator
 * may extend; never `internal` nor the lease dom0 sets; a value naming a qube must name a visible
 * one. Echoes the value read back.
 */
import { isQubeName } from '../../shared/names.js';
import type { WriteDeps } from '../create/deps.js';
import { checkFeatureValue, namesAQube } from '../create/features.js';
import { jsonObject } from '../create/input.js';
import { ServiceRefusal } from '../service/refusal.js';
import { RESERVED_FEATURES } from '../../shared/model/lease.js';
import type { ServiceSpec } from '../service/run.js';

export interface SetFeatureInput {
  readonly qube: string;
  readonly feature: string;
  readonly value: string;
}

const FEATURE = /^[a-zA-Z0-9_.-]{1,64}$/;

export function setFeatureService(deps: WriteDeps): ServiceSpec<SetFeatureInput> {
  return {
    operation: 'feature.set',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const o = jsonObject(payload, ['name', 'value'], []);
      if (!o || typeof o['name'] !== 'string' || typeof o['value'] !== 'string') return null;
      if (!FEATURE.test(o['name']) || RESERVED_FEATURES.includes(o['name'])) return null;
      return { qube: argument, feature: o['name'], value: o['value'] };
    },
    targets: (i) => [{ name: i.qube, tier: 'full' }],
    reads: 'named',
    refers: (i) => (namesAQube(i.feature) && i.value !== '' ? [i.value] : []),
    keys: (i) => [i.feature],
    async handle(ctx) {
      const { input, qubesd, snapshot } = ctx;
      const why = checkFeatureValue(snapshot, deps.settings().features, input.feature, input.value);
      if (why !== null) throw new ServiceRefusal(why);
      await qubesd.call('admin.vm.feature.Set', input.qube, input.feature, input.value);
      return { name: input.feature, value: await qubesd.call('admin.vm.feature.Get', input.qube, input.feature) };
    },
  };
}

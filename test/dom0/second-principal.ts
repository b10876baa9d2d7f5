/** A second principal for the first's simulated host (services-read/helpers.ts): its qube, a qube of its world, a sink, its settings. */
import type { Fleet } from '../../src/sim/fleet.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { GiB } from '../services-read/helpers.js';

export const B = 'ctl-b';

export const B_QUBES: Fleet['qubes'] = [
  { name: B, klass: 'AppVM', template: 'tpl', label: 'purple', properties: { netvm: null } },
  { name: 'b-runner', klass: 'AppVM', template: 'tpl', label: 'yellow', tags: ['b-managed', 'b-exec'] },
  { name: 'b-dump', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['b-dump'] },
];

export const B_SETTINGS = {
  principal: B,
  mode: 'least-privilege',
  namePrefix: 'b-',
  tags: { umbrella: 'b-managed', sink: 'b-dump', exec: 'b-exec', net: 'b-net', full: 'b-full' },
  poolCapBytes: 40 * GiB,
  gate: OPEN_GATE,
};

/** The built-in demo fleet (SPEC §7): two agents' worlds beside an operator's own qubes. */
import { parseSettings } from '../shared/model/index.js';
import { DEMO_SECOND, DEMO_SETTINGS } from './demo-settings.js';
import type { Fleet, FleetQube, FleetValue } from './fleet.js';

/** The operator's template, which neither agent can change. */
const OPERATOR_TEMPLATE = 'debian-12-xfce';

/** A qube an agent starts with, at a tier; without one it is read-only and runs on the operator's template. */
interface Box {
  readonly name: string;
  readonly tier?: 'exec' | 'net' | 'full';
}

/** One agent's world: its template, listed among the templates, and its other qubes. */
interface World {
  readonly template: FleetQube;
  readonly qubes: FleetQube[];
}

/**
 * The world of the principal SETTINGS describe, named by its prefix, tags and
 * egress qube: its principal qube, egress, a disposable template its qubes
 * default to (DVM), BOXES and a sink. Read-only qubes run on the operator's
 * template, not on the agent's own (doctor reports that).
 */
function world(settings: Record<string, unknown>, dvm: boolean, boxes: readonly Box[]): World {
  const { principal, namePrefix: prefix, egressQube, tags } = parseSettings(settings).settings;
  const template = `${prefix}debian-tpl`;
  const egress = egressQube ?? `${prefix}egress`;
  const dispvm: Record<string, FleetValue> = dvm ? { default_dispvm: `${prefix}dvm` } : {};
  const box = ({ name, tier }: Box): FleetQube =>
    tier === undefined
      ? { name, klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'yellow', tags: [tags.umbrella], properties: { netvm: null, ...dispvm } }
      : {
          name,
          klass: 'AppVM',
          template,
          label: tier === 'exec' ? 'yellow' : 'orange',
          tags: [tags.umbrella, tags[tier]],
          properties: { netvm: tier === 'exec' ? null : egress, ...dispvm },
        };
  return {
    template: { name: template, klass: 'TemplateVM', label: 'black', tags: [tags.umbrella, tags.full] },
    qubes: [
      { name: principal, klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'purple', properties: { netvm: null } },
      { name: egress, klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'orange', tags: [tags.umbrella], properties: { provides_network: true, netvm: 'sys-firewall' } },
      ...(dvm
        ? [{ name: `${prefix}dvm`, klass: 'AppVM' as const, template, label: 'orange', tags: [tags.umbrella, tags.full], properties: { template_for_dispvms: true, netvm: egress, ...dispvm } }]
        : []),
      ...boxes.map(box),
      { name: `${prefix}dump`, klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'gray', tags: [tags.sink], properties: { netvm: null } },
    ],
  };
}

/** The first agent's world (demo-settings.ts): a disposable template and a qube at every tier. */
function firstWorld(): World {
  return world(DEMO_SETTINGS, true, [
    { name: 'ai-sandbox' },
    { name: 'ai-exec-box', tier: 'exec' },
    { name: 'ai-net-box', tier: 'net' },
    { name: 'ai-full-box', tier: 'full' },
  ]);
}

/** The second agent's world, a pentest agent's: one exec qube. */
function secondWorld(): World {
  return world(DEMO_SECOND, false, [{ name: 'pt-box', tier: 'exec' }]);
}

/** The second agent's qubes; the qubesd recording was made on the fleet without them. */
export const DEMO_SECOND_QUBES: readonly string[] = names(secondWorld());

function names(w: World): string[] {
  return [w.template, ...w.qubes].map((q) => q.name);
}

export function demoFleet(): Fleet {
  const first = firstWorld();
  const second = secondWorld();
  return {
    properties: {
      default_netvm: 'sys-firewall',
      default_template: OPERATOR_TEMPLATE,
      default_dispvm: 'default-dvm',
      updatevm: 'sys-firewall',
      clockvm: 'sys-net',
    },
    qubes: [
      // templates: the operator's (untagged) and the first agent's
      { name: OPERATOR_TEMPLATE, klass: 'TemplateVM', label: 'black' },
      { name: 'fedora-41-xfce', klass: 'TemplateVM', label: 'black' },
      first.template,
      // network
      {
        name: 'sys-net',
        klass: 'AppVM',
        template: OPERATOR_TEMPLATE,
        label: 'red',
        properties: { provides_network: true, netvm: null, autostart: true },
      },
      {
        name: 'sys-firewall',
        klass: 'AppVM',
        template: OPERATOR_TEMPLATE,
        label: 'green',
        properties: { provides_network: true, netvm: 'sys-net', autostart: true },
      },
      ...first.qubes,
      second.template,
      ...second.qubes,
      // the operator's own qubes, never perceived by either agent
      {
        name: 'default-dvm',
        klass: 'AppVM',
        template: OPERATOR_TEMPLATE,
        label: 'red',
        properties: { template_for_dispvms: true },
      },
      { name: 'vault', klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'black', properties: { netvm: null } },
      { name: 'personal', klass: 'AppVM', template: 'fedora-41-xfce', label: 'yellow' },
      { name: 'work', klass: 'AppVM', template: OPERATOR_TEMPLATE, label: 'blue' },
    ],
    devices: {
      block: { 'sys-net': [{ port: 'sda', devid: 'SanDisk_Cruzer_4C530001', description: 'USB stick', interfaces: 'b******' }] },
      mic: { dom0: [{ port: 'mic', devid: 'dom0-mic', description: 'Microphone', interfaces: 'm******' }] },
    },
  };
}

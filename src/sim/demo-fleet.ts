/** The built-in demo fleet (SPEC §7): two agents' worlds beside an operator's own qubes. */
import type { Fleet } from './fleet.js';

/** The second agent's qubes (demo-settings.ts); the qubesd recording was made on the fleet without them. */
export const DEMO_SECOND_QUBES: readonly string[] = ['pt-debian-tpl', 'mcp-pentest', 'pt-egress', 'pt-box', 'pt-dump'];

export function demoFleet(): Fleet {
  return {
    properties: {
      default_netvm: 'sys-firewall',
      default_template: 'debian-12-xfce',
      default_dispvm: 'default-dvm',
      updatevm: 'sys-firewall',
      clockvm: 'sys-net',
    },
    qubes: [
      // templates: the operator's (untagged) and one for the agent
      { name: 'debian-12-xfce', klass: 'TemplateVM', label: 'black' },
      { name: 'fedora-41-xfce', klass: 'TemplateVM', label: 'black' },
      { name: 'ai-debian-tpl', klass: 'TemplateVM', label: 'black', tags: ['ai-managed', 'ai-full'] },
      // network
      {
        name: 'sys-net',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'red',
        properties: { provides_network: true, netvm: null, autostart: true },
      },
      {
        name: 'sys-firewall',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'green',
        properties: { provides_network: true, netvm: 'sys-net', autostart: true },
      },
      // the agent's side; its read-only qubes run on the operator's template, which
      // the agent cannot change, not on the agent's own (doctor reports that)
      {
        name: 'mcp-control',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'purple',
        properties: { netvm: null },
      },
      {
        name: 'ai-egress',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'orange',
        tags: ['ai-managed'],
        properties: { provides_network: true, netvm: 'sys-firewall' },
      },
      {
        name: 'ai-dvm',
        klass: 'AppVM',
        template: 'ai-debian-tpl',
        label: 'orange',
        tags: ['ai-managed', 'ai-full'],
        properties: { template_for_dispvms: true, netvm: 'ai-egress', default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-sandbox',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'yellow',
        tags: ['ai-managed'],
        properties: { netvm: null, default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-exec-box',
        klass: 'AppVM',
        template: 'ai-debian-tpl',
        label: 'yellow',
        tags: ['ai-managed', 'ai-exec'],
        properties: { netvm: null, default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-net-box',
        klass: 'AppVM',
        template: 'ai-debian-tpl',
        label: 'orange',
        tags: ['ai-managed', 'ai-net'],
        properties: { netvm: 'ai-egress', default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-full-box',
        klass: 'AppVM',
        template: 'ai-debian-tpl',
        label: 'orange',
        tags: ['ai-managed', 'ai-full'],
        properties: { netvm: 'ai-egress', default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-dump',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'gray',
        tags: ['ai-dump'],
        properties: { netvm: null },
      },
      // the second agent's side (demo-settings.ts): its own principal qube, egress and umbrella
      { name: 'pt-debian-tpl', klass: 'TemplateVM', label: 'black', tags: ['pt-managed', 'pt-full'] },
      {
        name: 'mcp-pentest',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'purple',
        properties: { netvm: null },
      },
      {
        name: 'pt-egress',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'orange',
        tags: ['pt-managed'],
        properties: { provides_network: true, netvm: 'sys-firewall' },
      },
      {
        name: 'pt-box',
        klass: 'AppVM',
        template: 'pt-debian-tpl',
        label: 'yellow',
        tags: ['pt-managed', 'pt-exec'],
        properties: { netvm: null },
      },
      {
        name: 'pt-dump',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'gray',
        tags: ['pt-dump'],
        properties: { netvm: null },
      },
      // the operator's own qubes, never perceived by either agent
      {
        name: 'default-dvm',
        klass: 'AppVM',
        template: 'debian-12-xfce',
        label: 'red',
        properties: { template_for_dispvms: true },
      },
      { name: 'vault', klass: 'AppVM', template: 'debian-12-xfce', label: 'black', properties: { netvm: null } },
      { name: 'personal', klass: 'AppVM', template: 'fedora-41-xfce', label: 'yellow' },
      { name: 'work', klass: 'AppVM', template: 'debian-12-xfce', label: 'blue' },
    ],
    devices: {
      block: { 'sys-net': [{ port: 'sda', devid: 'SanDisk_Cruzer_4C530001', description: 'USB stick', interfaces: 'b******' }] },
      mic: { dom0: [{ port: 'mic', devid: 'dom0-mic', description: 'Microphone', interfaces: 'm******' }] },
    },
  };
}

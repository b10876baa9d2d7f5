/**
 * The raw-qrexec calls the boundary's invariants expect refused, shared by
 * test/boundary/invariant-cases.ts and scripts/qubesd-check/boundary.mjs
 * (which asks the same of the real qubesd's view of the qubes).
 */
import { HYBRID, OUTSIDE, PRINCIPAL, SINK, TIER_QUBES, UPDATE_QUBE } from './helpers.js';

/** (c) Targets and services no sandbox or sink may call. */
export const SANDBOX_DENIED: readonly (readonly [string, string])[] = [
  [TIER_QUBES.full, 'qubes.OpenInVM'],
  ['@dispvm', 'qubes.OpenInVM'],
  ['@dispvm:ai-dvm', 'qubes.OpenInVM'],
  [OUTSIDE, 'qubes.OpenURL'],
  ['@dispvm', 'qubes.OpenURL'],
  [TIER_QUBES.full, 'qubes.VMShell'],
  ['dom0', 'qubes.VMShell'],
  ['@dispvm', 'qubes.VMShell'],
  ['@dispvm:ai-dvm', 'qmcp.Exec'],
  [OUTSIDE, 'qubes.Filecopy'],
  [PRINCIPAL, 'qubes.Filecopy'],
  ['@dispvm', 'qubes.Filecopy'],
  // a forward reaches exec-capable sandbox qubes only: never outside, the principal, dom0, a read-tier qube or a sink
  [OUTSIDE, 'qubes.ConnectTCP+8080'],
  [PRINCIPAL, 'qubes.ConnectTCP+8080'],
  [UPDATE_QUBE, 'qubes.ConnectTCP+8080'],
  ['dom0', 'qubes.ConnectTCP+8080'],
  ['@adminvm', 'qubes.ConnectTCP+8080'],
  ['@default', 'qubes.ConnectTCP+8080'],
  ['@dispvm', 'qubes.ConnectTCP+8080'],
  [TIER_QUBES.read, 'qubes.ConnectTCP+8080'],
  [SINK, 'qubes.ConnectTCP+8080'],
  [HYBRID, 'qubes.ConnectTCP+22'],
  [UPDATE_QUBE, 'qubes.UpdatesProxy'],
  ['@default', 'qubes.UpdatesProxy'],
  ['dom0', 'admin.vm.List'],
  [TIER_QUBES.full, 'admin.vm.Kill'],
  [TIER_QUBES.full, 'admin.vm.tag.Set+ai-full'],
  ['@adminvm', 'qmcp.List'],
  ['@adminvm', 'qmcp.SetProperty+ai-t-full'],
  ['dom0', 'admin.vm.property.Set+netvm'],
];

/** (c) The qubes those calls come from. */
export const SANDBOX_SOURCES: readonly string[] = [...Object.values(TIER_QUBES), SINK, HYBRID];

/** (d) Native tag, property, feature and device calls the principal may not make on any qube (compat mode). */
export const NATIVE_DENIED: readonly string[] = [
  'admin.vm.tag.Set+ai-full',
  'admin.vm.tag.Remove+ai-managed',
  'admin.vm.tag.Get+ai-full',
  'admin.vm.tag.List',
  'admin.vm.property.Set+netvm',
  'admin.vm.property.Get+netvm',
  'admin.vm.property.Reset+netvm',
  'admin.vm.feature.Set+internal',
  'admin.vm.feature.Remove+internal',
  'admin.vm.device.block.Attach+ai-t-full+xvdi',
  'admin.vm.device.pci.Attach+ai-t-full+00_1f.0',
];

/** (d) The qubes the principal tries them on. */
export const NATIVE_TARGETS: readonly string[] = [...Object.values(TIER_QUBES), OUTSIDE, '@adminvm'];

/** (e) admin.* calls aimed at dom0 or @adminvm, denied to the principal and to sandboxes (compat mode). */
export const DOM0_ADMIN: readonly string[] = [
  'admin.vm.List',
  'admin.vm.CurrentState',
  'admin.vm.Kill',
  'admin.vm.Shutdown',
  'admin.property.Get+default_netvm',
  'admin.Events',
  'admin.vm.Create.AppVM+tpl',
];

/** (e) Who tries them. */
export const DOM0_ADMIN_SOURCES: readonly string[] = [PRINCIPAL, TIER_QUBES.full, TIER_QUBES.read];

/** (b) Device attaches through the router that refuse as an absent frontend does: [frontend, payload]. */
export const DEVICE_REFUSALS: readonly (readonly [string, object])[] = [
  [OUTSIDE, { class: 'block', backend: TIER_QUBES.full, port: 'xvdi' }],
  [TIER_QUBES.net, { class: 'block', backend: TIER_QUBES.full, port: 'xvdi' }],
  [TIER_QUBES.full, { class: 'block', backend: OUTSIDE, port: 'xvdi' }],
  [TIER_QUBES.full, { class: 'block', backend: 'ai-nosuch', port: 'xvdi' }],
  [TIER_QUBES.full, { class: 'block', backend: TIER_QUBES.exec, port: 'xvdi' }],
  [TIER_QUBES.full, { class: 'pci', backend: HYBRID, port: '00_1f.0' }],
  [TIER_QUBES.full, { class: 'block', backend: HYBRID, port: 'xvdi', options: { persistent: true } }],
];

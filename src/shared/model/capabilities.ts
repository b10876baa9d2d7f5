/**
 * The capability model: one row per operation the agent can ask for. The
 * qrexec policy, the dom0 services' tier checks, the MCP annotations and
 * docs/capabilities.md are all derived from this table.
 */

/** The capability classes of SPEC §3. */
export type CapabilityClass = 'see' | 'exec' | 'net' | 'full' | 'sink';

/** The ladder read < exec < net < full; `sink` stands apart from it. */
export type Tier = 'read' | 'exec' | 'net' | 'full';

export const TIERS: readonly Tier[] = ['read', 'exec', 'net', 'full'];

/** Who decides: the qrexec policy alone, or a dom0 service's code. */
export type Layer = 'policy' | 'service';

/** Where the principal's call goes. */
export type TargetForm =
  /** a sandbox qube by `@tag:`, redirected to qubesd with `target=dom0` */
  | 'admin-api'
  /** a sandbox qube by `@tag:`, run inside it as root */
  | 'in-qube'
  /** `@adminvm`, a qmcp dom0 service */
  | 'dom0-service';

export interface Operation {
  readonly id: string;
  readonly description: string;
  readonly capability: CapabilityClass;
  /** The lowest tier of the qube acted on (the source qube, for copies and creates). */
  readonly tier: Tier;
  readonly layer: Layer;
  readonly service: string;
  readonly target: TargetForm;
  /** Whether the qrexec argument names the qube acted on (`qmcp.Start+ai-work`). */
  readonly argumentIsQube: boolean;
  readonly readOnly: boolean;
  /** What the operation can lose that the agent cannot get back itself; null when nothing. */
  readonly loses: string | null;
  /** How the operation can widen what a qube, its data or a device is exposed to; null when it cannot. */
  readonly widens: string | null;
  /** Derived, never written by hand: it can lose something or widen exposure (the MCP destructiveHint). */
  readonly destructive: boolean;
  readonly idempotent: boolean;
  /** Only running a command reaches outside the sandbox. */
  readonly openWorld: boolean;
  /**
   * Whether what it can lose lies only inside the qube's own files, where an
   * agent at its tier already runs as root (a command, a file write).
   */
  readonly contained: boolean;
  /**
   * The action gate's default (docs/action-gate.md), derived, never written
   * by hand: `ask` when it can widen exposure or lose more than the qube's own
   * files, `allow` otherwise; null when the gate never applies (reads).
   */
  readonly gate: GateAnswer | null;
  /** For dom0 services: why this needs code rather than a policy line. */
  readonly whyCode?: string;
}

/** How the action gate treats an operation: run it, or wait for the operator's approval in dom0. */
export type GateAnswer = 'allow' | 'ask';

type Effects = Pick<Operation, 'readOnly' | 'loses' | 'widens' | 'destructive' | 'idempotent' | 'openWorld' | 'contained' | 'gate'>;
type Kind = Pick<Operation, 'readOnly' | 'idempotent'>;
const READ: Kind = { readOnly: true, idempotent: true };
const ADD: Kind = { readOnly: false, idempotent: false };
const SET: Kind = { readOnly: false, idempotent: true };

/** The effect columns; destructive and the gate's default follow from what the operation can lose or widen. */
export function effects(kind: Kind, loses: string | null, widens: string | null, openWorld = false, contained = false): Effects {
  const destructive = loses !== null || widens !== null;
  const ask = widens !== null || (loses !== null && !contained);
  return { ...kind, loses, widens, destructive, openWorld, contained, gate: kind.readOnly ? null : ask ? 'ask' : 'allow' };
}

const READS = effects(READ, null, null);

function adminApi(id: string, description: string, capability: CapabilityClass, tier: Tier, service: string, fx: Effects): Operation {
  return { id, description, capability, tier, layer: 'policy', service, target: 'admin-api', argumentIsQube: false, ...fx };
}

function inQube(id: string, description: string, service: string, fx: Effects): Operation {
  return { id, description, capability: 'exec', tier: 'exec', layer: 'policy', service, target: 'in-qube', argumentIsQube: false, ...fx };
}

function dom0(
  id: string,
  description: string,
  capability: CapabilityClass,
  tier: Tier,
  service: string,
  argumentIsQube: boolean,
  fx: Effects,
  whyCode: string,
): Operation {
  return { id, description, capability, tier, layer: 'service', service, target: 'dom0-service', argumentIsQube, ...fx, whyCode };
}

/** Every operation, in the order the docs list them. */
export const OPERATIONS: readonly Operation[] = [
  dom0('list', 'list the visible qubes with their power state', 'see', 'read', 'qmcp.List', false, READS,
    'admin.vm.List always includes dom0 and every outside qube; the service filters by the umbrella tag'),
  dom0('info', 'read allowlisted, redacted properties and filtered tags of a qube', 'see', 'read', 'qmcp.Info', true, READS,
    'native property reads are unredacted and would name outside qubes; tier tags must stay unreadable'),
  adminApi('state', 'read the power state of a qube', 'see', 'read', 'admin.vm.CurrentState', READS),
  adminApi('firewall.get', 'read the firewall rules of a qube', 'see', 'read', 'admin.vm.firewall.Get', READS),
  dom0('device.list', 'list block, usb and mic devices, redacted', 'see', 'read', 'qmcp.DeviceList', false, READS,
    'native device listings name outside backends and carry free-text descriptions'),
  dom0('pool.figures', 'read the agent pool usage against its cap', 'see', 'read', 'qmcp.PoolFigures', false, READS,
    'pool figures must count only umbrella qubes and reveal no outside volumes'),
  dom0('tombstone.list', 'list the qubes the agent removed that are kept as tombstones: name, when, class, bytes held', 'see', 'read', 'qmcp.TombstoneList', false, READS,
    "tombstones are hidden from every listing; only the principal's own may be shown, never the operator's or another principal's"),
  dom0('events', 'receive events about visible qubes', 'see', 'read', 'qmcp.Events', false, READS,
    'admin.Events passes global events and fields naming outside qubes'),
  inQube('run', "run a command in a qube, as its default user or as root", 'qmcp.Exec',
    effects(ADD, 'anything in the qube: the command can run as root', null, true, true)),
  inQube('file.write', 'write a file into a qube', 'qmcp.WriteFile',
    effects(SET, 'the content the file had', null, false, true)),
  inQube('file.read', 'read a file out of a qube', 'qmcp.ReadFile', READS),
  inQube('dir.list', 'list a directory in a qube', 'qmcp.ListDir', READS),
  inQube('file.stat', 'read the type, size, mode and time of a path in a qube', 'qmcp.Stat', READS),
  inQube('job.start', 'start a command in a qube as a background job, as its default user or as root', 'qmcp.JobStart',
    effects(ADD, 'anything in the qube: the command can run as root', null, true, true)),
  inQube('job.output', "read a background job's output by byte offset", 'qmcp.JobOutput', READS),
  inQube('job.wait', 'wait, up to a timeout, for a background job to end', 'qmcp.JobWait', READS),
  inQube('job.kill', "signal a background job's process group", 'qmcp.JobKill',
    effects(SET, "what the job's processes hold in memory", null, false, true)),
  inQube('job.list', 'list the background jobs of a qube', 'qmcp.JobList', READS),
  inQube('copy', 'copy files from a qube to another exec-capable qube or to a sink', 'qmcp.CopyTo',
    effects(ADD, null, "the source's files reach the target, which may have network the source lacks, or be a sink the operator opens")),
  inQube('port.forward', "forward a TCP port of a qube's localhost to a port on another exec-capable qube's localhost (Qubes' qubes.ConnectTCP), as a background job", 'qmcp.PortForward',
    effects(ADD, null, "the target's port becomes reachable from the source's processes, and the source may have network the target lacks")),
  dom0('start', 'start a halted qube', 'exec', 'exec', 'qmcp.Start', true,
    // it runs with the settings it already has
    effects(SET, null, null),
    'a qube may start only when complete (netvm, tags and guard checked), which policy cannot see'),
  dom0('renew', "renew a qube's lease from now, up to the operator's maximum", 'exec', 'exec', 'qmcp.Renew', true,
    // the qube lives longer; nothing in it changes
    effects(SET, null, null),
    'the expiry is a feature only dom0 writes, bounded by the operator\'s maximum, under the lock the reaper\'s expiry takes'),
  dom0('shutdown', 'shut a qube down', 'exec', 'exec', 'qmcp.Shutdown', true,
    effects(SET, 'what its programs hold in memory; an auto-cleanup disposable is removed with all its data', null),
    "the action gate shows the operator which qube stops (its class, size and state); Qubes' ask dialog does not"),
  dom0('kill', 'kill a qube at once', 'exec', 'exec', 'qmcp.Kill', true,
    effects(SET, 'unsaved state of everything running in it, with no clean shutdown; an auto-cleanup disposable is removed with all its data', null),
    "the action gate shows the operator which qube is killed (its class, size and state); Qubes' ask dialog does not"),
  dom0('firewall.set', 'replace the firewall rules of a qube', 'net', 'net', 'qmcp.FirewallSet', true,
    effects(SET, 'the rules it replaces', 'accept rules open destinations the old rules closed'),
    "the action gate shows the operator the qube and its rules before -> after as a diff; Qubes' ask dialog shows neither"),
  adminApi('firewall.reload', 'reload the firewall of a qube', 'net', 'net', 'admin.vm.firewall.Reload',
    // the same rules again; only host names are resolved anew
    effects(SET, null, null)),
  adminApi('pause', 'pause a running qube', 'full', 'full', 'admin.vm.Pause',
    // everything stays in memory until unpause
    effects(SET, null, null)),
  adminApi('unpause', 'unpause a paused qube', 'full', 'full', 'admin.vm.Unpause', effects(SET, null, null)),
  dom0('remove', 'remove a qube (kept as a tombstone for the retention period)', 'full', 'full', 'qmcp.Remove', true,
    effects(SET, 'the qube and its data once the retention period passes (until then the agent or the operator can restore it)', null),
    'removal turns the qube into a tombstone the agent or the operator can restore'),
  dom0('tombstone.restore', 'restore one of its own tombstones, within the budget, at no more than the tier a new qube gets', 'full', 'full', 'qmcp.TombstoneRestore', true,
    // the qube comes back as it was removed, counted in the budget all along
    effects(ADD, null, null),
    "a tombstone is outside the umbrella: only the principal's own comes back, within the budget, through the operator's restore path"),
  dom0('checkpoint', "mark a halted qube's private volume so that it can be reverted to this state", 'full', 'full', 'qmcp.Checkpoint', true,
    // one more revision kept, counted in the budget; nothing in the qube changes
    effects(SET, null, null),
    'qubesd makes a revision only at a stop: the service records which one will hold the checkpoint, keeps enough of them and counts them in the budget'),
  dom0('revert', "bring a halted qube's private volume back to its checkpoint", 'full', 'full', 'qmcp.Revert', true,
    effects(SET, 'what the private volume gained since the checkpoint (qubesd keeps it as a revision only the operator reaches)', null, false, true),
    'the revision to revert to follows from the checkpoint dom0 recorded; the agent reaches no volume call'),
  dom0('property.set', 'set an allowlisted property', 'full', 'full', 'qmcp.SetProperty', true,
    effects(SET, 'the old value; netvm can only go to none, so the agent cannot give the network back, and include_in_backups false drops the qube from backups', null),
    'values are checked: netvm only to none, default_dispvm only to a visible disposable template'),
  dom0('feature.set', 'set an allowlisted feature', 'full', 'full', 'qmcp.SetFeature', true,
    effects(SET, 'the old value, which the agent cannot read', 'features switch services of the qube on, which can open what it exposes'),
    'features are a default-deny allowlist; qube-naming values must be visible'),
  dom0('create', 'create an AppVM from a visible template', 'full', 'full', 'qmcp.Create', false,
    // a new, empty qube, counted against the pool cap
    effects(ADD, null, null),
    'creation names, tags, caps and verifies the new qube atomically'),
  dom0('create.disptemplate', 'create a disposable template', 'full', 'full', 'qmcp.CreateDispTemplate', false,
    effects(ADD, null, null),
    'as create, with template_for_dispvms set before the umbrella tag'),
  dom0('disposable', 'create a disposable from a visible disposable template', 'full', 'full', 'qmcp.CreateDisposable', true,
    // a copy of the template's data at the template's tier
    effects(ADD, null, null),
    'disposables inherit every template tag; the service strips and re-applies them'),
  dom0('clone', 'clone a visible qube', 'full', 'full', 'qmcp.Clone', true,
    // a copy of the source at its tier or lower
    effects(ADD, null, null),
    'clones copy tags and device assignments; the service strips them and caps the tier'),
  dom0('device.attach', 'attach a device between two full-tier qubes', 'full', 'full', 'qmcp.DeviceAttach', true,
    effects(SET, null, "the device's data, or what its microphone hears, becomes readable in the frontend"),
    'both ends must be full tier and the options allowlisted, never persistent'),
  dom0('device.detach', 'detach a device between two full-tier qubes', 'full', 'full', 'qmcp.DeviceDetach', true,
    effects(SET, 'writes to a block device the frontend has not flushed', null),
    'both ends must be full tier'),
  dom0('plan.submit', 'submit a plan of steps for the operator to review, approve and run', 'see', 'read', 'qmcp.PlanSubmit', false,
    // submitting changes nothing on the machine; the gate does not apply, the operator approves the plan as a whole
    { ...effects(ADD, null, null), gate: null },
    'each step is checked for shape, scope and tier, the plan as a whole, and kept in dom0 for the operator'),
  dom0('plan.status', 'read the state and the step results of a plan the agent submitted', 'see', 'read', 'qmcp.PlanStatus', false, READS,
    'plans live in dom0, readable only by the principal that submitted them'),
];

/** One operation by id; throws for an unknown id (a programming error). */
export function operation(id: string, ops: readonly Operation[] = OPERATIONS): Operation {
  const op = ops.find((o) => o.id === id);
  if (op === undefined) throw new Error(`unknown operation ${id}`);
  return op;
}

/** The dom0 services, one per service name, with why each needs code. */
export function dom0Services(ops: readonly Operation[] = OPERATIONS): { service: string; operations: string[]; argumentIsQube: boolean; whyCode: string }[] {
  const out = new Map<string, { service: string; operations: string[]; argumentIsQube: boolean; whyCode: string }>();
  for (const op of ops) {
    if (op.target !== 'dom0-service') continue;
    const row = out.get(op.service);
    if (row) row.operations.push(op.id);
    else out.set(op.service, { service: op.service, operations: [op.id], argumentIsQube: op.argumentIsQube, whyCode: op.whyCode ?? '' });
  }
  return [...out.values()];
}

/** What the agent is never granted, with the policy lines or checks that hold it. */
export interface Escalation {
  readonly what: string;
  /** Admin API or other services the policy denies explicitly for it; empty when a dom0 check holds it. */
  readonly denies: readonly string[];
  readonly heldBy: string;
}

export const ESCALATIONS: readonly Escalation[] = [
  { what: 'adding or removing any tag', denies: ['admin.vm.tag.Set', 'admin.vm.tag.Remove', 'admin.vm.tag.Get', 'admin.vm.tag.List'], heldBy: 'policy' },
  { what: 'setting provides_network, template, or netvm other than none; renaming', denies: ['admin.vm.property.Set', 'admin.vm.property.Reset', 'admin.vm.property.Get', 'admin.vm.property.GetAll', 'admin.vm.property.List', 'admin.vm.property.Help', 'admin.vm.property.GetDefault'], heldBy: 'policy, and qmcp.SetProperty\'s allowlist' },
  { what: 'the internal feature and any feature outside the allowlist', denies: ['admin.vm.feature.Set', 'admin.vm.feature.Remove', 'admin.vm.feature.Get', 'admin.vm.feature.List', 'admin.vm.feature.CheckWithTemplate', 'admin.vm.feature.CheckWithNetvm', 'admin.vm.feature.CheckWithAdminVM', 'admin.vm.feature.CheckWithTemplateAndAdminVM'], heldBy: 'policy, and qmcp.SetFeature\'s allowlist' },
  { what: 'PCI devices and persistent or required assignments', denies: ['admin.vm.device.pci.Attach', 'admin.vm.device.pci.Assign', 'admin.vm.device.block.Attach', 'admin.vm.device.block.Assign', 'admin.vm.device.usb.Attach', 'admin.vm.device.usb.Assign', 'admin.vm.device.mic.Attach', 'admin.vm.device.mic.Assign', 'admin.vm.device.block.Detach', 'admin.vm.device.usb.Detach', 'admin.vm.device.mic.Detach', 'admin.vm.device.pci.Detach', 'admin.vm.device.block.Unassign', 'admin.vm.device.usb.Unassign', 'admin.vm.device.mic.Unassign', 'admin.vm.device.pci.Unassign', 'admin.vm.device.block.Available', 'admin.vm.device.usb.Available', 'admin.vm.device.mic.Available', 'admin.vm.device.pci.Available', 'admin.vm.device.block.Attached', 'admin.vm.device.usb.Attached', 'admin.vm.device.mic.Attached', 'admin.vm.device.pci.Attached', 'admin.vm.device.block.Assigned', 'admin.vm.device.usb.Assigned', 'admin.vm.device.mic.Assigned', 'admin.vm.device.pci.Assigned', 'admin.vm.device.block.Set.required', 'admin.vm.device.usb.Set.required', 'admin.vm.device.pci.Set.required', 'admin.deviceclass.List'], heldBy: 'policy, and qmcp.DeviceAttach (full tier both ends)' },
  { what: 'pools and volumes directly', denies: ['admin.pool.List', 'admin.pool.ListDrivers', 'admin.pool.Info', 'admin.pool.Add', 'admin.pool.Remove', 'admin.pool.Set.revisions_to_keep', 'admin.pool.UsageDetails', 'admin.pool.volume.List', 'admin.pool.volume.Info', 'admin.vm.volume.List', 'admin.vm.volume.Info', 'admin.vm.volume.ListSnapshots', 'admin.vm.volume.Revert', 'admin.vm.volume.Resize', 'admin.vm.volume.Import', 'admin.vm.volume.ImportWithSize', 'admin.vm.volume.Clear', 'admin.vm.volume.CloneFrom', 'admin.vm.volume.CloneTo', 'admin.vm.volume.Set.revisions_to_keep', 'admin.vm.volume.Set.rw', 'admin.vm.volume.Set.ephemeral'], heldBy: 'policy' },
  { what: 'creating, removing, starting or listing qubes natively (names outside the prefix, incomplete qubes, dom0 in lists)', denies: ['admin.vm.Create.AppVM', 'admin.vm.Create.TemplateVM', 'admin.vm.Create.StandaloneVM', 'admin.vm.Create.DispVM', 'admin.vm.CreateInPool.AppVM', 'admin.vm.CreateInPool.TemplateVM', 'admin.vm.CreateInPool.StandaloneVM', 'admin.vm.CreateInPool.DispVM', 'admin.vm.CreateDisposable', 'admin.vm.Remove', 'admin.vm.Start', 'admin.vm.List', 'admin.vm.Console', 'admin.vm.Stats', 'admin.vm.notes.Get', 'admin.vm.notes.Set'], heldBy: 'policy, and the dom0 create services' },
  { what: 'shutting down, killing or replacing the firewall of a qube natively (the operator would not see which qube, nor the rules)', denies: ['admin.vm.Shutdown', 'admin.vm.Kill', 'admin.vm.firewall.Set'], heldBy: 'policy, and the qmcp.Shutdown, qmcp.Kill and qmcp.FirewallSet services' },
  { what: 'global events and host-wide state', denies: ['admin.Events', 'admin.vm.Events', 'admin.property.Get', 'admin.property.GetAll', 'admin.property.GetDefault', 'admin.property.Help', 'admin.property.List', 'admin.property.Set', 'admin.property.Reset', 'admin.label.List', 'admin.label.Get', 'admin.label.Index', 'admin.label.Create', 'admin.label.Remove', 'admin.vmclass.List'], heldBy: 'policy' },
  { what: 'backups', denies: ['admin.backup.Execute', 'admin.backup.Info', 'admin.backup.Cancel'], heldBy: 'policy' },
  { what: 'policy administration', denies: ['policy.List', 'policy.Get', 'policy.Replace', 'policy.Remove', 'policy.GetFiles', 'policy.include.List', 'policy.include.Get', 'policy.include.Replace', 'policy.include.Remove'], heldBy: 'policy' },
  { what: 'any operation on a qube outside the umbrella, and dom0 itself', denies: [], heldBy: 'policy (tag-scoped allows, catch-all deny over @anyvm and @adminvm) and the dom0 services\' visibility check' },
];

/** A qrexec service every qube calls in the background, and what sandbox and sink qubes get of it. */
export interface BackgroundService {
  readonly service: string;
  readonly why: string;
  /**
   * `adminvm`: allowed to dom0; `egress`: redirected to the agent's egress qube;
   * `deny`: refused without a desktop notification, as every qube calls it routinely.
   */
  readonly to: 'adminvm' | 'egress' | 'deny';
}

export const BACKGROUND_SERVICES: readonly BackgroundService[] = [
  {
    service: 'qubes.NotifyUpdates',
    to: 'deny',
    why: "a qube reports pending updates; from a template-based qube dom0 marks the nearest updateable template up its chain, which may be the operator's, so sandbox and sink qubes may not",
  },
  { service: 'qubes.FeaturesRequest', to: 'adminvm', why: 'a qube reports its tools and services; dom0 extensions filter what is accepted' },
  { service: 'qubes.NotifyTools', to: 'adminvm', why: 'older templates report their tools this way' },
  { service: 'qubes.UpdatesProxy', to: 'egress', why: 'agent templates fetch packages through the agent egress qube, never the operator update qube' },
];

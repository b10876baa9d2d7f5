/**
 * The special-target forms the timing check times (SPEC §4.1): each names a
 * qube outside the umbrella, or a name of the same shape that exists
 * nowhere, in the attack fleet (verify/malformed/host.ts).
 */
import type { SystemInfo } from '../../src/shared/policy/index.js';
import { operation } from '../../src/shared/model/capabilities.js';
import { PRINCIPAL } from '../malformed/host.js';

/** Who calls, and a service the policy refuses them to any outside qube. */
export const SEATS: readonly (readonly [string, string])[] = [
  [PRINCIPAL, operation('run').service],
  ['ai-box', 'qubes.Filecopy'],
];

/** An outside disposable template: the target `@dispvm:NAME` reaches the rules with. */
const HIDDEN = 'ops-dvm';
const ABSENT = 'ops-dvx';

export interface NamedForm {
  readonly form: string;
  readonly outside: string;
  readonly absent: string;
}

/** A uuid of the same shape that no qube has. */
function otherUuid(uuid: string): string {
  return uuid.slice(0, -4) + (uuid.endsWith('0000') ? '1111' : '0000');
}

/** The forms that name a qube. */
export function namedForms(system: SystemInfo): NamedForm[] {
  const uuid = system.domains[HIDDEN]?.uuid;
  if (!uuid) throw new Error(`the fleet has no ${HIDDEN}`);
  return [
    { form: 'name', outside: HIDDEN, absent: ABSENT },
    { form: 'uuid:', outside: `uuid:${uuid}`, absent: `uuid:${otherUuid(uuid)}` },
    { form: '@dispvm:NAME', outside: `@dispvm:${HIDDEN}`, absent: `@dispvm:${ABSENT}` },
    { form: '@dispvm:uuid:', outside: `@dispvm:uuid:${uuid}`, absent: `@dispvm:uuid:${otherUuid(uuid)}` },
  ];
}

/**
 * Two names of the same shape that both exist nowhere: they take the same
 * steps, so their |t| is what the method reads where there is no difference
 * to find (a control for the named forms).
 */
export const CONTROL: readonly [string, string] = [ABSENT, 'ops-dvy'];

export interface UnnamedForm {
  readonly form: string;
  readonly target: string;
  /** The system info without one outside qube. */
  readonly without: SystemInfo;
}

/** The forms that name no qube: what can differ is the outside world itself. */
export function unnamedForms(system: SystemInfo): UnnamedForm[] {
  const without: SystemInfo = { domains: Object.fromEntries(Object.entries(system.domains).filter(([name]) => name !== 'vault')) };
  if (Object.keys(without.domains).length === Object.keys(system.domains).length) throw new Error('the fleet has no vault');
  return [
    { form: '@default', target: '@default', without },
    { form: '@dispvm', target: '@dispvm', without },
  ];
}

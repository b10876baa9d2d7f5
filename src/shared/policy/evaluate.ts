import type { AskAction, AllowAction, Rule } from './rule.js';
import type { DomainIndex } from './system.js';
import { indexSystem, isDom0, lookup, MissingDomain, uuidToName } from './system.js';
import type { Token } from './tokens.js';
import { dispvmTemplateOf, expandToken, parseToken, TokenError, tokenMatches } from './tokens.js';
import type { Policy, PolicyRequest, Resolution, RuleLocation, SystemInfo } from './types.js';
import { QmcpError } from '../errors.js';

/** A denial raised while evaluating; becomes a deny resolution. */
class PolicyDenial extends QmcpError {
  readonly code = 'ERR_QMCP_POLICY_DENIED';

  constructor(
    readonly reason: string,
    readonly notify = true,
    readonly rule: RuleLocation | null = null,
  ) {
    super(reason);
  }
}

interface Call {
  service: string;
  /** With its leading `+`. */
  argument: string;
  source: string;
  /** The verified intended target. */
  target: Token;
  index: DomainIndex;
}

function where(rule: Rule): string {
  return `${rule.origin.file}:${rule.origin.line}`;
}

function locationOf(rule: Rule): RuleLocation {
  return { file: rule.origin.file, line: rule.origin.line };
}

/** What a deny rule, or no rule at all, answers; null for a rule that allows or asks. */
function denialBy(rule: Rule | undefined): { reason: string; notify: boolean; rule: RuleLocation | null } | null {
  if (rule === undefined) return { reason: 'no matching rule found', notify: true, rule: null };
  if (rule.action.kind !== 'deny') return null;
  return { reason: `denied by policy ${where(rule)}`, notify: rule.action.notify, rule: locationOf(rule) };
}

/** Why qrexec refuses a target before any rule, or null: `@dispvm:X` needs X to be a disposable template. */
function unfitIntended(token: Token, index: DomainIndex): string | null {
  if (token.kind !== 'dispvmTemplate') return null;
  const domain = index.get(token.value);
  return domain?.template_for_dispvms ? null : `not a template for dispvm: ${token.value}`;
}

/** A name that does not exist becomes `@default`. */
function defaulted(token: Token, index: DomainIndex): Token {
  return token.kind === 'name' && !index.has(token.text) ? { kind: 'default', text: '@default', value: '@default' } : token;
}

/** A target checked as qrexec checks what the caller asked for. */
function verifyIntended(token: Token, index: DomainIndex): Token {
  const unfit = unfitIntended(token, index);
  if (unfit !== null) throw new PolicyDenial(unfit);
  return defaulted(token, index);
}

function intendedToken(text: string): Token {
  try {
    return parseToken(text, 'intended');
  } catch (err) {
    if (err instanceof TokenError) throw new PolicyDenial(err.message);
    throw err;
  }
}

function matchesButTarget(rule: Rule, call: Call): boolean {
  return (
    (rule.service === null || rule.service === call.service) &&
    (rule.argument === null || rule.argument === call.argument) &&
    tokenMatches(rule.source, call.source, call.index)
  );
}

/** A target reachable without starting anything. */
function runningOrDom0(target: string, index: DomainIndex): boolean {
  if (isDom0(target)) return true;
  if (target.startsWith('@dispvm')) return false;
  return lookup(index, target).power_state === 'Running';
}

/** The policy's rules in order; the first rule that matches decides. */
export class RulePolicy implements Policy {
  constructor(private readonly rules: readonly Rule[]) {}

  evaluate(req: PolicyRequest, system: SystemInfo): Resolution {
    try {
      return this.resolve(req, indexSystem(system));
    } catch (err) {
      if (err instanceof PolicyDenial) return { action: 'deny', reason: err.reason, notify: err.notify, rule: err.rule };
      // qrexec's evaluation raises here; qrexec-daemon then refuses the call and nobody is notified.
      if (err instanceof MissingDomain) return { action: 'deny', reason: `evaluation failed: ${err.message}`, notify: false, rule: null };
      throw err;
    }
  }

  private resolve(req: PolicyRequest, index: DomainIndex): Resolution {
    const intended = intendedToken(req.target === '' ? '@default' : req.target);
    // qrexec refuses an unfit `@dispvm:X` before any rule. The rules are matched and their deny
    // worked out all the same, so that the refusal takes as long whether X is an outside
    // disposable template or nothing at all.
    const unfit = unfitIntended(intended, index);
    const target = defaulted(intended, index);
    const call: Call = { service: req.service, argument: `+${req.argument}`, source: req.source, target, index };
    const rule = this.rules.find((r) => matchesButTarget(r, call) && tokenMatches(r.target, target, index, call.source));
    const denial = denialBy(rule);
    if (unfit !== null) throw new PolicyDenial(unfit);
    if (denial !== null) throw new PolicyDenial(denial.reason, denial.notify, denial.rule);
    const chosen = rule as Rule; // no rule at all is a denial
    const location = locationOf(chosen);
    return chosen.action.kind === 'ask' ? this.ask(chosen, chosen.action, call, location) : this.allow(chosen, chosen.action as AllowAction, call, location);
  }

  private allow(rule: Rule, action: AllowAction, call: Call, location: RuleLocation): Resolution {
    const { index } = call;
    let target = verifyIntended(action.target ? intendedToken(action.target.text) : call.target, index);
    if (target.kind === 'default') {
      throw new PolicyDenial(`policy define 'allow' action at ${where(rule)} but no target is specified by caller or policy`, true, location);
    }
    if (target.kind === 'dispvm') {
      const template = dispvmTemplateOf(index, call.source);
      if (template === null) {
        throw new PolicyDenial(`policy define 'allow' action to @dispvm at ${where(rule)} but no DispVM base is set for this VM`, true, location);
      }
      target = template;
    }
    const text = target.kind === 'adminvm' ? 'dom0' : target.text;
    if (!action.autostart && !runningOrDom0(text, index)) {
      throw new PolicyDenial(`target ${text} is denied because it would require autostart`, action.notify, location);
    }
    if (call.source === text) throw new PolicyDenial('loopback qrexec connection not supported', true, location);
    // qrexec looks the disposable template up when it connects; a dangling default_dispvm fails there.
    if (target.kind === 'dispvmTemplate') lookup(index, target.value);
    return {
      action: 'allow',
      target: isDom0(text) ? 'dom0' : text,
      user: action.user,
      autostart: action.autostart,
      notify: action.notify,
      rule: location,
    };
  }

  private ask(rule: Rule, action: AskAction, call: Call, location: RuleLocation): Resolution {
    const { index } = call;
    let targets: string[];
    if (action.target) targets = [isDom0(action.target.text) ? 'dom0' : action.target.text];
    else targets = this.targetsForAsk(call);
    if (!action.autostart) targets = targets.filter((t) => runningOrDom0(t, index));
    if (targets.length === 0) {
      throw new PolicyDenial(`policy define 'ask' action at ${where(rule)} but no target is available to choose from`, true, location);
    }
    let defaultTarget: string | null = null;
    const wanted = action.defaultTarget;
    if (wanted?.kind === 'dispvm') defaultTarget = dispvmTemplateOf(index, call.source)?.text ?? null;
    else if (wanted) defaultTarget = isDom0(wanted.text) ? 'dom0' : wanted.text;
    // A default the dialog could not offer is dropped, as qrexec does with a warning.
    if (defaultTarget !== null && !targets.includes(defaultTarget)) defaultTarget = null;
    return {
      action: 'ask',
      targets,
      defaultTarget,
      user: action.user,
      autostart: action.autostart,
      notify: action.notify,
      rule: location,
    };
  }

  /**
   * The choices for an `ask` without `target=`: every target that rules for
   * this service, argument and source could allow, later rules first so that
   * earlier denies take targets away; never the caller itself.
   */
  private targetsForAsk(call: Call): string[] {
    const { index, source } = call;
    const sourceDomain = lookup(index, source);
    const sourceName = source.startsWith('uuid:') ? sourceDomain.name : source;
    const sourceUuid = source.startsWith('uuid:') ? source : `uuid:${sourceDomain.uuid}`;
    const targets = new Set<string>();
    for (const rule of [...this.rules].reverse()) {
      if (!matchesButTarget(rule, call)) continue;
      const ruleTarget = (rule.action.kind === 'deny' ? null : rule.action.target) ?? rule.target;
      const expansion = new Set<string>();
      for (const candidate of expandToken(ruleTarget, index)) {
        try {
          expansion.add(uuidToName(index, candidate));
        } catch (err) {
          if (!(err instanceof MissingDomain)) throw err;
        }
      }
      for (const t of expansion) {
        if (rule.action.kind === 'deny') targets.delete(t);
        else targets.add(t);
      }
    }
    if (targets.delete('@dispvm')) {
      const template = dispvmTemplateOf(index, source);
      if (template) targets.add(template.text);
    }
    if (targets.delete('@adminvm')) targets.add('dom0');
    targets.delete(sourceName);
    targets.delete(sourceUuid);
    for (const t of [...targets]) {
      const name = t.startsWith('@dispvm:') ? t.slice(8) : t;
      if (lookup(index, name).internal) targets.delete(t);
    }
    return [...targets].sort();
  }
}

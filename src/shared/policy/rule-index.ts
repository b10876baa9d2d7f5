import type { Rule } from './rule.js';

/** The rules of one service: those for any argument, and those for each argument a rule names. */
interface ServiceRules {
  readonly anyArgument: Rule[];
  /** By argument without its `+`. */
  readonly byArgument: Map<string, Rule[]>;
}

/**
 * The rules whose service and argument columns match a call, in policy order
 * (`*` rules included where they stand), so that the first rule of a list
 * that matches source and target is the first rule of the policy that does.
 * Built from the rules alone: nothing in it depends on system info.
 */
export class RuleIndex {
  private readonly services = new Map<string, ServiceRules>();
  private readonly anyService: Rule[] = [];

  constructor(rules: readonly Rule[]) {
    for (const rule of rules) {
      if (rule.service === null) continue;
      let entry = this.services.get(rule.service);
      if (!entry) this.services.set(rule.service, (entry = { anyArgument: [], byArgument: new Map() }));
      if (rule.argument !== null && !entry.byArgument.has(rule.argument.slice(1))) entry.byArgument.set(rule.argument.slice(1), []);
    }
    // One pass in policy order appends each rule to every list it belongs to, so each list keeps that order.
    for (const rule of rules) {
      if (rule.service === null) {
        this.anyService.push(rule);
        for (const entry of this.services.values()) appendToAll(entry, rule);
        continue;
      }
      const entry = this.services.get(rule.service) as ServiceRules;
      if (rule.argument === null) appendToAll(entry, rule);
      else entry.byArgument.get(rule.argument.slice(1))?.push(rule);
    }
  }

  /** The rules for a service and argument (without its `+`; '' for none), in policy order. */
  rulesFor(service: string, argument: string): readonly Rule[] {
    const entry = this.services.get(service);
    if (entry === undefined) return this.anyService;
    return entry.byArgument.get(argument) ?? entry.anyArgument;
  }
}

function appendToAll(entry: ServiceRules, rule: Rule): void {
  entry.anyArgument.push(rule);
  for (const list of entry.byArgument.values()) list.push(rule);
}

/** Firewall rules as tool input: Qubes' line syntax, checked for shape before they leave the principal. */
import * as z from 'zod';
import { isRule } from '../../shared/firewall-rules.js';

export { encodeRules, MAX_RULES, parseRules } from '../../shared/firewall-rules.js';

export const FirewallRule = z.string().max(1024).refine(isRule, { message: "not a firewall rule in Qubes' syntax" });

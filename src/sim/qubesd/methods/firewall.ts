/** admin.vm.firewall.* */
import { parseFirewall, renderFirewall } from '../firewall.js';
import type { MethodTable } from './types.js';
import { m } from './types.js';

export const firewallMethods: MethodTable = {
  'admin.vm.firewall.Get': m(false, false, false, (ctx) => renderFirewall(ctx.dest.firewall, Date.now() / 1000)),
  'admin.vm.firewall.Set': m(false, true, false, (ctx) => {
    const rules = parseFirewall(ctx.payload);
    ctx.dest.firewall = rules;
    ctx.app.fire(ctx.dest.name, 'firewall-changed');
    ctx.app.save();
    return null;
  }),
  'admin.vm.firewall.Reload': m(false, false, false, (ctx) => {
    ctx.app.fire(ctx.dest.name, 'firewall-changed');
    return null;
  }),
};

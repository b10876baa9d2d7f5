/** The simulated host of the event and resource tests: a sandbox template and qube, and one qube outside. */
import type { Fleet } from '../../src/sim/fleet.js';
import type { SimHost } from '../../src/sim/host.js';

export const EVENT_FLEET: Fleet = {
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'ai-box', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
  ],
};

/** Counts the admin.Events subscriptions on HOST's qubesd from now on: one per dom0 window, taken once the window listens. */
export function countSubscriptions(host: SimHost): () => number {
  let count = 0;
  const app = host.qubesd.app;
  const subscribe = app.subscribe.bind(app);
  app.subscribe = (fn) => {
    count++;
    return subscribe(fn);
  };
  return () => count;
}

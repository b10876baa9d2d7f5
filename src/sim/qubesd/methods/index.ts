/** Every Admin API method the simulated qubesd answers, by name. */
import { createMethods } from './create.js';
import { deviceMethods } from './device.js';
import { eventMethods } from './events.js';
import { featureMethods } from './feature.js';
import { firewallMethods } from './firewall.js';
import { powerMethods } from './power.js';
import { propertyMethods } from './property.js';
import { tagMethods } from './tag.js';
import type { MethodTable } from './types.js';
import { vmMethods } from './vm.js';
import { volumeMethods } from './volume.js';

export const adminMethods: MethodTable = {
  ...vmMethods,
  ...propertyMethods,
  ...tagMethods,
  ...featureMethods,
  ...firewallMethods,
  ...powerMethods,
  ...createMethods,
  ...volumeMethods,
  ...deviceMethods,
  ...eventMethods,
};

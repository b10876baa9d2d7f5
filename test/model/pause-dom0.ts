/** A hypothetical new dom0 operation, as one fixture row of the capability model. */
import { effects, OPERATIONS, type Operation } from '../../src/shared/model/capabilities.js';

export const PAUSE_DOM0: Operation = {
  id: 'pause.dom0',
  description: 'pause a qube, checked in dom0',
  capability: 'full',
  tier: 'full',
  layer: 'service',
  service: 'qmcp.Pause',
  target: 'dom0-service',
  argumentIsQube: true,
  ...effects({ readOnly: false, idempotent: true }, null, null),
  whyCode: 'a fixture: the check a real one would need',
};

/** The model with the fixture row added. */
export const WITH_PAUSE_DOM0: readonly Operation[] = [...OPERATIONS, PAUSE_DOM0];

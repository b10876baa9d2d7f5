/** The qmcp service names install writes wrappers for and the policy allows: the model's dom0 services. */
import { dom0Services, OPERATIONS, type Operation } from '../../shared/model/capabilities.js';

export function serviceNames(ops: readonly Operation[] = OPERATIONS): string[] {
  return dom0Services(ops)
    .map((s) => s.service)
    .sort();
}

/**
 * Every dom0 qmcp service handler. Each names the capability-model operation
 * it implements; the model alone names the qrexec service it answers.
 */
import { OPERATIONS, operation, type Operation } from '../../shared/model/capabilities.js';
import type { WriteDeps } from '../create/deps.js';
import { processDeps } from '../create/deps.js';
import type { ServiceSpec } from '../service/run.js';
import { checkpointService, revertService } from './checkpoint.js';
import { cloneService } from './clone.js';
import { createDispTemplateService } from './create-disptemplate.js';
import { createService } from './create.js';
import { deviceAttachService } from './device-attach.js';
import { deviceDetachService } from './device-detach.js';
import { deviceListService } from './device-list.js';
import { disposableService } from './disposable.js';
import { eventsService } from './events.js';
import { firewallSetService } from './firewall-set.js';
import { infoService } from './info.js';
import { listService } from './list.js';
import { planStatusService } from './plan-status.js';
import { planSubmitService } from './plan-submit.js';
import { poolFiguresService } from './pool-figures.js';
import { killService, shutdownService } from './power.js';
import { processReadDeps } from './read-services.js';
import type { ReadDeps } from './read-services.js';
import { removeService } from './remove.js';
import { renewService } from './renew.js';
import { setFeatureService } from './set-feature.js';
import { setPropertyService } from './set-property.js';
import { startService } from './start.js';
import { tombstoneListService, tombstoneRestoreService } from './tombstones.js';

/** Each handler keeps its own input type; the runner only passes parse's result back to handle. */
function erased<I>(spec: ServiceSpec<I>): ServiceSpec<unknown> {
  return spec as unknown as ServiceSpec<unknown>;
}

export interface ServiceDeps {
  readonly write: WriteDeps;
  /** For the read services; from the settings under QMCP_ROOT when absent. */
  readonly read?: ReadDeps;
}

/** The handlers, in the model's order. */
export function serviceHandlers(deps: ServiceDeps): ServiceSpec<unknown>[] {
  const read = deps.read ?? processReadDeps();
  const handlers = [
    erased(listService),
    erased(infoService(read.umbrella)),
    erased(deviceListService),
    erased(poolFiguresService(read.poolCap, read.scope)),
    erased(tombstoneListService(read.scope)),
    erased(eventsService(read.scope)),
    erased(startService),
    erased(renewService(deps.write)),
    erased(shutdownService),
    erased(killService),
    erased(firewallSetService),
    erased(removeService(deps.write)),
    erased(tombstoneRestoreService(deps.write)),
    erased(checkpointService(deps.write)),
    erased(revertService),
    erased(setPropertyService(deps.write)),
    erased(setFeatureService(deps.write)),
    erased(createService(deps.write)),
    erased(createDispTemplateService(deps.write)),
    erased(disposableService(deps.write)),
    erased(cloneService(deps.write)),
    erased(deviceAttachService),
    erased(deviceDetachService),
  ];
  // a plan's steps are parsed by the handlers of their own operations
  const byOperation = new Map(handlers.map((h) => [h.operation, h]));
  return [...handlers, erased(planSubmitService(deps.write, byOperation)), erased(planStatusService(deps.write))];
}

/** The table runService dispatches on, by the service the model names; `deps` defaults to what a service process's environment says. */
export function serviceTable(deps: ServiceDeps = { write: processDeps() }): ReadonlyMap<string, ServiceSpec<unknown>> {
  return new Map(serviceHandlers(deps).map((spec) => [operation(spec.operation).service, spec]));
}

/**
 * What keeps the handlers (by the operations they name) from matching the
 * model's dom0-service operations one to one, one line per operation; empty
 * when they match.
 */
export function serviceCoverage(handled: readonly string[], ops: readonly Operation[] = OPERATIONS): string[] {
  const problems: string[] = [];
  for (const op of ops) {
    if (op.target !== 'dom0-service') continue;
    const n = handled.filter((id) => id === op.id).length;
    if (n !== 1) problems.push(`${op.id} (${op.service}): ${n === 0 ? 'no handler' : `${n} handlers`}`);
  }
  for (const id of new Set(handled)) {
    const op = ops.find((o) => o.id === id);
    if (op === undefined) problems.push(`${id}: a handler, but no operation of the model`);
    else if (op.target !== 'dom0-service') problems.push(`${id} (${op.service}): a handler, but the model reaches it as ${op.target}`);
  }
  return problems;
}

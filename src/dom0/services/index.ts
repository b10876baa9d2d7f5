/** Every dom0 qmcp service, by the qrexec service name it answers. */
import type { WriteDeps } from '../create/deps.js';
import { processDeps } from '../create/deps.js';
import type { ServiceSpec } from '../service/run.js';
import { cloneService } from './clone.js';
import { createDispTemplateService } from './create-disptemplate.js';
import { createService } from './create.js';
import { deviceAttachService } from './device-attach.js';
import { deviceDetachService } from './device-detach.js';
import { disposableService } from './disposable.js';
import { removeService } from './remove.js';
import { setFeatureService } from './set-feature.js';
import { setPropertyService } from './set-property.js';
import { processReadDeps, readServiceRows } from './read-services.js';
import type { ReadDeps } from './read-services.js';

/** Each row keeps its own input type; the runner only passes parse's result back to handle. */
function writeRow<I>(name: string, spec: ServiceSpec<I>): [string, ServiceSpec<unknown>] {
  return [name, spec as unknown as ServiceSpec<unknown>];
}

export interface ServiceDeps {
  readonly write: WriteDeps;
  /** For the read services; from the settings under QMCP_ROOT when absent. */
  readonly read?: ReadDeps;
}

/** The table runService dispatches on; `deps` defaults to what a service process's environment says. */
export function serviceTable(deps: ServiceDeps = { write: processDeps() }): ReadonlyMap<string, ServiceSpec<unknown>> {
  const rows: [string, ServiceSpec<unknown>][] = [
    writeRow('qmcp.Create', createService(deps.write)),
    writeRow('qmcp.CreateDispTemplate', createDispTemplateService(deps.write)),
    writeRow('qmcp.CreateDisposable', disposableService(deps.write)),
    writeRow('qmcp.Clone', cloneService(deps.write)),
    writeRow('qmcp.Remove', removeService(deps.write)),
    writeRow('qmcp.SetProperty', setPropertyService(deps.write)),
    writeRow('qmcp.SetFeature', setFeatureService(deps.write)),
    writeRow('qmcp.DeviceAttach', deviceAttachService),
    writeRow('qmcp.DeviceDetach', deviceDetachService),
  ];
  return new Map([...rows, ...readServiceRows(deps.read ?? processReadDeps())]);
}

/** qmcp.CreateDispTemplate: an AppVM with template_for_dispvms, from a visible template. */
import type { WriteDeps } from '../create/deps.js';
import type { ServiceSpec } from '../service/run.js';
import { appVmService } from './create.js';
import type { CreateInput } from './create.js';

export function createDispTemplateService(deps: WriteDeps): ServiceSpec<CreateInput> {
  return appVmService(deps, 'create.disptemplate', true);
}

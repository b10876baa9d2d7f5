// The operations the dom0 service registry has handlers for, read off
// handlers built with dependencies that throw if a call ever used them.
import { serviceHandlers, type ServiceDeps } from '../../src/dom0/services/index.js';
import { readDeps } from '../../src/dom0/services/read-services.js';

const refuse = (): never => {
  throw new Error('not for calls');
};

export const INERT_DEPS: ServiceDeps = {
  write: { root: '/', settings: refuse, audit: refuse, log: () => undefined, now: () => new Date(0) } as unknown as ServiceDeps['write'],
  read: readDeps(null),
};

export function handledOperations(): string[] {
  return serviceHandlers(INERT_DEPS).map((h) => h.operation);
}

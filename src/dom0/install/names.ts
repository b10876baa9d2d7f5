/** The qmcp service names install writes wrappers for and the policy allows: every row of the table. */
import { serviceTable } from '../services/index.js';
import { readDeps } from '../services/read-services.js';

export function serviceNames(): string[] {
  const inert = { root: '/', settings: () => { throw new Error('not for calls'); }, audit: () => { throw new Error('not for calls'); }, log: () => undefined, now: () => new Date(0) };
  return [...serviceTable({ write: inert, read: readDeps(null) }).keys()].sort();
}

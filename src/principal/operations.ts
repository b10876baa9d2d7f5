/**
 * MCP annotations, derived per operation from the capability model's effect
 * columns: never per target qube or tier (tiers are unreadable, and the tool
 * list must be the same on every machine).
 */
import type { ToolAnnotations } from '@modelcontextprotocol/server';
import { OPERATIONS, operation, type Operation } from '../shared/model/capabilities.js';
import { composition, effectsOf } from '../shared/model/compositions.js';

/** All four hints are set, since two of them default to true when absent. An id may name a composition. */
export function annotationsFor(operationId: string, title: string, ops: readonly Operation[] = OPERATIONS): ToolAnnotations {
  const op = effectsOf(operationId, ops);
  return {
    title,
    readOnlyHint: op.readOnly,
    destructiveHint: op.destructive,
    idempotentHint: op.idempotent,
    openWorldHint: op.openWorld,
  };
}

/** Whether a call may wait for the operator: the action gate can apply to the operation, or to a step of the composition. */
export function mayAsk(operationId: string, ops: readonly Operation[] = OPERATIONS): boolean {
  const steps = composition(operationId)?.operations ?? [operationId];
  return steps.some((id) => operation(id, ops).gate !== null);
}

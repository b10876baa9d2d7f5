/**
 * MCP annotations, derived per operation from the capability model's effect
 * columns: never per target qube or tier (tiers are unreadable, and the tool
 * list must be the same on every machine).
 */
import type { ToolAnnotations } from '@modelcontextprotocol/server';
import { OPERATIONS, type Operation } from '../shared/model/capabilities.js';
import { effectsOf } from '../shared/model/compositions.js';

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

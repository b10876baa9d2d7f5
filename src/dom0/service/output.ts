import type { Writable } from 'node:stream';
import { REFUSAL_EXIT_STATUS, REFUSAL_STDERR } from './refusal.js';

/** Exit status of an in-scope, actionable error (the JSON on stdout says which). */
export const ACTIONABLE_EXIT_STATUS = 1;

export interface ServiceIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}

/** Success: one JSON document on stdout, exit 0. */
export async function answer(io: ServiceIo, result: unknown): Promise<number> {
  await write(io.stdout, JSON.stringify(result) + '\n');
  return 0;
}

/** An error the agent can act on, about a qube it can already see. */
export async function answerError(io: ServiceIo, code: string, message: string): Promise<number> {
  await write(io.stdout, JSON.stringify({ error: { code, message } }) + '\n');
  return ACTIONABLE_EXIT_STATUS;
}

/** The uniform refusal: byte for byte what qrexec shows for a denied call. */
export async function refuse(io: ServiceIo): Promise<number> {
  await write(io.stderr, REFUSAL_STDERR);
  return REFUSAL_EXIT_STATUS;
}

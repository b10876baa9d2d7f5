/**
 * The digest an approval is bound to (docs/action-gate.md): one exact call
 * under one installed settings and model. Each field is length-prefixed, so
 * no two different calls frame to the same bytes.
 */
import { createHash } from 'node:crypto';

export interface CallBinding {
  readonly principal: string;
  readonly operation: string;
  readonly argument: string;
  readonly payload: Buffer;
  /** `settingsDigest` of the settings the call was checked under. */
  readonly settingsDigest: string;
  /** The model hash those settings were installed with. */
  readonly modelHash: string;
}

const DOMAIN = 'qmcp approval request 1';

function field(hash: ReturnType<typeof createHash>, bytes: Buffer): void {
  const length = Buffer.alloc(8);
  length.writeBigUInt64BE(BigInt(bytes.length));
  hash.update(length);
  hash.update(bytes);
}

/** sha256 hex over the binding's fields, in a fixed order, each with its length. */
export function requestDigest(b: CallBinding): string {
  const hash = createHash('sha256');
  for (const text of [DOMAIN, b.principal, b.operation, b.argument]) field(hash, Buffer.from(text, 'utf8'));
  field(hash, b.payload);
  for (const text of [b.settingsDigest, b.modelHash]) field(hash, Buffer.from(text, 'utf8'));
  return hash.digest('hex');
}

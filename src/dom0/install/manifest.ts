/**
 * The install manifest: everything install put into ROOT, so that uninstall
 * removes exactly that and puts back what it replaced, and doctor can tell
 * whether the installed files are still what this version renders.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

export const MANIFEST_PATH = 'var/lib/qmcp/manifest.json';

/** How qrexec reaches the dom0 services: an executable per call, or sockets of one resident process. */
export type ServiceMode = 'per-call' | 'resident';

/** Read fail-closed: anything but `resident` is the per-call executable. */
export function serviceModeOf(value: unknown): ServiceMode {
  return value === 'resident' ? 'resident' : 'per-call';
}

export interface Manifest {
  readonly format: 2;
  /** What the files were rendered for, so doctor can render them again. */
  readonly options: {
    readonly qubesdSocket: string;
    readonly node: string;
    readonly serviceMode: ServiceMode;
    /** The user the resident service runs as (install's --service-user), rendered into its unit. */
    readonly serviceOwner?: { readonly uid: number; readonly gid: number };
  };
  readonly files: readonly { path: string; sha256: string; mode: string }[];
  /** Symbolic links install made (the reaper timer's enablement), with their targets. */
  readonly symlinks: readonly { path: string; target: string }[];
  /** Files that were there before qmcp first wrote over them; uninstall restores them. */
  readonly originals: readonly { path: string; backup: string; mode: string }[];
  /** Directories install created, so uninstall removes them again when empty. */
  readonly dirs: readonly string[];
  /** Whether install created the (then empty) audit log. */
  readonly auditLogCreated: boolean;
}

/** A manifest path that stays inside ROOT. */
export function safeRelative(p: unknown): p is string {
  return typeof p === 'string' && p !== '' && !posix.isAbsolute(p) && !posix.normalize(p).split('/').includes('..');
}

/** The manifest under ROOT, older formats read as far as they go; null when absent or unreadable. */
export function readManifest(root: string): Manifest | null {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(join(root, MANIFEST_PATH), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null || !Array.isArray(raw['files'])) return null;
  const list = <T extends { path: unknown }>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]).filter((x) => typeof x === 'object' && x !== null && safeRelative(x.path)) : []);
  const options = (raw['options'] ?? {}) as Record<string, unknown>;
  return {
    format: 2,
    options: {
      qubesdSocket: typeof options['qubesdSocket'] === 'string' ? options['qubesdSocket'] : '/var/run/qubesd.sock',
      node: typeof options['node'] === 'string' ? options['node'] : process.execPath,
      serviceMode: serviceModeOf(options['serviceMode']),
      ...ownerOf(options['serviceOwner']),
    },
    files: list(raw['files']),
    symlinks: list(raw['symlinks']),
    originals: list<{ path: string; backup: string; mode: string }>(raw['originals']).filter((o) => safeRelative(o.backup)),
    dirs: Array.isArray(raw['dirs']) ? (raw['dirs'] as unknown[]).filter(safeRelative) : [],
    auditLogCreated: raw['auditLogCreated'] === true,
  };
}

function ownerOf(value: unknown): { serviceOwner?: { uid: number; gid: number } } {
  const o = (value ?? {}) as Record<string, unknown>;
  const id = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  return id(o['uid']) && id(o['gid']) ? { serviceOwner: { uid: o['uid'], gid: o['gid'] } } : {};
}

export function manifestText(m: Manifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

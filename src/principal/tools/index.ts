/** Every tool, in the capability model's order of operations: the fixed order of tools/list. */
import { modelRank } from '../../shared/model/compositions.js';
import type { ToolSpec } from '../tool.js';
import { deviceAttach, deviceDetach } from './devices.js';
import { qubeClone, qubeCreate, qubeCreateDispTemplate, qubeCreateDisposable } from './create.js';
import { qubeRunDisposable } from './oneshot.js';
import { qubeCopy, qubeReadFile, qubeRun, qubeWriteFile } from './inqube.js';
import { qubeListDir, qubeStat } from './listing.js';
import { jobKill, jobList, jobOutput, jobWait } from './jobs.js';
import { qubePortForward } from './forward.js';
import {
  firewallReload,
  firewallSet,
  qubeKill,
  qubePause,
  qubeRemove,
  qubeSetFeature,
  qubeSetProperty,
  qubeShutdown,
  qubeRenew,
  qubeStart,
  qubeUnpause,
} from './manage.js';
import { planStatusTool, planSubmitTool } from './plans.js';
import { tombstoneList, tombstoneRestore } from './tombstones.js';
import { qubeCheckpoint, qubeRevert } from './checkpoints.js';
import { deviceList, eventsPoll, firewallGet, poolFigures, qubeInfo, qubeList, qubeState } from './see.js';

// each spec is generic in its own schemas; the list holds them erased
const ALL = [
  qubeList,
  qubeInfo,
  qubeState,
  firewallGet,
  deviceList,
  poolFigures,
  tombstoneList,
  eventsPoll,
  qubeRun,
  qubeRunDisposable,
  qubeWriteFile,
  qubeReadFile,
  qubeListDir,
  qubeStat,
  jobOutput,
  jobWait,
  jobKill,
  jobList,
  qubeCopy,
  qubePortForward,
  qubeStart,
  qubeRenew,
  qubeShutdown,
  qubeKill,
  firewallSet,
  firewallReload,
  qubePause,
  qubeUnpause,
  qubeRemove,
  tombstoneRestore,
  qubeCheckpoint,
  qubeRevert,
  qubeSetProperty,
  qubeSetFeature,
  qubeCreate,
  qubeCreateDispTemplate,
  qubeCreateDisposable,
  qubeClone,
  deviceAttach,
  deviceDetach,
  planSubmitTool(() => TOOLS),
  planStatusTool(() => TOOLS),
] as unknown as readonly ToolSpec[];

const rank = (t: ToolSpec): number => modelRank(t.operation);

export const TOOLS: readonly ToolSpec[] = Object.freeze([...ALL].sort((a, b) => rank(a) - rank(b)));

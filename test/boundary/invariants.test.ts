// The boundary's invariants in the mode QMCP_DOM0_SERVICE_MODE names (per-call unless set).
import { boundarySuite } from './invariant-cases.js';
import { SERVICE_MODE } from './helpers.js';

boundarySuite(SERVICE_MODE);

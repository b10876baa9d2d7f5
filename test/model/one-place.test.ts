/**
 * An operation is named in one place, its row of the capability model. Given
 * a new dom0 operation as a fixture row, what is generated from the table
 * picks it up, and each check of what must be written by hand (its dom0
 * handler, its tool, its inputs to each verify check) fails naming it
 * until that is written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceNames } from '../../src/dom0/install/names.js';
import { serviceCoverage } from '../../src/dom0/services/index.js';
import type { ToolSpec } from '../../src/principal/tool.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { renderToolTable, toolCoverage } from '../../src/principal/tools/table.js';
import { DEFAULT_SETTINGS, modelHash, renderCapabilitiesDoc, renderPolicy } from '../../src/shared/model/index.js';
import { verifyCoverage } from '../../verify/coverage.js';
import { handledOperations } from '../dom0/handled.js';
import { PAUSE_DOM0, WITH_PAUSE_DOM0 } from './pause-dom0.js';

const OPS = WITH_PAUSE_DOM0;

const settings = { ...structuredClone(DEFAULT_SETTINGS), model: modelHash(OPS) };
const handled = handledOperations();

/** A tool for the fixture operation, as the one hand-written piece of the principal side. */
const pauseTool: ToolSpec = { ...(TOOLS[0] as ToolSpec), name: 'qube_pause_checked', title: 'Pause a qube, checked in dom0', operation: PAUSE_DOM0.id };

describe('a new dom0 operation, added as one row', () => {
  it('is allowed to the principal at @adminvm by the rendered policy, under a comment saying what it is', () => {
    const line = `qmcp.Pause * ${settings.principal} @adminvm allow`;
    const lines = renderPolicy(settings, OPS).split('\n');
    const at = lines.indexOf(line);
    assert.ok(at > 0, line);
    assert.equal(lines[at - 1], '# pause.dom0: pause a qube, checked in dom0');
    assert.ok(!renderPolicy(settings).includes('qmcp.Pause'));
  });

  it('is listed in docs/capabilities.md, as an operation and as a dom0 service, under a new model hash', () => {
    const doc = renderCapabilitiesDoc(OPS);
    assert.match(doc, /^\| `pause\.dom0` \| pause a qube, checked in dom0 \| full \| full \| service \| `qmcp\.Pause\+QUBE` to `@adminvm` \|/m);
    assert.match(doc, /^\| `qmcp\.Pause` \| pause\.dom0 \| a fixture: the check a real one would need \|$/m);
    assert.notEqual(modelHash(OPS), modelHash());
    assert.ok(doc.includes(modelHash(OPS)));
  });

  it('gets an installed service wrapper', () => {
    assert.deepEqual(serviceNames(OPS), [...serviceNames(), 'qmcp.Pause'].sort());
  });

  it('fails the dom0 registry check, naming it, until its handler is registered', () => {
    assert.deepEqual(serviceCoverage(handled, OPS), ['pause.dom0 (qmcp.Pause): no handler']);
    assert.deepEqual(serviceCoverage([...handled, PAUSE_DOM0.id], OPS), []);
  });

  it('fails the tool check and the tool table, naming it, until it has a tool', () => {
    assert.deepEqual(toolCoverage(TOOLS, OPS), ['pause.dom0: no tool']);
    assert.throws(() => renderToolTable(TOOLS, OPS), /pause\.dom0: no tool/);
    assert.deepEqual(toolCoverage([...TOOLS, pauseTool], OPS), []);
    assert.match(renderToolTable([...TOOLS, pauseTool], OPS), /^\| `qube_pause_checked` \| Pause a qube, checked in dom0 \| `pause\.dom0` \| no \| `qmcp\.Pause\+QUBE` to `@adminvm` \|$/m);
  });

  it('fails every verify check, naming it and the piece each lacks, until its inputs are written', () => {
    // each check's run fails on it too: test/verify/coverage.test.ts
    const pieces = ['malformed grammar', 'noninterference call', 'sequence step', 'timing form'];
    assert.deepEqual(verifyCoverage(OPS), pieces.map((p) => `pause.dom0 (qmcp.Pause): no ${p}`));
  });
});

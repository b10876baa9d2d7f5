// The dom0 service registry follows the capability model: one handler per
// dom0-service operation and nothing else, each dispatched on the service
// the model names, and install writes a wrapper for exactly those services.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dom0Services, operation } from '../../src/shared/model/index.js';
import { serviceNames } from '../../src/dom0/install/names.js';
import { serviceCoverage, serviceTable } from '../../src/dom0/services/index.js';
import { handledOperations, INERT_DEPS } from './handled.js';

const handled = handledOperations();

test('the registry has exactly one handler for each dom0-service operation of the model', () => {
  assert.deepEqual(serviceCoverage(handled), []);
});

test('the registry check names a missing, a doubled, an unknown and a misplaced handler', () => {
  assert.deepEqual(serviceCoverage(handled.filter((id) => id !== 'clone')), ['clone (qmcp.Clone): no handler']);
  assert.deepEqual(serviceCoverage([...handled, 'start']), ['start (qmcp.Start): 2 handlers']);
  assert.deepEqual(serviceCoverage([...handled, 'no-such']), ['no-such: a handler, but no operation of the model']);
  assert.deepEqual(serviceCoverage([...handled, 'pause']), ['pause (admin.vm.Pause): a handler, but the model reaches it as admin-api']);
});

test('the table dispatches each service the model names to the handler of its operation', () => {
  const table = serviceTable(INERT_DEPS);
  assert.deepEqual([...table.keys()].sort(), dom0Services().map((s) => s.service).sort());
  for (const [service, spec] of table) assert.equal(operation(spec.operation).service, service, `${service} runs ${spec.operation}`);
});

test('install writes a wrapper for each service the table dispatches on', () => {
  assert.deepEqual(serviceNames(), [...serviceTable(INERT_DEPS).keys()].sort());
});

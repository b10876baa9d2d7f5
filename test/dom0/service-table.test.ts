// The dom0 service table follows the capability model: every service row is
// a model operation served by that very service, and every dom0-service
// operation of the model has a row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATIONS, operation } from '../../src/shared/model/index.js';
import { serviceNames } from '../../src/dom0/install/names.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { readDeps } from '../../src/dom0/services/read-services.js';

const inert = {
  root: '/',
  settings: () => {
    throw new Error('not for calls');
  },
  audit: () => {
    throw new Error('not for calls');
  },
  log: () => undefined,
  now: () => new Date(0),
};

test('every dom0 service row is a model operation of that service, and the model has no service without a row', () => {
  const table = serviceTable({ write: inert as never, read: readDeps(null) });
  for (const [service, spec] of table) {
    assert.equal(operation(spec.operation).service, service, `${service} implements ${spec.operation}`);
    assert.equal(operation(spec.operation).layer, 'service');
  }
  const modelServices = new Set(OPERATIONS.filter((o) => o.layer === 'service').map((o) => o.service));
  assert.deepEqual([...modelServices].sort(), serviceNames());
});

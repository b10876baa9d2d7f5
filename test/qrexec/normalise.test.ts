import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseCall } from '../../src/sim/qrexec/normalise.js';

describe('qrexec call normalisation', () => {
  it('splits the argument at the first +', () => {
    assert.deepEqual(normaliseCall('work', 'a.B+c+d'), { service: 'a.B', argument: 'c+d', target: 'work' });
    assert.deepEqual(normaliseCall('work', 'a.B+'), { service: 'a.B', argument: '', target: 'work' });
    assert.deepEqual(normaliseCall('work', 'a.B'), { service: 'a.B', argument: '', target: 'work' });
  });

  it('spells $ as @ and replaces other characters byte by byte', () => {
    assert.equal(normaliseCall('$dispvm:dvm', 'x').target, '@dispvm:dvm');
    assert.equal(normaliseCall('wo rk', 'x').target, 'wo_rk');
    assert.deepEqual(normaliseCall('w', 'a/b+c d\u00e9'), { service: 'a_b', argument: 'c_d__', target: 'w' });
    assert.equal(normaliseCall('w', 'a:b@c').service, 'a_b_c');
  });

  it('keeps at most 63 bytes of the target (the 64-byte field of MSG_TRIGGER_SERVICE4), so uuid: and @dispvm:uuid: targets arrive whole', () => {
    assert.equal(normaliseCall('a'.repeat(80), 'x').target, 'a'.repeat(63));
    const uuid = 'uuid:0f1e2d3c-4b5a-4697-8877-665544332211';
    assert.equal(normaliseCall(`@dispvm:${uuid}`, 'x').target, `@dispvm:${uuid}`);
  });
});

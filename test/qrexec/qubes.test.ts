import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { encodeFrame, encodeHeader, FRAME_STDIN } from '../../src/sim/qrexec/protocol.js';
import { within } from '../principal/fake-qrexec.js';
import { qubesdCall } from '../../src/shared/adminapi/client.js';
import type { ServiceStdio } from '../../src/sim/qrexec/dom0-services.js';
import type { QubeServiceHost } from '../../src/sim/qrexec/router.js';
import type { QrexecHost } from './helpers.js';
import { REFUSED, startQrexecHost } from './helpers.js';

interface Ran {
  qube: string;
  service: string;
  argument: string;
  source: string;
  user: string;
  power: string | undefined;
}

describe('qrexec router: services inside qubes', () => {
  let host: QrexecHost;
  const ran: Ran[] = [];
  /** What test.Wait saw of its caller: its stdin ending, its stdout closing. */
  const waited = { stdinEnded: false, stdoutClosed: false };
  const qubeServices: QubeServiceHost = {
    async run(qube: string, service: string, argument: string, source: string, user: string, io: ServiceStdio) {
      ran.push({ qube, service, argument, source, user, power: host.qubesd.app.vms.get(qube)?.power });
      if (service === 'test.Wait') {
        io.stdin.on('end', () => (waited.stdinEnded = true)).resume();
        io.stdout.write('started');
        await new Promise((resolve) => io.stdout.once('close', resolve));
        waited.stdoutClosed = true;
        return 0;
      }
      const chunks: Buffer[] = [];
      for await (const c of io.stdin) chunks.push(c as Buffer);
      io.stdout.write(`${qube}:${Buffer.concat(chunks).toString()}`);
      return 3;
    },
  };
  before(async () => {
    host = await startQrexecHost({ qubeServices });
    host.policy(
      [
        'test.Run   *  work   vault     allow user=root',
        'test.Run   *  work   sys-net   allow',
        'test.Disp  *  work   @dispvm   allow target=@dispvm:dvm',
        'test.Wait  *  work   vault     allow',
      ].join('\n') + '\n',
    );
  });
  after(() => host.close());

  it('starts a halted target before running the service in it', async () => {
    assert.equal(host.qubesd.app.vms.get('vault')?.power, 'Halted');
    const r = await host.call('work', 'vault', 'test.Run+x', 'data');
    assert.equal(r.status, 3);
    assert.equal(r.stdout.toString(), 'vault:data');
    assert.deepEqual(ran.at(-1), { qube: 'vault', service: 'test.Run', argument: 'x', source: 'work', user: 'root', power: 'Running' });
  });

  it('runs as the default user when the rule names none', async () => {
    await host.call('work', 'sys-net', 'test.Run');
    assert.equal(ran.at(-1)?.user, 'user');
  });

  it('runs a @dispvm call in a new disposable and removes it afterwards', async () => {
    const r = await host.call('work', '@dispvm', 'test.Disp', 'hi');
    assert.equal(r.status, 3);
    const disp = ran.at(-1)?.qube ?? '';
    assert.match(disp, /^disp\d+$/);
    assert.equal(ran.at(-1)?.power, 'Running');
    assert.equal(r.stdout.toString(), `${disp}:hi`);
    assert.ok(!host.qubesd.app.vms.has(disp));
  });

  it('shuts the service\'s side when its caller goes away, as qrexec does', async () => {
    const sock = connect(host.router.socketFor('work'));
    sock.on('error', () => undefined);
    await new Promise((resolve) => sock.once('connect', resolve));
    // the caller sends its request and the end of its stdin, then waits for output
    sock.write(Buffer.concat([encodeHeader({ target: 'vault', service: 'test.Wait' }), encodeFrame(FRAME_STDIN)]));
    let seen = '';
    sock.on('data', (c: Buffer) => (seen += c.toString('latin1')));
    await within(60_000, () => seen.includes('started'), 'the service to start');
    assert.deepEqual(waited, { stdinEnded: true, stdoutClosed: false });
    // and goes away while the service still runs
    sock.destroy();
    await within(60_000, () => waited.stdoutClosed, 'the service to see its caller gone');
  });

  it('adds and removes a socket as qubes come and go', async () => {
    const created = await qubesdCall(host.qubesd.socketPath, {
      method: 'admin.vm.Create.AppVM',
      arg: 'tpl',
      dest: 'dom0',
      payload: 'name=fresh label=red',
    });
    assert.ok(created.ok);
    await host.router.refresh();
    assert.ok(existsSync(host.router.socketFor('fresh')));
    const removed = await qubesdCall(host.qubesd.socketPath, { method: 'admin.vm.Remove', dest: 'fresh' });
    assert.ok(removed.ok);
    await host.router.refresh();
    assert.ok(!existsSync(host.router.socketFor('fresh')));
  });
});

describe('qrexec router: no in-qube service host', () => {
  let host: QrexecHost;
  before(async () => {
    host = await startQrexecHost();
    host.policy('test.Run * work vault allow\ntest.Run * work sys-net allow autostart=no\n');
  });
  after(() => host.close());

  it('still starts the target, then reports the service missing', async () => {
    const r = await host.call('work', 'vault', 'test.Run');
    assert.equal(r.status, 127);
    assert.equal(host.qubesd.app.vms.get('vault')?.power, 'Running');
  });

  it('refuses a halted target under autostart=no without starting it', async () => {
    assert.deepEqual(await host.call('work', 'sys-net', 'test.Run'), REFUSED);
    assert.equal(host.qubesd.app.vms.get('sys-net')?.power, 'Halted');
  });
});

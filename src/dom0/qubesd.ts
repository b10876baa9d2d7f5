import { qubesdCall } from '../shared/adminapi/client.js';

/** A Qubes exception reported by qubesd; its class and text stay in dom0 (audit, journal). */
export class QubesdError extends Error {
  readonly errorClass: string;
  constructor(errorClass: string, message: string) {
    super(message);
    this.errorClass = errorClass;
  }
}

/** The Admin API as dom0 code uses it: every call made as dom0 on qubesd's socket. */
export class Qubesd {
  constructor(readonly socketPath: string) {}

  /** One call; resolves to the reply's text, throws QubesdError on an exception reply. */
  async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    const reply = await qubesdCall(this.socketPath, { method, dest, arg, ...(payload === undefined ? {} : { payload }) });
    if (reply.ok) return reply.data.toString('utf8');
    throw new QubesdError(reply.errorClass || 'ConnectionClosed', reply.message);
  }

  /**
   * `admin.vm.List` as dom0: every qube, or with `qube` just that one, with
   * its class, power state and uuid.
   */
  async list(qube = 'dom0'): Promise<Map<string, { klass: string; state: string; uuid: string }>> {
    const out = new Map<string, { klass: string; state: string; uuid: string }>();
    for (const line of (await this.call('admin.vm.List', qube)).split('\n')) {
      if (!line) continue;
      const [name, ...fields] = line.split(' ');
      const props = Object.fromEntries(fields.map((f) => f.split('=', 2) as [string, string]));
      if (name) out.set(name, { klass: props['class'] ?? '', state: props['state'] ?? '', uuid: props['uuid'] ?? '' });
    }
    return out;
  }

  async tags(qube: string): Promise<string[]> {
    return (await this.call('admin.vm.tag.List', qube)).split('\n').filter((t) => t !== '');
  }

  /** A property's value, or null when it is None/empty. */
  async property(qube: string, name: string): Promise<{ isDefault: boolean; type: string; value: string }> {
    const text = await this.call('admin.vm.property.Get', qube, name);
    const m = /^default=(True|False) type=(\S+) ?(.*)$/s.exec(text);
    if (!m) throw new QubesdError('ProtocolError', `unexpected property reply for ${name}`);
    return { isDefault: m[1] === 'True', type: m[2] as string, value: m[3] as string };
  }
}

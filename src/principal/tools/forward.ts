/**
 * Port forwarding between qubes the agent may run commands in, with Qubes'
 * own qubes.ConnectTCP: qmcp.PortForward in the source runs qvm-connect-tcp
 * as a background job. The policy decides which pairs may connect.
 */
import * as z from 'zod';
import { decodePortForwardReply, decodePortForwardRequest, encodePortForwardRequest, LOCAL_PORT_MIN, TCP_PORT_MAX } from '../../shared/inqube-protocol.js';
import { inQubeExact, inQubeResult } from '../calls.js';
import { Actionable, Failed } from '../results.js';
import { QubeName } from '../schemas.js';
import { REFUSABLE } from '../texts.js';
import { callTool } from './exact.js';
import { HEADER_ROOM } from './inqube.js';

export const qubePortForward = callTool({
  name: 'qube_port_forward',
  title: 'Forward a port from one qube to another',
  operation: 'port.forward',
  description:
    "Make a port on the target qube's localhost reachable in the source qube, as Qubes' qvm-connect-tcp does: the source listens on localhost:local_port (default: remote_port) and each connection there becomes one qubes.ConnectTCP call that the target connects to its own localhost:remote_port. Both qubes must be running and ones you may run commands in. The forward is a background job of the source (its id in `job`): job_kill ends it, job_list and job_output show it; it also ends when the source stops. A server need not listen yet: each connection reaches the port as it is then. local_port must be 1024 or above." +
    REFUSABLE,
  input: z.strictObject({
    from: QubeName.describe('the qube that listens (the source)'),
    to: QubeName.describe('the qube whose port is reached (the target)'),
    remote_port: z.number().int().min(1).max(TCP_PORT_MAX).describe("the port on the target's localhost"),
    local_port: z.number().int().min(LOCAL_PORT_MIN).max(TCP_PORT_MAX).optional().describe("the port the source listens on, on its localhost (default: remote_port)"),
  }),
  output: z.object({ from: z.string(), to: z.string(), remote_port: z.number(), local_port: z.number(), address: z.string(), job: z.string() }),
  long: true,
  call: (input) => {
    if (input.from === input.to) throw new Actionable('The source and the target are the same qube: connect to localhost in it directly.');
    const localPort = input.local_port ?? input.remote_port;
    if (localPort < LOCAL_PORT_MIN) throw new Actionable(`The port is below ${LOCAL_PORT_MIN}: give local_port, ${LOCAL_PORT_MIN} or above, for the source to listen on.`);
    return inQubeExact(input.from, 'port.forward', input.to, encodePortForwardRequest({ port: input.remote_port, localPort }), { maxOutput: HEADER_ROOM });
  },
  result: (call, reply) => {
    const { job } = inQubeResult(reply, decodePortForwardReply);
    const request = decodePortForwardRequest(call.payload);
    if (request === null) throw new Failed();
    const localPort = request.localPort ?? request.port;
    return { from: call.target, to: call.argument, remote_port: request.port, local_port: localPort, address: `127.0.0.1:${localPort}`, job };
  },
});

import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiPaths } from '../../shared/api.js';
import { REDACTED, createOperationalLogger, fastifyLoggerFor, redactSecrets } from '../../server/logging.js';
import { agentStatus, bootServer, enrolDevice, postJson, type TestServer } from './helpers.js';

function capture(): { stream: PassThrough; text(): string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('operational logging', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.cleanup();
    server = undefined;
  });

  it('redacts secret-named fields at any depth', () => {
    expect(
      redactSecrets({ req: { headers: { Authorization: 'Bearer abc', host: 'x' } }, list: [{ token: 't' }], credential: 'c', n: 1 }),
    ).toEqual({ req: { headers: { Authorization: REDACTED, host: 'x' } }, list: [{ token: REDACTED }], credential: REDACTED, n: 1 });
  });

  it('redacts factors, recovery keys and recovery responses by field name', () => {
    expect(
      redactSecrets({ bundle: { user: 'tanaka', pin: { hash: 'h' }, totpSecret: 'S' }, params: { key: 'K', epoch: 2 }, recoveryKey: 'R', answer: { response: '12345-67890-12345' } }),
    ).toEqual({ bundle: { user: 'tanaka', pin: REDACTED, totpSecret: REDACTED }, params: { key: REDACTED, epoch: 2 }, recoveryKey: REDACTED, answer: { response: REDACTED } });
  });

  it('writes fastify-style calls as JSON lines with the subsystem and without secrets', () => {
    const out = capture();
    const log = fastifyLoggerFor(createOperationalLogger('info', out.stream).child({ subsystem: 'http' }));
    log.child({ reqId: 'req-1' }).warn({ authorization: 'Bearer secret-value', deviceId: 'dev_1' }, 'refused %s', 'it');
    const line = JSON.parse(out.text().trim());
    expect(line).toMatchObject({ level: 'warn', message: 'refused it', subsystem: 'http', reqId: 'req-1', authorization: REDACTED, deviceId: 'dev_1' });
  });

  it('never writes an enrolment token or a device credential to the log of a running server', async () => {
    const out = capture();
    server = await bootServer({ logger: fastifyLoggerFor(createOperationalLogger('silly', out.stream)) });
    const token = await server.issueToken();
    const { credential } = await enrolDevice(server);
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus() }, credential);
    await postJson(server.app, ApiPaths.heartbeat, { status: agentStatus() }, `${credential}x`);
    await postJson(server.app, ApiPaths.enroll, { token, host: 'bad' });
    const text = out.text();
    expect(text).toContain('request completed');
    expect(text).not.toContain(token);
    expect(text).not.toContain(credential.split('.')[1]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, MAX_BATCH_ENTRIES, MAX_BODY_BYTES, type ApiErrorCode } from '../../shared/api.js';
import { bootServer, enrolDevice, hostFacts, journal, type TestServer } from './helpers.js';

/**
 * Client input never gets a 500 and never takes the server down: each kind of bad request has its
 * own 4xx and the ApiError body shape. One server takes all of them, then still answers health.
 */
describe('bad client input', () => {
  let server: TestServer;
  let credential: string;

  beforeAll(async () => {
    server = await bootServer();
    ({ credential } = await enrolDevice(server));
  });
  afterAll(async () => {
    await server.cleanup();
  });

  interface Case {
    readonly url: string;
    readonly payload: string;
    readonly contentType?: string;
    readonly device?: boolean;
    readonly method?: 'POST' | 'GET' | 'PUT';
  }

  const request = (c: Case) =>
    server.app.inject({
      method: c.method ?? 'POST',
      url: c.url,
      headers: {
        ...(c.contentType === undefined ? {} : { 'content-type': c.contentType }),
        ...(c.device ? { authorization: `Bearer ${credential}` } : {}),
      },
      payload: c.payload,
    });

  const json = 'application/json';
  const entry = journal(1)[0]!;
  const cases: [string, Case, number, ApiErrorCode][] = [
    ['malformed JSON', { url: ApiPaths.enroll, payload: '{"token": ', contentType: json }, 400, 'invalid-json'],
    ['an empty JSON body', { url: ApiPaths.heartbeat, payload: '', contentType: json, device: true }, 400, 'invalid-json'],
    ['a prototype-poisoning body', { url: ApiPaths.enroll, payload: '{"__proto__": {"x": 1}}', contentType: json }, 400, 'invalid-json'],
    ['a JSON array instead of an object', { url: ApiPaths.enroll, payload: '[]', contentType: json }, 400, 'bad-request'],
    ['a field of the wrong type', { url: ApiPaths.enroll, payload: JSON.stringify({ token: 12345, host: hostFacts() }), contentType: json }, 400, 'bad-request'],
    ['an unknown top-level field', { url: ApiPaths.enroll, payload: JSON.stringify({ token: 'x'.repeat(43), host: hostFacts(), admin: true }), contentType: json }, 400, 'bad-request'],
    ['an unknown field inside an entry', { url: ApiPaths.events, payload: JSON.stringify({ entries: [{ ...entry, extra: 1 }] }), contentType: json, device: true }, 400, 'bad-request'],
    ['a seq that is not an integer', { url: ApiPaths.events, payload: JSON.stringify({ entries: [{ ...entry, seq: 1.5 }] }), contentType: json, device: true }, 400, 'bad-request'],
    ['an empty batch', { url: ApiPaths.events, payload: JSON.stringify({ entries: [] }), contentType: json, device: true }, 400, 'bad-request'],
    ['a batch over MAX_BATCH_ENTRIES', { url: ApiPaths.events, payload: JSON.stringify({ entries: journal(MAX_BATCH_ENTRIES + 1) }), contentType: json, device: true }, 400, 'bad-request'],
    ['a body over MAX_BODY_BYTES', { url: ApiPaths.events, payload: `{"entries":["${'x'.repeat(MAX_BODY_BYTES)}"]}`, contentType: json, device: true }, 413, 'body-too-large'],
    ['an enrolment body over its 64 KiB limit', { url: ApiPaths.enroll, payload: JSON.stringify({ token: 'x'.repeat(70_000) }), contentType: json }, 413, 'body-too-large'],
    ['a text/plain body', { url: ApiPaths.enroll, payload: 'token=abc', contentType: 'text/plain' }, 415, 'unsupported-media-type'],
    ['a form body', { url: ApiPaths.events, payload: 'entries=1', contentType: 'application/x-www-form-urlencoded', device: true }, 415, 'unsupported-media-type'],
    ['a body without a content type', { url: ApiPaths.enroll, payload: '{}' }, 415, 'unsupported-media-type'],
    ['an unknown route', { url: '/api/v1/nothing-here', payload: '', method: 'GET' }, 404, 'not-found'],
    ['a known route with the wrong method', { url: ApiPaths.health, payload: '{}', contentType: json, method: 'PUT' }, 404, 'not-found'],
    // Regression: zod and canonical JSON recurse, so a deeply nested body overflowed the stack (500).
    ['a body nested 100 000 levels deep', { url: ApiPaths.events, payload: JSON.stringify({ entries: [{ ...entry, data: { a: 0 } }] }).replace('"a":0', `"a":${'['.repeat(100_000)}${']'.repeat(100_000)}`), contentType: json, device: true }, 400, 'bad-request'],
    ['events without a credential', { url: ApiPaths.events, payload: JSON.stringify({ entries: [entry] }), contentType: json }, 401, 'unauthorized'],
    ['a credentials upload as text/plain', { url: ApiPaths.credentials, payload: 'user=tanaka', contentType: 'text/plain', device: true, method: 'PUT' }, 415, 'unsupported-media-type'],
    ['a credentials upload over its 64 KiB limit', { url: ApiPaths.credentials, payload: JSON.stringify({ user: 'x'.repeat(70_000) }), contentType: json, device: true, method: 'PUT' }, 413, 'body-too-large'],
    ['a credentials lookup nested deeply', { url: ApiPaths.credentialsLookup, payload: `{"user":${'['.repeat(1000)}${']'.repeat(1000)}}`, contentType: json, device: true }, 400, 'bad-request'],
    ['acks that are not a list', { url: ApiPaths.heartbeat, payload: JSON.stringify({ status: {}, acks: 'all' }), contentType: json, device: true }, 400, 'bad-request'],
  ];

  it.each(cases)('answers %s with the right 4xx and an ApiError body', async (_name, c, status, code) => {
    const response = await request(c);
    expect(response.statusCode).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe(code);
  });

  it('names every wrong field by its path, unknown fields included', async () => {
    const response = await request({
      url: ApiPaths.events,
      payload: JSON.stringify({ entries: [{ ...entry, seq: 'one', extra: true }], more: 1 }),
      contentType: json,
      device: true,
    });
    const { issues } = ApiErrorSchema.parse(response.json()).error;
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'entries[0].seq', message: expect.any(String) },
        { path: 'entries[0].extra', message: 'unknown field' },
        { path: 'more', message: 'unknown field' },
      ]),
    );
  });

  it('still answers health after all of the above', async () => {
    const response = await server.app.inject({ method: 'GET', url: ApiPaths.health });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true, version: expect.any(String) });
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, EnrollResponseSchema } from '../../shared/api.js';
import { DATABASE_FILE } from '../../server/sqlite-store.js';
import { bootServer, hostFacts, movableClock, postJson, type TestServer } from './helpers.js';

describe('POST /api/v1/enroll', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.cleanup();
    server = undefined;
  });

  const enrol = (s: TestServer, token: string, host = hostFacts()) => postJson(s.app, ApiPaths.enroll, { token, host });

  it('enrols a device with a valid token and answers an id and a credential of the contract shape', async () => {
    server = await bootServer();
    const response = await enrol(server, await server.issueToken());
    expect(response.statusCode).toBe(200);
    const body = EnrollResponseSchema.parse(response.json());
    expect(body.credential.startsWith(`${body.deviceId}.`)).toBe(true);
    expect(await server.store.deviceCredentialHash(body.deviceId)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts a token only once', async () => {
    server = await bootServer();
    const token = await server.issueToken();
    expect((await enrol(server, token)).statusCode).toBe(200);
    const second = await enrol(server, token, hostFacts({ hostname: 'other-pc' }));
    expect(second.statusCode).toBe(401);
    expect(ApiErrorSchema.parse(second.json()).error.code).toBe('token-invalid');
    expect(await server.store.listDevices()).toHaveLength(1);
  });

  it('lets only one of two simultaneous enrolments with the same token succeed', async () => {
    server = await bootServer();
    const token = await server.issueToken();
    const answers = await Promise.all([enrol(server, token), enrol(server, token)]);
    expect(answers.map((answer) => answer.statusCode).sort()).toEqual([200, 401]);
  });

  it('refuses an expired token', async () => {
    const clock = movableClock();
    server = await bootServer({ clock });
    const token = await server.issueToken(2, clock());
    clock.advanceHours(3);
    const response = await enrol(server, token);
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('token-invalid');
  });

  it('accepts a token until the moment it expires', async () => {
    const clock = movableClock();
    server = await bootServer({ clock });
    const token = await server.issueToken(2, clock());
    clock.advanceHours(1.99);
    expect((await enrol(server, token)).statusCode).toBe(200);
  });

  it('refuses a token it never issued with 401 token-invalid', async () => {
    server = await bootServer();
    const response = await enrol(server, 'x'.repeat(43));
    expect(response.statusCode).toBe(401);
    expect(ApiErrorSchema.parse(response.json()).error.code).toBe('token-invalid');
  });

  it('makes PCs cloned from one image (same hardware id) distinct devices', async () => {
    server = await bootServer();
    const first = EnrollResponseSchema.parse((await enrol(server, await server.issueToken())).json());
    const clone = EnrollResponseSchema.parse((await enrol(server, await server.issueToken())).json());
    expect(clone.deviceId).not.toBe(first.deviceId);
    expect(clone.credential).not.toBe(first.credential);
  });

  it('keeps neither the token nor the credential in the database, only their hashes', async () => {
    server = await bootServer();
    const token = await server.issueToken();
    const { credential } = EnrollResponseSchema.parse((await enrol(server, token)).json());
    await server.close();
    const files = fs.readdirSync(server.dataDir).filter((name) => name.startsWith(DATABASE_FILE));
    const stored = files.map((name) => fs.readFileSync(path.join(server!.dataDir, name)).toString('latin1')).join('');
    expect(stored).toContain('soumu-pc-001');
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(credential.split('.')[1]);
  });
});

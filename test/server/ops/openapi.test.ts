import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ApiPaths } from '../../../shared/api.js';
import { OPENAPI_PATH, buildOpenApiDocument, openApiPath, type CatalogRoute } from '../../../server/ops/openapi.js';
import { bootOpsServer, type OpsServer } from './ops-app.js';

// The document is untyped JSON read by the checks below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- walking arbitrary JSON
type Json = any;

/** Every (method, url) of an app, parsed from `printRoutes({ commonPrefix: false })`: the routes fastify really serves. */
function registeredRoutes(tree: string): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:│ {3}| {4})*)[├└]── (.*?)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    while (stack.length > 0 && (stack.at(-1) as { depth: number }).depth >= depth) stack.pop();
    const path = (stack.at(-1)?.path ?? '') + (match[2] ?? '');
    stack.push({ depth, path });
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      if (method !== '' && method !== '-') routes.push({ method, url: path });
    }
  }
  return routes;
}

/** Resolves a local JSON pointer (`#/components/schemas/X`) in `document`. */
function resolvePointer(document: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: Json = document;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

/**
 * Structural OpenAPI 3.1 checks (no network, no validator package): the fields the specification
 * requires, path templates matched by path parameters, unique operation ids, responses with
 * descriptions, known security schemes, and every $ref resolving inside the document.
 */
function structuralProblems(document: Json): string[] {
  const problems: string[] = [];
  if (typeof document.openapi !== 'string' || !/^3\.1\.\d+$/.test(document.openapi)) problems.push('openapi is not 3.1.x');
  if (typeof document.info?.title !== 'string' || typeof document.info?.version !== 'string') problems.push('info.title and info.version are required strings');
  if (document.paths === undefined && document.components === undefined && document.webhooks === undefined) problems.push('one of paths, components, webhooks is required');
  const schemes = document.components?.securitySchemes ?? {};
  for (const [name, scheme] of Object.entries<Json>(schemes)) {
    if (!['apiKey', 'http', 'mutualTLS', 'oauth2', 'openIdConnect'].includes(scheme.type)) problems.push(`security scheme ${name}: bad type`);
    if (scheme.type === 'http' && typeof scheme.scheme !== 'string') problems.push(`security scheme ${name}: http needs scheme`);
    if (scheme.type === 'apiKey' && (typeof scheme.name !== 'string' || !['query', 'header', 'cookie'].includes(scheme.in))) problems.push(`security scheme ${name}: apiKey needs name and in`);
  }
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries<Json>(document.paths ?? {})) {
    if (!path.startsWith('/')) problems.push(`path ${path} does not start with /`);
    if (path.includes(':')) problems.push(`path ${path} uses :param instead of {param}`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    for (const [method, operation] of Object.entries<Json>(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].includes(method)) {
        problems.push(`${where}: unknown method`);
        continue;
      }
      if (typeof operation.operationId === 'string') {
        if (operationIds.has(operation.operationId)) problems.push(`${where}: duplicate operationId`);
        operationIds.add(operation.operationId);
      }
      const parameters: Json[] = operation.parameters ?? [];
      const seen = new Set<string>();
      for (const parameter of parameters) {
        if (typeof parameter.name !== 'string' || !['query', 'header', 'path', 'cookie'].includes(parameter.in)) problems.push(`${where}: parameter needs name and in`);
        if (parameter.in === 'path' && parameter.required !== true) problems.push(`${where}: path parameter ${parameter.name} must be required`);
        if (parameter.schema === undefined && parameter.content === undefined) problems.push(`${where}: parameter ${parameter.name} needs schema or content`);
        const key = `${parameter.in}:${parameter.name}`;
        if (seen.has(key)) problems.push(`${where}: duplicate parameter ${key}`);
        seen.add(key);
      }
      for (const name of templated) {
        if (!parameters.some((p) => p.in === 'path' && p.name === name)) problems.push(`${where}: template {${name}} has no path parameter`);
      }
      for (const parameter of parameters.filter((p) => p.in === 'path')) {
        if (!templated.includes(parameter.name)) problems.push(`${where}: path parameter ${parameter.name} not in the template`);
      }
      if (operation.requestBody !== undefined && typeof operation.requestBody.content !== 'object') problems.push(`${where}: requestBody needs content`);
      if (typeof operation.responses !== 'object' || Object.keys(operation.responses).length === 0) problems.push(`${where}: responses required`);
      for (const [status, response] of Object.entries<Json>(operation.responses ?? {})) {
        if (!/^([1-5]\d\d|[1-5]XX|default)$/.test(status)) problems.push(`${where}: bad response key ${status}`);
        if (typeof response.description !== 'string') problems.push(`${where} ${status}: description required`);
      }
      for (const requirement of operation.security ?? []) {
        for (const name of Object.keys(requirement)) if (!(name in schemes)) problems.push(`${where}: unknown security scheme ${name}`);
      }
    }
  }
  const refs: string[] = [];
  const walk = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries<Json>(node)) {
        if (key === '$ref' && typeof value === 'string') refs.push(value);
        else walk(value);
      }
    }
  };
  walk(document);
  for (const ref of refs) if (resolvePointer(document, ref) === undefined) problems.push(`unresolved $ref ${ref}`);
  return problems;
}

describe('OpenAPI document', () => {
  let ops: OpsServer;
  let document: Json;

  beforeAll(async () => {
    ops = await bootOpsServer();
    const response = await ops.app.inject({ method: 'GET', url: OPENAPI_PATH });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    document = response.json();
  });
  afterAll(async () => {
    await ops.cleanup();
  });

  it('lists every route the real app serves (HEAD twins of GET routes aside)', () => {
    const served = registeredRoutes(ops.app.printRoutes({ commonPrefix: false }));
    // Sanity: the parser found the app's routes, agent and admin alike.
    expect(served).toEqual(expect.arrayContaining([{ method: 'POST', url: ApiPaths.heartbeat }, { method: 'GET', url: `${ApiPaths.adminDevices}/:id/events` }]));
    const missing = served
      .filter((route) => route.method !== 'HEAD' || !served.some((other) => other.method === 'GET' && other.url === route.url))
      .filter((route) => document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()] === undefined)
      .map((route) => `${route.method} ${route.url}`);
    expect(missing).toEqual([]);
  });

  it('is structurally valid OpenAPI 3.1 with every $ref resolving inside it', () => {
    expect(structuralProblems(document)).toEqual([]);
  });

  it('describes the agent API from the shared schemas, with the device credential', () => {
    const heartbeat = document.paths[ApiPaths.heartbeat].post;
    expect(heartbeat.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/HeartbeatRequest' });
    expect(heartbeat.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/HeartbeatResponse' });
    expect(heartbeat.security).toEqual([{ deviceCredential: [] }]);
    expect(heartbeat.responses['401'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ApiError' });
    const request = document.components.schemas.HeartbeatRequest;
    expect(request.required).toEqual(['status']);
    expect(request.additionalProperties).toBe(false);
    expect(document.paths[ApiPaths.enroll].post.security).toEqual([]);
    expect(document.paths[ApiPaths.health].get.security).toEqual([]);
  });

  it('describes admin routes with path and query parameters and the admin credentials', () => {
    const events = document.paths[`${ApiPaths.adminDevices}/{id}/events`].get;
    const names = events.parameters.map((p: Json) => `${p.in}:${p.name}:${p.required}`);
    expect(names[0]).toBe('path:id:true');
    expect(names).toEqual(expect.arrayContaining(['query:after:false', 'query:limit:false']));
    expect(events.parameters.find((p: Json) => p.name === 'limit').schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000, default: 100 });
    expect(events.security).toEqual(expect.arrayContaining([{ adminToken: [] }]));
  });

  it('hoists the recursive JSON value of event data into one shared component', () => {
    const text = JSON.stringify(document);
    expect(text).not.toContain('#/$defs/');
    expect(document.components.schemas.JsonValue).toBeDefined();
    expect(Object.keys(document.components.schemas).filter((name) => name.startsWith('JsonValue'))).toEqual(['JsonValue']);
  });

  it('includes the operations endpoints with their content types', () => {
    expect(document.paths['/metrics'].get.responses['200'].content['text/plain']).toBeDefined();
    expect(document.paths['/api/v1/admin/audit/events.csv'].get.responses['200'].content['text/csv']).toBeDefined();
  });

  it('misses a route registered before the plugin, and the completeness check would say so', () => {
    // The builder only knows what onRoute showed it: the order rule in the README is load-bearing.
    const built = buildOpenApiDocument([{ method: 'GET', url: '/api/v1/seen', schema: {}, config: undefined } satisfies CatalogRoute], { version: '1' }) as Json;
    expect(Object.keys(built.paths)).toEqual(['/api/v1/seen']);
    expect(structuralProblems(built)).toEqual([]);
  });

  it('names input and output sides apart when a schema converts differently', () => {
    const Query = z.strictObject({ limit: z.coerce.number().int().default(5) });
    const built = buildOpenApiDocument(
      [
        { method: 'POST', url: '/api/v1/a', schema: { body: Query, response: { 200: Query } }, config: undefined },
      ],
      { version: '1' },
    ) as Json;
    const names = Object.keys(built.components.schemas);
    expect(names).toEqual(expect.arrayContaining(['postABody', 'postABodyOutput']));
    expect(structuralProblems(built)).toEqual([]);
  });
});

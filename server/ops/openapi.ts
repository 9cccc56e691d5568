import type { FastifyPluginCallback, RouteOptions } from 'fastify';
import { z } from 'zod';
import * as sharedApi from '../../shared/api.js';
import { API_PREFIX, ApiErrorSchema } from '../../shared/api.js';

/**
 * The OpenAPI 3.1 document of the server, generated from the zod schemas the routes really
 * validate and serialise with (`schema: { body, querystring, params, response }`), so it cannot
 * drift from the code: `openApiRoutes` watches every route as it is registered (`onRoute`) and
 * builds the document once, on the first request.
 *
 * It must therefore be registered BEFORE the route plugins (it is registered at the root: it
 * carries fastify's `skip-override`, as fastify-plugin would give it). Routes registered before
 * it are missing from the document (the test "every registered route appears" catches that).
 *
 * zod 4's `z.toJSONSchema` writes JSON Schema 2020-12, OpenAPI 3.1's own dialect. Request parts
 * use the schemas' input side (defaults optional, coerced query numbers), responses their output
 * side. Nested `$defs` (the recursive JSON value of `z.json()`) are hoisted into
 * `components/schemas` and shared when identical.
 */
export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`;

/** What a route may add about itself in `config.openapi`. */
export interface OpenApiRouteConfig {
  readonly summary?: string;
  /** Content type of a non-JSON answer (`text/csv`, `text/plain`). */
  readonly produces?: string;
  /** Leave the route out of the document. */
  readonly hide?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    openapi?: OpenApiRouteConfig;
  }
}

/** How a route is authenticated, by security scheme name (`components/securitySchemes`). */
export type RouteSecurity = 'none' | 'deviceCredential' | 'adminToken' | 'adminSession';

/** A route as `onRoute` saw it. */
export interface CatalogRoute {
  readonly method: string;
  readonly url: string;
  readonly schema: RouteOptions['schema'];
  readonly config: OpenApiRouteConfig | undefined;
}

export interface OpenApiOptions {
  readonly version: string;
  readonly title?: string;
  /**
   * Security of a route (default `defaultSecurity`: `/admin/…` admin token or session, `/metrics`
   * admin token, health, enroll and this document none, everything else the device credential).
   */
  readonly securityFor?: (route: CatalogRoute) => readonly RouteSecurity[];
  /** Default OPENAPI_PATH. */
  readonly path?: string;
  /**
   * Modules whose `FooSchema` exports name the components (`Foo`); shared/api.ts always does.
   * Pass the route modules for their admin schemas; a schema without a name is named after its
   * operation (`getAdminDevicesByIdEventsResponse200`).
   */
  readonly schemaModules?: readonly Readonly<Record<string, unknown>>[];
}

/** Plain JSON. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;

/** Routes anyone may call: liveness, enrolment (its token is in the body), this document, the admin login form's POST. */
const PUBLIC_PATHS = new Set([`${API_PREFIX}/health`, `${API_PREFIX}/enroll`, OPENAPI_PATH, `${API_PREFIX}/admin/login`]);

export function defaultSecurity(route: CatalogRoute): readonly RouteSecurity[] {
  const path = route.url;
  if (PUBLIC_PATHS.has(path) || (!path.startsWith(API_PREFIX) && path !== '/metrics')) return ['none'];
  if (path.startsWith(`${API_PREFIX}/admin/`)) return ['adminToken', 'adminSession'];
  if (path === '/metrics') return ['adminToken'];
  return ['deviceCredential'];
}

const SECURITY_SCHEMES: JsonObject = {
  deviceCredential: { type: 'http', scheme: 'bearer', description: 'The device credential `<deviceId>.<secret>` returned by POST /enroll.' },
  adminToken: { type: 'http', scheme: 'bearer', description: 'The contents of DIR/admin-token (automation).' },
  adminSession: { type: 'apiKey', in: 'cookie', name: '__Host-sekimori-session', description: 'An administrator session (password + TOTP login); state-changing requests also need the CSRF header.' },
};

/** Fastify's `:id` path parameters as OpenAPI's `{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function isZod(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType;
}

/** Builds the document from the routes seen. Routes whose `config.openapi.hide` is set, and HEAD twins of GET routes, are left out. */
export function buildOpenApiDocument(routes: readonly CatalogRoute[], options: OpenApiOptions): JsonObject {
  const components = new ComponentSchemas(schemaNames([sharedApi, ...(options.schemaModules ?? [])]));
  const securityFor = options.securityFor ?? defaultSecurity;
  const paths: Record<string, JsonObject> = {};
  const getUrls = new Set(routes.filter((route) => route.method === 'GET').map((route) => route.url));
  const usedSchemes = new Set<string>();
  const operationIds = new Set<string>();

  const sorted = [...routes].sort((a, b) => (a.url === b.url ? a.method.localeCompare(b.method) : a.url.localeCompare(b.url)));
  for (const route of sorted) {
    if (route.config?.hide === true) continue;
    const method = route.method.toLowerCase();
    if (!(HTTP_METHODS as readonly string[]).includes(method)) continue;
    if (method === 'head' && getUrls.has(route.url)) continue;
    const path = openApiPath(route.url);
    const operation: JsonObject = {};
    operation.operationId = uniqueOperationId(method, route.url, operationIds);
    operation.tags = [tagOf(route.url)];
    if (route.config?.summary !== undefined) operation.summary = route.config.summary;

    const schema = (route.schema ?? {}) as { body?: unknown; querystring?: unknown; params?: unknown; response?: Record<string, unknown> };
    const parameters: Json[] = [];
    const pathNames = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1] as string);
    const declared = isZod(schema.params) ? parametersOf(schema.params, 'path', components) : [];
    for (const name of pathNames) {
      const found = declared.find((parameter) => parameter.name === name);
      parameters.push(found ?? { name, in: 'path', required: true, schema: { type: 'string' } });
    }
    if (isZod(schema.querystring)) parameters.push(...parametersOf(schema.querystring, 'query', components));
    if (parameters.length > 0) operation.parameters = parameters;

    if (isZod(schema.body)) {
      operation.requestBody = { required: true, content: { 'application/json': { schema: components.ref(schema.body, 'input', `${operation.operationId}Body`) } } };
    } else if (['post', 'put', 'patch'].includes(method)) {
      // A route that validates its body itself (the policy document) or takes none (logout).
      operation.requestBody = { required: false, content: { 'application/json': { schema: { type: 'object' } } } };
    }

    const responses: JsonObject = {};
    for (const [status, responseSchema] of Object.entries(schema.response ?? {})) {
      if (!isZod(responseSchema)) continue;
      responses[status] = { description: describeStatus(status), content: { 'application/json': { schema: components.ref(responseSchema, 'output', `${operation.operationId}Response${status}`) } } };
    }
    if (!Object.keys(responses).some((status) => status.startsWith('2'))) {
      const produces = route.config?.produces;
      responses['200'] = produces === undefined ? { description: 'OK' } : { description: 'OK', content: { [produces]: { schema: { type: 'string' } } } };
    }
    const schemes = securityFor(route).filter((scheme) => scheme !== 'none');
    const errorRef = components.ref(ApiErrorSchema, 'output', 'ApiError');
    const errorResponse = (description: string): Json => ({ description, content: { 'application/json': { schema: errorRef } } });
    if (parameters.length > 0 || operation.requestBody !== undefined) responses['400'] ??= errorResponse('Malformed request (`bad-request` with `issues`, `invalid-json`)');
    if (schemes.length > 0) responses['401'] ??= errorResponse('Missing or invalid credential (`WWW-Authenticate: Bearer`)');
    if (schemes.includes('adminSession')) responses['403'] ??= errorResponse('Authenticated, but the role or CSRF check refused it');
    if (pathNames.length > 0) responses['404'] ??= errorResponse('Unknown resource');
    if (operation.requestBody !== undefined) {
      responses['413'] ??= errorResponse('Body over the route\'s limit');
      responses['415'] ??= errorResponse('Body is not application/json');
    }
    responses.default = errorResponse('Any other error, in the same shape');
    operation.responses = responses;

    operation.security = schemes.length === 0 ? [] : schemes.map((scheme) => ({ [scheme]: [] }));
    schemes.forEach((scheme) => usedSchemes.add(scheme));

    const item = (paths[path] ??= {});
    item[method] = operation;
  }

  const securitySchemes: JsonObject = {};
  for (const name of usedSchemes) securitySchemes[name] = SECURITY_SCHEMES[name] as Json;
  return {
    openapi: '3.1.0',
    info: {
      title: options.title ?? 'Sekimori server API',
      version: options.version,
      description:
        'Agent API (device credential) and admin API of the Sekimori central server. Every error answer has the `ApiError` shape. Generated from the zod schemas the server validates with.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: { schemas: components.all(), securitySchemes },
  };
}

function tagOf(url: string): string {
  if (url.startsWith(`${API_PREFIX}/admin/`)) return 'admin';
  if (url === OPENAPI_PATH || url === '/metrics') return 'operations';
  if (!url.startsWith(API_PREFIX)) return 'dashboard';
  return 'agent';
}

function describeStatus(status: string): string {
  if (status === '200') return 'OK';
  if (status === '201') return 'Created';
  if (status === '204') return 'No content';
  return `Status ${status}`;
}

function uniqueOperationId(method: string, url: string, seen: Set<string>): string {
  const words = url
    .replace(API_PREFIX, '')
    .split(/[/.\-_]+/)
    .filter((part) => part !== '')
    .map((part) => (part.startsWith(':') ? `By${capitalise(part.slice(1))}` : capitalise(part)));
  if (words.length === 0) words.push('Root');
  let id = `${method}${words.join('')}`;
  for (let n = 2; seen.has(id); n += 1) id = `${method}${words.join('')}${n}`;
  seen.add(id);
  return id;
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Query or path parameters from an object schema: one parameter per property. */
function parametersOf(schema: z.ZodType, location: 'query' | 'path', components: ComponentSchemas): { name: string; [key: string]: Json }[] {
  const json = components.inline(schema, 'input');
  const properties = (json.properties ?? {}) as JsonObject;
  const required = new Set(Array.isArray(json.required) ? (json.required as string[]) : []);
  return Object.entries(properties).map(([name, property]) => {
    const parameter: { name: string; [key: string]: Json } = { name, in: location, required: location === 'path' || required.has(name), schema: property };
    if (typeof property === 'object' && property !== null && !Array.isArray(property) && typeof property.description === 'string') parameter.description = property.description;
    // Arrays in a query: `device=a&device=b` (form, exploded; OpenAPI's default, said explicitly).
    if (location === 'query' && JSON.stringify(property).includes('"type":"array"')) {
      parameter.style = 'form';
      parameter.explode = true;
    }
    return parameter;
  });
}

/**
 * `components/schemas`: one entry per distinct zod schema (by identity, per input/output side),
 * named after its export in shared/api.ts where it has one, else after the operation. `$defs`
 * inside a converted schema are hoisted next to it and their `$ref`s rewritten; identical
 * definitions (every `z.json()` value) are stored once.
 */
class ComponentSchemas {
  private readonly schemas: Record<string, Json> = {};
  private readonly byIdentity = new Map<z.ZodType, Map<'input' | 'output', string>>();
  private readonly defsByContent = new Map<string, string>();

  constructor(private readonly names: ReadonlyMap<z.ZodType, string>) {}

  ref(schema: z.ZodType, io: 'input' | 'output', fallbackName: string): Json {
    const known = this.byIdentity.get(schema)?.get(io);
    if (known !== undefined) return { $ref: `#/components/schemas/${known}` };
    const json = this.inline(schema, io);
    const base = this.names.get(schema) ?? fallbackName;
    // The other side of the same schema, when it converts identically, shares the name.
    const otherSide = this.byIdentity.get(schema)?.get(io === 'input' ? 'output' : 'input');
    let name: string;
    if (otherSide !== undefined && JSON.stringify(this.schemas[otherSide]) === JSON.stringify(json)) {
      name = otherSide;
    } else {
      name = this.freeName(otherSide === undefined ? base : `${otherSide}${io === 'input' ? 'Input' : 'Output'}`);
      this.schemas[name] = json;
    }
    const sides = this.byIdentity.get(schema) ?? new Map<'input' | 'output', string>();
    sides.set(io, name);
    this.byIdentity.set(schema, sides);
    return { $ref: `#/components/schemas/${name}` };
  }

  /** The schema as JSON Schema with its `$defs` hoisted into components. */
  inline(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
    const converted = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', cycles: 'ref', reused: 'inline' }) as JsonObject;
    delete converted.$schema;
    const defs = (converted.$defs ?? {}) as JsonObject;
    delete converted.$defs;
    const renames = new Map<string, string>();
    for (const [localName, definition] of Object.entries(defs)) {
      // Content with its own local name blanked, so self-recursive definitions compare equal.
      const key = JSON.stringify(definition).split(`#/$defs/${localName}"`).join('#SELF"');
      let name = this.defsByContent.get(key);
      if (name === undefined) {
        name = this.freeName(isJsonValueShape(definition) ? 'JsonValue' : `Definition${Object.keys(this.schemas).length + 1}`);
        this.defsByContent.set(key, name);
        renames.set(localName, name);
        this.schemas[name] = rewriteRefs(definition, new Map([[localName, name]]));
      } else {
        renames.set(localName, name);
      }
    }
    return rewriteRefs(converted, renames) as JsonObject;
  }

  all(): JsonObject {
    return Object.fromEntries(Object.entries(this.schemas).sort(([a], [b]) => a.localeCompare(b)));
  }

  private freeName(base: string): string {
    let name = base;
    for (let n = 2; name in this.schemas; n += 1) name = `${base}${n}`;
    return name;
  }
}

function isJsonValueShape(definition: Json): boolean {
  const text = JSON.stringify(definition);
  return text.includes('"type":"string"') && text.includes('"type":"boolean"') && text.includes('"type":"null"') && text.includes('"type":"array"');
}

function rewriteRefs(value: Json, renames: ReadonlyMap<string, string>): Json {
  if (Array.isArray(value)) return value.map((item) => rewriteRefs(item, renames));
  if (value === null || typeof value !== 'object') return value;
  const result: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === '$ref' && typeof item === 'string' && item.startsWith('#/$defs/')) {
      const target = renames.get(item.slice('#/$defs/'.length));
      result[key] = target === undefined ? item : `#/components/schemas/${target}`;
    } else {
      result[key] = rewriteRefs(item, renames);
    }
  }
  return result;
}

/** Component names from module exports: `HeartbeatRequestSchema` → `HeartbeatRequest` (the first module naming a schema wins). */
function schemaNames(modules: readonly Readonly<Record<string, unknown>>[]): Map<z.ZodType, string> {
  const names = new Map<z.ZodType, string>();
  for (const module of modules) {
    for (const [exportName, value] of Object.entries(module)) {
      if (isZod(value) && exportName.endsWith('Schema') && exportName.length > 'Schema'.length && !names.has(value)) {
        names.set(value, exportName.slice(0, -'Schema'.length));
      }
    }
  }
  return names;
}

/**
 * Serves the document at OPENAPI_PATH (no credential: it describes the API, it holds no data).
 * Register it before every route plugin (see the module comment).
 */
export const openApiRoutes: FastifyPluginCallback<OpenApiOptions> = (app, options, done) => {
  const routes: CatalogRoute[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      routes.push({ method: String(method).toUpperCase(), url: route.url, schema: route.schema, config: route.config?.openapi });
    }
  });
  let document: string | undefined;
  app.get(options.path ?? OPENAPI_PATH, { config: { openapi: { summary: 'This OpenAPI 3.1 document' } } }, (_request, reply) => {
    document ??= JSON.stringify(buildOpenApiDocument(routes, options));
    void reply.header('content-type', 'application/json; charset=utf-8').send(document);
  });
  done();
};
// Registered at the root (as fastify-plugin does): its onRoute hook must see the routes of every
// plugin registered after it, not only of its own encapsulated scope.
Object.assign(openApiRoutes, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'openApiRoutes' });

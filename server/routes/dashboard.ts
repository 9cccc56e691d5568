import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import { ApiHttpError } from '../http/api-error.js';

/**
 * The administrators' dashboard: static pages (built by `tsc -b` from `server/dashboard/` into
 * `dist/server/dashboard/`, HTML and CSS copied by `npm run build`), served read-only:
 *
 * - `GET /` and `GET /dashboard` → 302 to `/dashboard/`;
 * - `GET /dashboard/` → `index.html`; `GET /dashboard/FILE` → the file (`.html`, `.css`, `.js`,
 *   `.js.map` directly in that folder, read once at start-up: nothing else on disk is reachable);
 * - `GET /shared/FILE` → the few zod-free modules of `shared/` the pages import (`DASHBOARD_SHARED_MODULES`).
 *
 * No authentication: the pages hold no data; everything they show comes from the admin API,
 * which checks the session. The strict CSP and the other security headers are set on every
 * answer of the server (app.ts).
 */

/** Modules of dist/shared/ the dashboard's scripts import (they must not import zod: a page cannot resolve it). */
export const DASHBOARD_SHARED_MODULES = ['i18n.js'] as const;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

/** The files served from `dir` (non-recursive), by name. A missing directory serves nothing. */
function readFolder(dir: string, only?: readonly string[]): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return files;
  }
  for (const name of names) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (type === undefined || (only !== undefined && !only.includes(name))) continue;
    const file = path.join(dir, name);
    if (!fs.statSync(file).isFile()) continue;
    files.set(name, { body: fs.readFileSync(file), type });
  }
  return files;
}

export const dashboardRoutes: FastifyPluginCallback<{ dashboardDir: string }> = (app, { dashboardDir }, done) => {
  const pages = readFolder(dashboardDir);
  const shared = readFolder(path.resolve(dashboardDir, '../../shared'), DASHBOARD_SHARED_MODULES);

  const send = (reply: FastifyReply, file: StaticFile | undefined, what: string): FastifyReply => {
    if (file === undefined) throw new ApiHttpError('not-found', `no ${what}`);
    return reply.type(file.type).send(file.body);
  };

  app.get('/', (_request, reply) => reply.redirect('/dashboard/', 302));
  app.get('/dashboard', (_request, reply) => reply.redirect('/dashboard/', 302));
  app.get('/dashboard/', (_request, reply) => send(reply, pages.get('index.html'), 'dashboard (not built: run npm run build)'));
  app.get<{ Params: { file: string } }>('/dashboard/:file', (request, reply) => send(reply, pages.get(request.params.file), `dashboard file ${request.params.file.slice(0, 100)}`));
  app.get<{ Params: { file: string } }>('/shared/:file', (request, reply) => send(reply, shared.get(request.params.file), `module ${request.params.file.slice(0, 100)}`));
  done();
};

/** The built dashboard next to the running server (dist/server/dashboard). */
export function defaultDashboardDir(): string {
  return path.join(import.meta.dirname, '..', 'dashboard');
}

import type { OpenAPIHono } from '@hono/zod-openapi';
import { html, raw } from 'hono/html';
import type { Db } from '../db/database.js';
import { ping } from '../db/database.js';
import { DATABASE_RETRY_AFTER_SECONDS } from '../db/faults.js';
import { ERROR_CODES, ERROR_DESCRIPTIONS, AppError } from './errors.js';
import type { AppEnv } from './middleware.js';

const OPENAPI_INFO = {
  openapi: '3.0.3',
  info: {
    title: 'Gatehouse API',
    version: '0.1.0',
    description:
      'Enterprise SSO for B2B SaaS. Every JSON response is an envelope `{success, status, code, message, data | details}`.\n\n' +
      'Error codes:\n\n' +
      (Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>)
        .map((k) => `- \`${k}\` (${ERROR_CODES[k]}): ${ERROR_DESCRIPTIONS[k]}`)
        .join('\n'),
  },
};

export function registerSystemRoutes(app: OpenAPIHono<AppEnv>, db: Db) {
  app.get('/healthz', (c) => c.json({ success: true, status: 200, code: 'OK', message: 'up', data: { status: 'up' } }));

  app.get('/readyz', async (c) => {
    try {
      await ping(db);
    } catch (e) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The database is not reachable', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }, { cause: e });
    }
    return c.json({ success: true, status: 200, code: 'OK', message: 'ready', data: { status: 'ready', database: 'up' } });
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'gatehouse_session' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-Api-Key' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  let cached: unknown = null;
  const document = () =>
    (cached ??= app.getOpenAPIDocument({ ...OPENAPI_INFO, security: [{ session: [] }, { apiKey: [] }, { bearer: [] }] }));

  app.get('/api/openapi.json', (c) => c.json(document()));

  // A self-contained reference page rendered from the same document (no CDN, no build step).
  app.get('/api/docs', (c) => {
    const doc = document() as { paths: Record<string, Record<string, { summary?: string; tags?: string[]; requestBody?: unknown }>> };
    const byTag = new Map<string, Array<{ method: string; path: string; summary: string }>>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const tag = op.tags?.[0] ?? 'Other';
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag)!.push({ method: method.toUpperCase(), path, summary: op.summary ?? '' });
      }
    }
    const sections = [...byTag.entries()].map(
      ([tag, ops]) => html`<section><h2>${tag}</h2><table>${ops.map(
        (o) => html`<tr><td><code class="m">${o.method}</code></td><td><code>${o.path}</code></td><td>${o.summary}</td></tr>`,
      )}</table></section>`,
    );
    const codes = (Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>).map(
      (k) => html`<tr><td><code>${k}</code></td><td>${ERROR_CODES[k]}</td><td>${ERROR_DESCRIPTIONS[k]}</td></tr>`,
    );
    return c.html(html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gatehouse API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${raw('body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.35rem .5rem;vertical-align:top}code.m{font-weight:600}')}</style>
</head><body><main><h1>Gatehouse API reference</h1>
<p>Generated from the schemas that validate each request. Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a>.</p>
${sections}
<section><h2>Error codes</h2><table>${codes}</table></section></main></body></html>`);
  });
}

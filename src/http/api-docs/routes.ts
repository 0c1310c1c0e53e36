import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { html } from 'hono/html';
import { ERROR_CODES, ERROR_DESCRIPTIONS, AppError } from '../errors.js';
import type { AppEnv } from '../middleware.js';
import { PAGE_CSP } from '../../pages/layout.js';

/**
 * `/api/docs`: the interactive reference (Swagger UI from the swagger-ui-dist package, served
 * from this instance: no CDN) over /api/openapi.json, "try it" against this origin with an API
 * key or the session. Below it, the same endpoints and error codes as a plain list, for readers
 * without JavaScript. Swagger UI sets style attributes at run time, so this page alone allows
 * inline styles; scripts stay 'self' only.
 */
export const DOCS_CSP = PAGE_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

const ASSET_PREFIX = '/api/docs/assets/';

type Asset = { body: string; type: string; etag: string };

/** The files /api/docs serves, by name: [name, path, content type]. Resolving swagger-ui-dist fails the start when it is missing. */
function assetFiles(): Array<[string, string, string]> {
  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  return [
    ['swagger-ui-bundle.js', join(dist, 'swagger-ui-bundle.js'), 'text/javascript; charset=utf-8'],
    ['swagger-ui.css', join(dist, 'swagger-ui.css'), 'text/css; charset=utf-8'],
    ['init.js', new URL('./init.js', import.meta.url).pathname, 'text/javascript; charset=utf-8'],
    ['docs.css', new URL('./docs.css', import.meta.url).pathname, 'text/css; charset=utf-8'],
  ];
}

function readAsset(path: string, type: string): Asset {
  const body = readFileSync(path, 'utf8');
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

type OpenApiDoc = { paths: Record<string, Record<string, { summary?: string; tags?: string[] }>> };

export function registerApiDocsRoutes(app: OpenAPIHono<AppEnv>, document: () => unknown) {
  // Located at start-up (a missing package fails the start, not a request); each file is read on
  // its first request and kept (~1.5 MB in all), so an instance nobody reads the docs of never holds it.
  const files = new Map(assetFiles().map(([name, path, type]) => [name, { path, type }]));
  const loaded = new Map<string, Asset>();

  app.get(`${ASSET_PREFIX}:file`, (c) => {
    const name = c.req.param('file');
    const file = files.get(name);
    if (!file) throw new AppError('NOT_FOUND', 'No such asset');
    let asset = loaded.get(name);
    if (!asset) loaded.set(name, (asset = readAsset(file.path, file.type)));
    c.header('ETag', asset.etag);
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    c.header('Content-Type', asset.type);
    return c.body(asset.body);
  });

  app.get('/api/docs', (c) => {
    const doc = document() as OpenApiDoc;
    const byTag = new Map<string, Array<{ method: string; path: string; summary: string }>>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const tag = op.tags?.[0] ?? 'Other';
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag)!.push({ method: method.toUpperCase(), path, summary: op.summary ?? '' });
      }
    }
    const sections = [...byTag.entries()].map(
      ([tag, ops]) => html`<h3>${tag}</h3><table>${ops.map((o) => html`<tr><td><code class="m">${o.method}</code></td><td><code>${o.path}</code></td><td>${o.summary}</td></tr>`)}</table>`,
    );
    const codes = (Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>).map(
      (k) => html`<tr><td><code>${k}</code></td><td>${ERROR_CODES[k]}</td><td>${ERROR_DESCRIPTIONS[k]}</td></tr>`,
    );
    c.header('Content-Security-Policy', DOCS_CSP);
    return c.html(html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gatehouse API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${ASSET_PREFIX}swagger-ui.css">
<link rel="stylesheet" href="${ASSET_PREFIX}docs.css">
<script src="${ASSET_PREFIX}swagger-ui-bundle.js" defer></script>
<script src="${ASSET_PREFIX}init.js" defer></script>
</head><body>
<header class="docs-head"><h1>Gatehouse API reference</h1>
<p>Generated from the schemas that validate each request. Use <strong>Authorize</strong> with an API key (<code>X-Api-Key</code>) or your signed-in session, then <strong>Try it out</strong> on any endpoint: requests go to this instance. Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a>.</p></header>
<main id="swagger-ui"></main>
<section class="plain" aria-labelledby="plain-list"><details><summary id="plain-list">Plain list of endpoints and error codes</summary>
${sections}
<h3>Error codes</h3><table>${codes}</table></details></section>
</body></html>`);
  });
}

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The static files of the hosted pages (no build step: plain ES modules and one stylesheet). */
export const ASSET_FILES = {
  'gatehouse.css': 'text/css; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'sign-in.js': 'text/javascript; charset=utf-8',
  'sign-up.js': 'text/javascript; charset=utf-8',
  'invitation.js': 'text/javascript; charset=utf-8',
  'auto-post.js': 'text/javascript; charset=utf-8',
  'reset-password.js': 'text/javascript; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  'setup.js': 'text/javascript; charset=utf-8',
  'setup.css': 'text/css; charset=utf-8',
} as const;

export interface Asset {
  body: string;
  contentType: string;
  etag: string;
}

/** Read every asset once, at start-up (a missing file fails the start, not a request). */
export function loadAssets(dir: URL = new URL('./assets/', import.meta.url)): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, contentType] of Object.entries(ASSET_FILES)) {
    const body = readFileSync(new URL(name, dir), 'utf8');
    out.set(name, { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return out;
}

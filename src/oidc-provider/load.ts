import type { Logger } from '../logger.js';

export type OidcProviderModule = typeof import('oidc-provider');

let loading: Promise<OidcProviderModule> | null = null;

/**
 * Load `oidc-provider` on first use, not at start-up: the CLI's commands (migrate, keys, clients,
 * admin) never need it, and starting is faster without it. The package prints a raw line to
 * stderr when imported on Node 20 ("Unsupported runtime"; it runs — DESIGN.md); that line goes to
 * the structured log instead, once per process.
 */
export function loadOidcProvider(logger: Logger): Promise<OidcProviderModule> {
  loading ??= (async () => {
    const original = console.warn;
    const notices: string[] = [];
    console.warn = (...args: unknown[]) => {
      const line = args.map(String).join(' ');
      if (line.includes('oidc-provider WARNING')) notices.push(line.replace(/\x1b\[[0-9;]*m/g, ''));
      else original(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = original;
      for (const notice of notices) logger.warn({ notice }, 'oidc-provider notice at load');
    }
  })();
  return loading;
}

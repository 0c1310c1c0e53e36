import { z } from 'zod';
import type { JWK } from 'jose';
import type { Clock } from '../../clock.js';
import { OutboundError, type OutboundFetch } from '../outbound.js';

/** What Gatehouse needs from an IdP's discovery document. */
const discoverySchema = z.looseObject({
  issuer: z.string().min(1),
  authorization_endpoint: z.string().min(1),
  token_endpoint: z.string().min(1),
  jwks_uri: z.string().min(1),
  userinfo_endpoint: z.string().optional(),
  token_endpoint_auth_methods_supported: z.array(z.string()).optional(),
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
  end_session_endpoint: z.string().optional(),
  /** RFC 9207: the IdP puts `iss` in every authorization response. */
  authorization_response_iss_parameter_supported: z.boolean().optional(),
  /** RFC 9126 pushed authorization requests. */
  pushed_authorization_request_endpoint: z.string().optional(),
  require_pushed_authorization_requests: z.boolean().optional(),
});
export type Discovery = z.infer<typeof discoverySchema>;

export interface Jwks {
  keys: JWK[];
  fetchedAt: number;
}

/** A step of fetching IdP metadata that failed, in words an admin can act on. */
export class MetadataError extends Error {
  override name = 'MetadataError';
  constructor(
    readonly check: 'discovery' | 'issuer' | 'endpoints' | 'jwks' | 'signing_key',
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

const DISCOVERY_TTL_MS = 60 * 60_000;
const JWKS_TTL_MS = 60 * 60_000;
/** SPEC §11: refetch on an unknown kid at most once a minute per issuer. */
export const JWKS_REFETCH_INTERVAL_MS = 60_000;

export const discoveryUrl = (issuerUrl: string) => `${issuerUrl.replace(/\/$/, '')}/.well-known/openid-configuration`;

function describeOutbound(e: unknown, what: string): string {
  if (e instanceof OutboundError) return `${what}: ${e.message}`;
  return `${what}: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Discovery and JWKS, fetched through the SSRF-guarded client and cached per instance (a cache,
 * not state: any instance can refetch). Entries are keyed by URL.
 */
export function createOidcMetadata(deps: { outbound: OutboundFetch; clock: Clock }) {
  const discoveries = new Map<string, { doc: Discovery; at: number }>();
  const jwksCache = new Map<string, Jwks>();

  async function fetchJson(url: string, what: string, check: MetadataError['check']): Promise<unknown> {
    let res;
    try {
      res = await deps.outbound(url, { headers: { accept: 'application/json' } });
    } catch (e) {
      throw new MetadataError(check, describeOutbound(e, `${what} at ${url} is unreachable`), e instanceof OutboundError ? e.reason : 'unreachable');
    }
    if (res.status !== 200) throw new MetadataError(check, `${what} at ${url} answered HTTP ${res.status}`, 'http_status');
    try {
      return res.json();
    } catch {
      throw new MetadataError(check, `${what} at ${url} is not JSON`, 'not_json');
    }
  }

  return {
    /** Fetch (or reuse) discovery and check it: issuer equal to the configured one, endpoints present. */
    async discover(issuerUrl: string, options: { fresh?: boolean } = {}): Promise<Discovery> {
      const url = discoveryUrl(issuerUrl);
      const cached = discoveries.get(url);
      const now = deps.clock.now().getTime();
      if (!options.fresh && cached && now - cached.at < DISCOVERY_TTL_MS) return cached.doc;
      const body = await fetchJson(url, 'The discovery document', 'discovery');
      const parsed = discoverySchema.safeParse(body);
      if (!parsed.success) {
        const missing = parsed.error.issues.map((i) => i.path.join('.')).filter(Boolean);
        if (body && typeof body === 'object' && typeof (body as { issuer?: unknown }).issuer === 'string') {
          throw new MetadataError('endpoints', `The discovery document lacks ${missing.join(', ')}`, 'missing_endpoints');
        }
        throw new MetadataError('discovery', 'The discovery document has no issuer', 'no_issuer');
      }
      const doc = parsed.data;
      if (!issuerMatchesConfigured(doc.issuer, issuerUrl)) {
        throw new MetadataError('issuer', `The IdP calls itself "${doc.issuer}", but the connection is configured with "${issuerUrl}"; paste the issuer exactly as the IdP shows it`, 'issuer_mismatch');
      }
      discoveries.set(url, { doc, at: now });
      return doc;
    },

    /**
     * The JWKS. `refresh` (an unknown kid at login) refetches unless the cached copy is under a
     * minute old; `force` (an admin's test or save) always refetches.
     */
    async jwks(jwksUri: string, options: { refresh?: boolean; force?: boolean } = {}): Promise<Jwks> {
      const cached = jwksCache.get(jwksUri);
      const now = deps.clock.now().getTime();
      const fresh = cached && now - cached.fetchedAt < JWKS_TTL_MS;
      const mayRefetch = !cached || now - cached.fetchedAt >= JWKS_REFETCH_INTERVAL_MS;
      if (cached && fresh && !options.force && !(options.refresh && mayRefetch)) return cached;
      const body = await fetchJson(jwksUri, 'The JWKS', 'jwks');
      const keys = body && typeof body === 'object' && Array.isArray((body as { keys?: unknown }).keys) ? ((body as { keys: JWK[] }).keys) : null;
      if (!keys) throw new MetadataError('jwks', `The JWKS at ${jwksUri} has no "keys" array`, 'no_keys');
      const entry = { keys, fetchedAt: now };
      jwksCache.set(jwksUri, entry);
      return entry;
    },
  };
}

export type OidcMetadata = ReturnType<typeof createOidcMetadata>;

/** Keys usable to verify ID token signatures: asymmetric, for signing. */
export function signingKeys(jwks: Jwks): JWK[] {
  return jwks.keys.filter((k) => (k.kty === 'RSA' || k.kty === 'EC' || k.kty === 'OKP') && (k.use === undefined || k.use === 'sig') && !('d' in k));
}

/**
 * SPEC §11: the discovery issuer must equal the configured issuer URL. Entra ID's multi-tenant
 * documents announce `https://login.microsoftonline.com/{tenantid}/v2.0`; that template matches a
 * configured URL that differs only in the tenant segment.
 */
export function issuerMatchesConfigured(announced: string, configured: string): boolean {
  const a = announced.replace(/\/$/, '');
  const c = configured.replace(/\/$/, '');
  if (a === c) return true;
  if (!a.includes('{tenantid}')) return false;
  const [before, after] = a.split('{tenantid}') as [string, string];
  return c.startsWith(before) && c.endsWith(after) && /^[A-Za-z0-9.-]+$/.test(c.slice(before.length, c.length - after.length));
}

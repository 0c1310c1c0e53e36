import type { Role } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { OutboundError, type OutboundFetch } from '../outbound.js';
import type { AttributeMapping, SamlMappedField } from '../connections/model.js';
import { attributeNames } from './attributes.js';
import { isExpired, parseCertificate, splitPems, type CertInfo } from './certs.js';
import { parseIdpMetadata, type IdpMetadata } from './idp-metadata.js';

export interface SamlSettingsInput {
  protocol: 'saml';
  provider: string;
  idpEntityId?: string | undefined;
  idpSsoUrl?: string | undefined;
  idpCertificate?: string | string[] | undefined;
  idpMetadataXml?: string | undefined;
  idpMetadataUrl?: string | undefined;
  spEntityId?: string | undefined;
  attributeMapping?: Partial<Record<SamlMappedField, string | string[]>> | undefined;
  signAuthnRequests?: boolean | undefined;
  authnRequestBinding?: 'redirect' | 'post' | undefined;
  enabled?: boolean | undefined;
  allowJitProvisioning?: boolean | undefined;
  defaultRole?: Exclude<Role, 'owner'> | undefined;
  allowedDomains?: string[] | null | undefined;
  allowIdpInitiated?: boolean | undefined;
  /** The IdP's SingleLogoutService; omitted: the one in the imported metadata, if any. */
  idpSloUrl?: string | null | undefined;
  signOutOfIdp?: boolean | undefined;
  universalLogout?: { enabled?: boolean | undefined; issuer?: string | null | undefined; subject?: string | null | undefined } | undefined;
}

export interface ResolvedIdp {
  idpEntityId: string;
  idpSsoUrl: string;
  certificates: CertInfo[];
  idpMetadataUrl: string | null;
  /** The given idpSloUrl (null: none), else the metadata's HTTP-Redirect SingleLogoutService. */
  idpSloUrl: string | null;
}

export interface SamlCheck {
  name: 'certificate' | 'idp_entity_id' | 'idp_sso_url' | 'sp_urls' | 'attribute_mapping';
  ok: boolean;
  message: string;
}

const invalid = (path: string, message: string) => new AppError('VALIDATION_FAILED', `${path}: ${message}`, { issues: [{ path, code: 'custom', message }] });

/** idpSsoUrl: absolute https (http too when loopback IdPs are allowed for local testing). */
export function urlProblem(value: string, allowLoopbackIdps: boolean): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:' && allowLoopbackIdps) return null;
  return 'must use https';
}

/** Parse and check the pinned certificates: each parses as X.509 and none has expired. */
export function checkCertificates(input: string | string[], now: Date, path = 'idpCertificate'): CertInfo[] {
  const pems = splitPems(input);
  if (pems.length === 0) throw invalid(path, 'at least one PEM certificate is required');
  if (pems.length > 10) throw invalid(path, 'at most 10 certificates');
  return pems.map((pem, i) => {
    let info: CertInfo;
    try {
      info = parseCertificate(pem);
    } catch (e) {
      throw invalid(path, `certificate ${i + 1} ${(e as Error).message}`);
    }
    if (isExpired(info, now)) throw invalid(path, `certificate ${i + 1} (${info.subject}, SHA-256 ${info.fingerprintSha256}) expired on ${info.notAfter}`);
    return info;
  });
}

export function normalizeMapping(input: SamlSettingsInput['attributeMapping']): AttributeMapping {
  const out: AttributeMapping = {};
  for (const [field, value] of Object.entries(input ?? {}) as Array<[SamlMappedField, string | string[] | undefined]>) {
    if (value === undefined) continue;
    const names = [...new Set((Array.isArray(value) ? value : [value]).map((v) => v.trim()).filter(Boolean))];
    if (names.length) out[field] = names;
  }
  return out;
}

async function fetchMetadata(outbound: OutboundFetch, url: string): Promise<IdpMetadata> {
  let body: string;
  try {
    const res = await outbound(url, { headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
    if (res.status !== 200) throw invalid('idpMetadataUrl', `the IdP metadata URL answered HTTP ${res.status}`);
    body = res.body;
  } catch (e) {
    if (e instanceof OutboundError) throw invalid('idpMetadataUrl', `the IdP metadata could not be fetched: ${e.message}`);
    throw e;
  }
  try {
    return parseIdpMetadata(body);
  } catch (e) {
    throw invalid('idpMetadataUrl', (e as Error).message);
  }
}

/**
 * The IdP side of a SAML PUT: explicit fields win over metadata (pasted or fetched through the
 * SSRF-guarded client); all three of entity ID, SSO URL and certificate must be known in the end.
 */
export async function resolveIdp(input: SamlSettingsInput, deps: { outbound: OutboundFetch; allowLoopbackIdps: boolean; now: Date }): Promise<ResolvedIdp> {
  let meta: IdpMetadata | null = null;
  if (input.idpMetadataXml) {
    try {
      meta = parseIdpMetadata(input.idpMetadataXml);
    } catch (e) {
      throw invalid('idpMetadataXml', (e as Error).message);
    }
  } else if (input.idpMetadataUrl) {
    const problem = urlProblem(input.idpMetadataUrl, deps.allowLoopbackIdps);
    if (problem) throw invalid('idpMetadataUrl', problem);
    meta = await fetchMetadata(deps.outbound, input.idpMetadataUrl);
  }
  const idpEntityId = input.idpEntityId?.trim() || meta?.entityId;
  const idpSsoUrl = input.idpSsoUrl?.trim() || meta?.ssoUrl;
  const certs = input.idpCertificate ?? (meta?.certificates.length ? meta.certificates : undefined);
  const missing = [!idpEntityId && 'idpEntityId', !idpSsoUrl && 'idpSsoUrl', !certs && 'idpCertificate'].filter((x): x is string => Boolean(x));
  if (missing.length) {
    throw new AppError('VALIDATION_FAILED', `A SAML connection needs ${missing.join(', ')} (or idpMetadataXml / idpMetadataUrl that provide them)`, {
      issues: missing.map((path) => ({ path, code: 'custom', message: 'required for a SAML connection (or provide idpMetadataXml / idpMetadataUrl)' })),
    });
  }
  const problem = urlProblem(idpSsoUrl!, deps.allowLoopbackIdps);
  if (problem) throw invalid('idpSsoUrl', problem);
  const idpSloUrl = input.idpSloUrl !== undefined ? input.idpSloUrl : (meta?.sloUrl ?? null);
  if (idpSloUrl) {
    const sloProblem = urlProblem(idpSloUrl, deps.allowLoopbackIdps);
    if (sloProblem) throw invalid('idpSloUrl', sloProblem);
  }
  if (input.signOutOfIdp && !idpSloUrl) throw invalid('idpSloUrl', "signOutOfIdp needs the IdP's SingleLogoutService (HTTP-Redirect): give idpSloUrl, or import metadata that lists one");
  return { idpEntityId: idpEntityId!, idpSsoUrl: idpSsoUrl!, certificates: checkCertificates(certs!, deps.now), idpMetadataUrl: input.idpMetadataUrl ?? null, idpSloUrl };
}

/** SPEC §4.3 SAML test: certificates parse and are not expired, URLs well formed, an email source. */
export function samlChecks(config: { idpEntityId: string; idpSsoUrl: string; idpCertificates: string[]; attributeMapping: AttributeMapping }, sp: { spEntityId: string; acsUrl: string }, opts: { allowLoopbackIdps: boolean; now: Date }): SamlCheck[] {
  const checks: SamlCheck[] = [];
  try {
    const infos = checkCertificates(config.idpCertificates, opts.now);
    const soonest = infos.map((i) => i.notAfter).sort()[0];
    checks.push({ name: 'certificate', ok: true, message: `${infos.length} IdP certificate(s) parse; the first to expire does so on ${soonest}` });
  } catch (e) {
    checks.push({ name: 'certificate', ok: false, message: e instanceof AppError ? e.message.replace(/^idpCertificate: /, '') : 'The IdP certificate does not parse' });
  }
  checks.push(config.idpEntityId.trim() ? { name: 'idp_entity_id', ok: true, message: `IdP entity ID is ${config.idpEntityId}` } : { name: 'idp_entity_id', ok: false, message: 'The IdP entity ID is empty' });
  const ssoProblem = urlProblem(config.idpSsoUrl, opts.allowLoopbackIdps);
  checks.push(ssoProblem ? { name: 'idp_sso_url', ok: false, message: `The IdP SSO URL ${ssoProblem}` } : { name: 'idp_sso_url', ok: true, message: `IdP SSO URL is ${config.idpSsoUrl}` });
  const spProblem = urlProblem(sp.acsUrl, true) ?? (sp.spEntityId.trim() ? null : 'SP entity ID is empty');
  checks.push(spProblem ? { name: 'sp_urls', ok: false, message: `The ACS URL ${spProblem}` } : { name: 'sp_urls', ok: true, message: `ACS URL ${sp.acsUrl}, SP entity ID ${sp.spEntityId}` });
  const email = config.attributeMapping.email;
  checks.push(
    email && email.length
      ? { name: 'attribute_mapping', ok: true, message: `Email is read from the attribute ${email.join(' or ')}` }
      : { name: 'attribute_mapping', ok: true, message: `Email is read from the NameID when its format is emailAddress, else from ${attributeNames({}, 'email').join(', ')}` },
  );
  return checks;
}


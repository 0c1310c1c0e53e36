import { compactVerify, importJWK, type JWK, type ProtectedHeaderParameters } from 'jose';
import { signingKeys, type Jwks } from './metadata.js';

/**
 * Verifying a JWS from an IdP against its published JWKS, shared by the ID token check
 * (id-token.ts), the back-channel logout token check and the Universal Logout check. Each caller
 * turns a refusal into its own error with its own reason word, so these return results instead of
 * throwing.
 */

const ktyFor = (alg: string) => (alg.startsWith('ES') ? 'EC' : alg === 'EdDSA' ? 'OKP' : 'RSA');

export type KeyChoice = { key: JWK } | { refusal: 'unknown_kid' } | { refusal: 'kid_ambiguous'; published: number };

/**
 * The verification key: the one named by `kid` (the JWKS refetched once when it is not there —
 * the loader rate-limits refetches), or without a `kid` the only key of the right type (OIDC Core
 * §10.1: several keys and no kid cannot be verified).
 */
export async function chooseKey(header: ProtectedHeaderParameters, alg: string, loadJwks: (refresh: boolean) => Promise<Jwks>): Promise<KeyChoice> {
  const fits = (jwks: Jwks) => signingKeys(jwks).filter((k) => k.kty === ktyFor(alg) && (!k.alg || k.alg === alg));
  let keys = fits(await loadJwks(false));
  if (header.kid !== undefined) {
    const key = keys.find((k) => k.kid === header.kid) ?? fits(await loadJwks(true)).find((k) => k.kid === header.kid);
    return key ? { key } : { refusal: 'unknown_kid' };
  }
  if (keys.length === 0) keys = fits(await loadJwks(true));
  return keys.length === 1 ? { key: keys[0]! } : { refusal: 'kid_ambiguous', published: keys.length };
}

export type VerifiedJson = { claims: Record<string, unknown> } | { refusal: 'signature_invalid' | 'malformed'; cause: unknown };

/**
 * Imported verification keys, by the JWK object of a cached JWKS and the algorithm: a login does
 * not import the same public key again. A refreshed JWKS brings new objects (imported afresh); the
 * old ones and their keys go with it.
 */
const imported = new WeakMap<JWK, Map<string, Promise<Awaited<ReturnType<typeof importJWK>>>>>();
function verificationKey(key: JWK, alg: string) {
  let byAlg = imported.get(key);
  if (!byAlg) imported.set(key, (byAlg = new Map()));
  let k = byAlg.get(alg);
  if (!k) {
    k = importJWK(key, alg);
    byAlg.set(alg, k);
    k.catch(() => byAlg.delete(alg));
  }
  return k;
}

/** Verify the compact JWS with `key` and `alg` only, and read its payload as a JSON object. */
export async function verifyJsonJws(token: string, key: JWK, alg: string): Promise<VerifiedJson> {
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, await verificationKey(key, alg), { algorithms: [alg] }));
  } catch (cause) {
    return { refusal: 'signature_invalid', cause };
  }
  try {
    const claims: unknown = JSON.parse(new TextDecoder().decode(payload));
    if (claims && typeof claims === 'object' && !Array.isArray(claims)) return { claims: claims as Record<string, unknown> };
    return { refusal: 'malformed', cause: new Error('not an object') };
  } catch (cause) {
    return { refusal: 'malformed', cause };
  }
}

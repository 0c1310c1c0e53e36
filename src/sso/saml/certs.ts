import { X509Certificate, generateKeyPair, randomBytes, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

/**
 * Certificates of a SAML connection: the IdP's pinned signing certificates (parsed, fingerprinted,
 * checked for expiry) and the organization's own SP key pair with a self-signed certificate.
 *
 * The SP certificate is built here as DER with node:crypto, not with the `openssl` CLI: no child
 * process, no private key in a temporary file, no dependency on a binary being on PATH in a
 * container image, and the result is checked by parsing it back with X509Certificate and
 * verifying its self-signature before it is used.
 */

export interface CertInfo {
  pem: string;
  fingerprintSha256: string;
  subject: string;
  notBefore: string;
  notAfter: string;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** One PEM, several PEM blocks in one string, an array of either, or bare base64 (as metadata carries it). */
export function splitPems(input: string | string[]): string[] {
  const parts = Array.isArray(input) ? input : [input];
  const out: string[] = [];
  for (const part of parts) {
    const blocks = part.match(PEM_BLOCK);
    if (blocks) out.push(...blocks);
    else if (part.trim()) out.push(toPem(part));
  }
  return out;
}

/** Wrap bare base64 DER (an `X509Certificate` element's text) as PEM. */
/** The base64 body of a PEM (or of bare base64): no armour lines, no whitespace. */
export const pemBody = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

export function toPem(base64: string): string {
  const body = pemBody(base64);
  return `-----BEGIN CERTIFICATE-----\n${body.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** Parse one PEM certificate; throws with a message an admin can act on. */
export function parseCertificate(pem: string): CertInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new Error('is not a valid X.509 certificate (PEM)');
  }
  return {
    pem: toPem(cert.raw.toString('base64')),
    fingerprintSha256: cert.fingerprint256,
    subject: cert.subject.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

export function isExpired(info: CertInfo, now: Date): boolean {
  return new Date(info.notAfter).getTime() <= now.getTime();
}

// ---- the SP key pair and its self-signed certificate

export interface SpKeyPair {
  privateKeyPem: string;
  certificatePem: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);

export async function generateSpKeyPair(commonName: string, now: Date): Promise<SpKeyPair> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const certificatePem = selfSignedCertificate(privateKey, publicKey, commonName, now);
  return { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), certificatePem };
}

// Minimal DER encoder: just the types an X.509 v3 certificate without extensions needs.
function der(tag: number, body: Buffer): Buffer {
  const len = body.length;
  let head: Buffer;
  if (len < 0x80) head = Buffer.from([tag, len]);
  else {
    const bytes: number[] = [];
    for (let n = len; n > 0; n >>= 8) bytes.unshift(n & 0xff);
    head = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([head, body]);
}
const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const int = (value: Buffer) => der(0x02, value[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value);
const nul = () => Buffer.from([0x05, 0x00]);
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const n of rest) {
    const chunk: number[] = [];
    let v = n;
    do {
      chunk.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2), 'ascii')) : der(0x18, Buffer.from(iso, 'ascii'));
}

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const COMMON_NAME = '2.5.4.3';
const YEAR_MS = 365 * 24 * 3600 * 1000;

function selfSignedCertificate(privateKey: KeyObject, publicKey: KeyObject, commonName: string, now: Date): string {
  const name = seq(set(seq(oid(COMMON_NAME), utf8(commonName.slice(0, 64)))));
  const algorithm = seq(oid(SHA256_WITH_RSA), nul());
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f || 0x01;
  const tbs = seq(
    der(0xa0, int(Buffer.from([2]))), // [0] version v3
    int(serial),
    algorithm,
    name,
    seq(time(new Date(now.getTime() - 24 * 3600 * 1000)), time(new Date(now.getTime() + 20 * YEAR_MS))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey);
  const certDer = seq(tbs, algorithm, der(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const pem = toPem(certDer.toString('base64'));
  // Never hand out a certificate that does not parse or does not verify.
  const parsed = new X509Certificate(pem);
  if (!parsed.verify(publicKey)) throw new Error('self-signed SP certificate does not verify');
  return pem;
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSpKeyPair, isExpired, parseCertificate, splitPems, toPem } from '../../../src/sso/saml/certs.js';
import { checkCertificates, urlProblem } from '../../../src/sso/saml/settings.js';
import { parseIdpMetadata } from '../../../src/sso/saml/idp-metadata.js';

const NOW = new Date('2026-06-01T00:00:00Z');

describe('SP key pair and self-signed certificate (hand-built DER)', () => {
  it('is an RSA-2048 X.509 v3 certificate that verifies with its own key and matches the private key', async () => {
    const kp = await generateSpKeyPair('Gatehouse SP acme', NOW);
    const cert = new X509Certificate(kp.certificatePem);
    expect(cert.subject).toBe('CN=Gatehouse SP acme');
    expect(cert.issuer).toBe('CN=Gatehouse SP acme');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(kp.privateKeyPem))).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(new Date(cert.validFrom).getTime()).toBeLessThan(NOW.getTime());
    expect(new Date(cert.validTo).getUTCFullYear()).toBe(2046);
    expect(kp.privateKeyPem).toContain('BEGIN PRIVATE KEY');
  });

  it('uses GeneralizedTime for dates from 2050 (RFC 5280) and still parses', async () => {
    const kp = await generateSpKeyPair('late', new Date('2049-06-01T00:00:00Z'));
    expect(new Date(new X509Certificate(kp.certificatePem).validTo).getUTCFullYear()).toBe(2069);
  });

  it('gives every certificate a fresh serial and key', async () => {
    const a = new X509Certificate((await generateSpKeyPair('x', NOW)).certificatePem);
    const b = new X509Certificate((await generateSpKeyPair('x', NOW)).certificatePem);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.fingerprint256).not.toBe(b.fingerprint256);
  });
});

const one = (await generateSpKeyPair('one', NOW)).certificatePem;
const two = (await generateSpKeyPair('two', NOW)).certificatePem;
const idpCertBody = (await generateSpKeyPair('idp', NOW)).certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

describe('IdP certificate input', () => {

  it('splits one PEM, several blocks in a string, an array, and bare base64', async () => {
    expect(splitPems(one)).toHaveLength(1);
    expect(splitPems(`${one}\n${two}`)).toHaveLength(2);
    expect(splitPems([one, two])).toHaveLength(2);
    const bare = one.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    expect(parseCertificate(splitPems(bare)[0]!).fingerprintSha256).toBe(new X509Certificate(one).fingerprint256);
    expect(toPem(bare)).toContain('-----BEGIN CERTIFICATE-----\n');
  });

  it('refuses garbage, an empty list and an expired certificate with the path idpCertificate', async () => {
    expect(() => checkCertificates('not a certificate', NOW)).toThrow(/not a valid X.509/);
    expect(() => checkCertificates([], NOW)).toThrow(/at least one/);
    const old = (await generateSpKeyPair('old', new Date('2000-01-01T00:00:00Z'))).certificatePem;
    expect(() => checkCertificates([one, old], NOW)).toThrow(/certificate 2 .* expired/);
    expect(isExpired(parseCertificate(old), NOW)).toBe(true);
    expect(checkCertificates([one, two], NOW).map((c) => c.subject)).toEqual(['CN=one', 'CN=two']);
  });

  it('requires https IdP URLs unless loopback IdPs are allowed', async () => {
    expect(urlProblem('https://idp.example/sso', false)).toBeNull();
    expect(urlProblem('http://127.0.0.1:8080/sso', false)).toBe('must use https');
    expect(urlProblem('http://127.0.0.1:8080/sso', true)).toBeNull();
    expect(urlProblem('javascript:alert(1)', true)).toBe('must use https');
    expect(urlProblem('not a url', true)).toBe('must be an absolute URL');
  });
});

describe('IdP metadata', () => {
  const cert = idpCertBody;
  const md = (inner: string) => `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example/md">${inner}</md:EntityDescriptor>`;

  it('reads entity ID, the Redirect SSO URL (else POST) and only signing certificates', async () => {
    const enc = (await generateSpKeyPair('enc', NOW)).certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const parsed = parseIdpMetadata(md(`<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${enc}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/post"/>
      <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/redirect"/>
    </md:IDPSSODescriptor>`));
    expect(parsed.entityId).toBe('https://idp.example/md');
    expect(parsed.ssoUrl).toBe('https://idp.example/redirect');
    expect(parsed.certificates).toHaveLength(1);
    expect(parsed.certificates[0]).toContain(cert.slice(0, 40));
  });

  it('refuses metadata with a DOCTYPE, without an IdP, or with several IdPs', async () => {
    expect(() => parseIdpMetadata(`<!DOCTYPE x>${md('')}`)).toThrow(/DOCTYPE/);
    expect(() => parseIdpMetadata(md(''))).toThrow(/no EntityDescriptor with an IDPSSODescriptor/);
    const idp = '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/>';
    expect(() => parseIdpMetadata(`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${md(idp)}${md(idp)}</md:EntitiesDescriptor>`)).toThrow(/several IdPs/);
  });
});

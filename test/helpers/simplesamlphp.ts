/**
 * A REAL SAML 2.0 IdP for tests: SimpleSAMLphp 1.19 from Debian (`apt-get install simplesamlphp`),
 * served by PHP's built-in web server on 127.0.0.1 (random port), with a private configuration
 * directory generated per run in a temp dir. The system's /etc/simplesamlphp and apache2 are
 * never touched: SimpleSAMLphp reads its config from `SIMPLESAMLPHP_CONFIG_DIR`.
 *
 * Why `php -S` and not apache2: SimpleSAMLphp 1.19 needs nothing from apache (no .htaccess,
 * no rewrite rules; PATH_INFO URLs such as `module.php/core/loginuserpass.php` work with the
 * built-in server), a single process is trivial to start and stop without leftovers, and it runs
 * as the calling user without apache's privilege drop (www-data could not read a 0700 temp dir).
 *
 * Per run: a fresh RSA-2048 signing key and self-signed certificate (made with the `openssl`
 * CLI), a random secret salt, `exampleauth:UserPass` users, an IdP entity
 * `http://127.0.0.1:<port>/saml2/idp/metadata.php` signing responses and assertions with
 * rsa-sha256 / sha256 digests. SP-remote metadata (saml20-sp-remote.php) and the users
 * (authsources.php) are rewritten by `setSps` / `setUsers`; PHP reads them on every request, so
 * a change applies to the next request.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SIMPLESAMLPHP_DIR = process.env.SIMPLESAMLPHP_DIR || '/usr/share/simplesamlphp';

export const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
export const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

export interface SamlIdpUser {
  username: string;
  password: string;
  /** Attribute name → value(s), released to every SP as-is (basic name format). */
  attributes: Record<string, string | string[]>;
}

export interface SpRemote {
  entityId: string;
  /** The SP's AssertionConsumerService (HTTP-POST binding). */
  acsUrl: string;
  /** Default persistent; the NameID value is the user's `nameIdAttribute` attribute. */
  nameIdFormat?: string;
  /** Attribute whose first value becomes the NameID (default `uid`). */
  nameIdAttribute?: string;
  signAssertion?: boolean;
  signResponse?: boolean;
  /** Default rsa-sha256 (SimpleSAMLphp then uses sha256 digests too). */
  signatureAlgorithm?: string;
  /** PEM of the SP's signing certificate: SimpleSAMLphp then requires signed AuthnRequests. */
  signingCertificate?: string;
  /** PEM of the SP's encryption certificate: SimpleSAMLphp then encrypts the assertion (RSA-OAEP key transport). */
  encryptionCertificate?: string;
  /** Extra raw SP-remote metadata options. */
  extra?: Record<string, PhpValue>;
}

export interface IdpPost {
  /** The auto-submit form's action (the SP's ACS URL). */
  action: string;
  samlResponse: string;
  relayState: string | null;
  /** The decoded Response XML (for assertions in tests). */
  xml: string;
}

export interface SimpleSamlPhpIdp {
  baseUrl: string;
  entityId: string;
  ssoUrl: string;
  metadataUrl: string;
  /** PEM of the IdP's signing certificate. */
  certificatePem: string;
  configDir: string;
  setSps(sps: SpRemote[]): void;
  setUsers(users: SamlIdpUser[]): void;
  metadataXml(): Promise<string>;
  /**
   * Act as a browser with a fresh cookie jar: follow `url` (Gatehouse's 302 Location carrying a
   * SAMLRequest, or an IdP-initiated URL), submit the login form as `username`/`password`, and
   * return the auto-submit form SimpleSAMLphp answers with (not posted anywhere).
   */
  login(start: string | { action: string; fields: Record<string, string> }, username: string, password: string, browser?: Browser): Promise<IdpPost>;
  /** `saml2/idp/SingleLogoutService.php?ReturnTo=…` — IdP-initiated Single Logout of every SP of the browser's IdP session. */
  idpLogoutUrl(returnTo: string): string;
  /** The IdP's SingleLogoutService (HTTP-Redirect). */
  sloUrl: string;
  /**
   * SP metadata XML documents (e.g. fetched from Gatehouse's `/saml/metadata`) that the IdP reads
   * in addition to the `setSps` entries (SimpleSAMLphp's `xml` metadata source). Per-SP options
   * then come from the IdP defaults: persistent NameID from `uid`, signed response and assertion.
   */
  setSpMetadataXml(xmls: string[]): void;
  /** `saml2/idp/SSOService.php?spentityid=…[&RelayState=…]` — unsolicited (IdP-initiated) SSO. */
  idpInitiatedUrl(spEntityId: string, relayState?: string): string;
  /** SimpleSAMLphp's own log plus the PHP server's output, for troubleshooting a failing test. */
  logs(): string;
  /** The whole SimpleSAMLphp log (debug level); slice from an earlier length to see one request's lines. */
  simpleSamlLog(): string;
  close(): Promise<void>;
}

/** What is missing to run SimpleSAMLphp, or null when it can run here. */
export function simpleSamlPhpMissing(): string | null {
  if (!existsSync(join(SIMPLESAMLPHP_DIR, 'www', 'saml2', 'idp', 'SSOService.php')))
    return `SimpleSAMLphp not found at ${SIMPLESAMLPHP_DIR} (apt-get install simplesamlphp php-xml php-curl php-mbstring, or set SIMPLESAMLPHP_DIR)`;
  const php = spawnSync('php', ['-r', 'echo extension_loaded("dom") && extension_loaded("openssl") && extension_loaded("mbstring") ? "ok" : "ext";'], { encoding: 'utf8' });
  if (php.error) return 'php (CLI) not found: apt-get install php-cli';
  if (php.stdout.trim() !== 'ok') return 'PHP lacks dom/openssl/mbstring: apt-get install php-xml php-mbstring';
  const ssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (ssl.error) return 'openssl CLI not found: apt-get install openssl';
  return null;
}

/**
 * For `describe.skipIf(...)`: true when SimpleSAMLphp is missing on a developer machine (prints
 * why). Under CI=true a missing SimpleSAMLphp throws, so the run fails instead of skipping.
 */
export function skipWithoutSimpleSamlPhp(): boolean {
  const missing = simpleSamlPhpMissing();
  if (!missing) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and SimpleSAMLphp cannot run: ${missing}`);
  console.warn(`[skip] SimpleSAMLphp tests skipped: ${missing}`);
  return true;
}

// ---- PHP literals -------------------------------------------------------------------------

export type PhpValue = string | number | boolean | null | PhpValue[] | { [k: string]: PhpValue };

function phpString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Serialize a JS value as a PHP literal (strings single-quoted, so nothing is interpolated). */
export function php(v: PhpValue, indent = ''): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return phpString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('non-finite number');
    return String(v);
  }
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => `${inner}${php(x, inner)},\n`).join('')}${indent}]`;
  return `[\n${Object.entries(v)
    .map(([k, x]) => `${inner}${phpString(k)} => ${php(x, inner)},\n`)
    .join('')}${indent}]`;
}

function phpFile(variable: string, value: PhpValue): string {
  return `<?php\n// Generated by test/helpers/simplesamlphp.ts for one test run.\n$${variable} = ${php(value)};\n`;
}

// ---- process plumbing ---------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (bound then released; the caller listens on it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function assertLoopback(url: string) {
  const host = new URL(url).hostname;
  if (!(host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || /^127\./.test(host)))
    throw new Error(`refusing to contact non-loopback URL ${url}`);
}

/** A minimal browser: cookie jar per host:port, manual redirects, loopback only. */
export class Browser {
  private jar = new Map<string, Map<string, string>>();

  /** The cookie `name` this browser holds for `url`'s host:port. */
  cookie(url: string, name: string): string | undefined {
    return this.jar.get(new URL(url).host)?.get(name);
  }

  async request(url: string, init: { method?: string; form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; location: string | null; text: string; url: string }> {
    assertLoopback(url);
    const u = new URL(url);
    const cookies = this.jar.get(u.host);
    const headers: Record<string, string> = { ...init.headers };
    if (cookies?.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const res = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const m = /^([^=]+)=([^;]*)/.exec(line);
      if (!m) continue;
      const jar = this.jar.get(u.host) ?? new Map<string, string>();
      if (m[2] === '' || m[2] === 'deleted' || /max-age=0|expires=Thu, 01[- ]Jan[- ]1970/i.test(line)) jar.delete(m[1]!);
      else jar.set(m[1]!, m[2]!);
      this.jar.set(u.host, jar);
    }
    const loc = res.headers.get('location');
    return { status: res.status, location: loc ? new URL(loc, url).toString() : null, text: await res.text(), url };
  }

  /** GET `url`, following redirects that stay on the same origin (at most 10). */
  async follow(url: string, origin: string) {
    let r = await this.request(url);
    for (let i = 0; i < 10 && r.location && new URL(r.location).origin === origin; i++) r = await this.request(r.location);
    return r;
  }
}

function decodeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');
}

/** The first <form> of a page: its action and every named <input>'s value. */
export function parseForm(html: string, baseUrl: string): { action: string; fields: Record<string, string> } | null {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return null;
  const action = /\baction\s*=\s*"([^"]*)"/i.exec(form[1]!)?.[1] ?? '';
  const fields: Record<string, string> = {};
  for (const m of form[2]!.matchAll(/<input\b([^>]*)>/gi)) {
    const attrs = m[1]!;
    const name = /\bname\s*=\s*"([^"]*)"/i.exec(attrs)?.[1];
    if (!name) continue;
    fields[decodeHtml(name)] = decodeHtml(/\bvalue\s*=\s*"([^"]*)"/i.exec(attrs)?.[1] ?? '');
  }
  return { action: new URL(decodeHtml(action) || baseUrl, baseUrl).toString(), fields };
}

function openssl(args: string[], cwd: string) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** A throwaway RSA key + self-signed certificate (PEM), made with the openssl CLI. */
export function makeCertificate(cn = 'gatehouse-test'): { certificatePem: string; privateKeyPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cert-'));
  try {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`, '-keyout', 'k.pem', '-out', 'c.pem'], dir);
    return { certificatePem: readFileSync(join(dir, 'c.pem'), 'utf8'), privateKeyPem: readFileSync(join(dir, 'k.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the IdP ------------------------------------------------------------------------------

export interface StartSimpleSamlPhpOptions {
  users?: SamlIdpUser[];
  sps?: SpRemote[];
}

export const DEFAULT_USERS: SamlIdpUser[] = [
  {
    username: 'alice@acme.test',
    password: 'alice-pass',
    attributes: { uid: 'alice-0001', email: 'alice@acme.test', givenName: 'Alice', sn: 'Anders', displayName: 'Alice Anders' },
  },
  {
    username: 'bob@acme.test',
    password: 'bob-pass',
    attributes: { uid: 'bob-0002', email: 'bob@acme.test', givenName: 'Bob', sn: 'Baker', displayName: 'Bob Baker' },
  },
];

class PortTaken extends Error {}

export async function startSimpleSamlPhp(options: StartSimpleSamlPhpOptions = {}): Promise<SimpleSamlPhpIdp> {
  const missing = simpleSamlPhpMissing();
  if (missing) throw new Error(missing);
  // The free port is found by binding and releasing it; another process may grab it first.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt >= 3) throw e;
    }
  }
}

async function startOnce(options: StartSimpleSamlPhpOptions): Promise<SimpleSamlPhpIdp> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-ssp-'));
  for (const sub of ['cert', 'log', 'data', 'tmp', 'metadata', 'sessions']) mkdirSync(join(dir, sub));
  // Per-run signing key and self-signed certificate.
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-nodes', '-days', '2', '-subj', '/CN=simplesamlphp-test-idp', '-keyout', 'cert/idp.key', '-out', 'cert/idp.crt'],
    dir,
  );
  const certificatePem = readFileSync(join(dir, 'cert', 'idp.crt'), 'utf8');

  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const entityId = `${baseUrl}/saml2/idp/metadata.php`;

  const config: PhpValue = {
    baseurlpath: `${baseUrl}/`,
    certdir: `${dir}/cert/`,
    loggingdir: `${dir}/log/`,
    datadir: `${dir}/data/`,
    tempdir: `${dir}/tmp`,
    metadatadir: `${dir}/metadata/`,
    secretsalt: randomBytes(16).toString('hex'),
    'auth.adminpassword': randomBytes(16).toString('hex'),
    'admin.protectindexpage': false,
    'admin.protectmetadata': false,
    technicalcontact_name: 'Gatehouse tests',
    technicalcontact_email: 'tests@example.invalid',
    timezone: 'UTC',
    'logging.level': 7, // SimpleSAML\Logger::DEBUG
    'logging.handler': 'file',
    'logging.logfile': 'simplesamlphp.log',
    'debug': { saml: true, backtraces: true, validatexml: false },
    showerrors: true,
    errorreporting: false,
    'enable.saml20-idp': true,
    'enable.shib13-idp': false,
    'module.enable': { exampleauth: true, core: true, saml: true, admin: true },
    'session.cookie.secure': false,
    'session.cookie.samesite': null,
    'session.phpsession.savepath': `${dir}/sessions`,
    'session.phpsession.cookiename': 'SSPSESSID',
    'store.type': 'phpsession',
    'language.default': 'en',
    'trusted.url.domains': ['127.0.0.1', `127.0.0.1:${port}`],
    'metadata.sign.enable': false,
    'metadata.sources': [
      { type: 'flatfile', directory: `${dir}/metadata/` },
      { type: 'xml', file: `${dir}/metadata/sp-metadata.xml` },
    ],
  };
  writeFileSync(join(dir, 'config.php'), phpFile('config', config));
  writeFileSync(
    join(dir, 'metadata', 'saml20-idp-hosted.php'),
    `<?php\n$metadata[${phpString('__DYNAMIC:1__')}] = ${php({
      host: '__DEFAULT__',
      privatekey: 'idp.key',
      certificate: 'idp.crt',
      auth: 'example-userpass',
      'signature.algorithm': RSA_SHA256,
      'saml20.sign.assertion': true,
      'saml20.sign.response': true,
      'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
      NameIDFormat: NAMEID_PERSISTENT,
      // Used for SPs known only from their metadata XML (setSpMetadataXml).
      'simplesaml.nameidattribute': 'uid',
      // Single Logout: sign the LogoutRequests and LogoutResponses it sends, and require the
      // SP's to be signed (verified with the signing certificate of the SP's metadata).
      'sign.logout': true,
      'validate.logout': true,
    })};\n`,
  );
  const setSpMetadataXml = (xmls: string[]) => {
    // One EntitiesDescriptor wrapping each SP's EntityDescriptor (XML declarations dropped).
    const inner = xmls.map((x) => x.replace(/^\s*<\?xml[^>]*\?>/, '')).join('\n');
    writeFileSync(join(dir, 'metadata', 'sp-metadata.xml'), `<?xml version="1.0"?>\n<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">\n${inner}\n</md:EntitiesDescriptor>\n`);
  };
  setSpMetadataXml([]);

  const setUsers = (users: SamlIdpUser[]) => {
    const source: { [k: string]: PhpValue } = { 0: 'exampleauth:UserPass' };
    for (const u of users) {
      if (u.username.includes(':')) throw new Error('username must not contain ":"');
      source[`${u.username}:${u.password}`] = Object.fromEntries(Object.entries(u.attributes).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
    }
    // PHP array keys: '0' becomes int 0, which is what exampleauth expects for the source type.
    writeFileSync(join(dir, 'authsources.php'), phpFile('config', { admin: ['core:AdminPassword'], 'example-userpass': source }));
  };
  const setSps = (sps: SpRemote[]) => {
    const body = sps
      .map((sp) => {
        const md: { [k: string]: PhpValue } = {
          AssertionConsumerService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', Location: sp.acsUrl, index: 0 }],
          NameIDFormat: sp.nameIdFormat ?? NAMEID_PERSISTENT,
          'simplesaml.nameidattribute': sp.nameIdAttribute ?? 'uid',
          'simplesaml.attributes': true,
          'signature.algorithm': sp.signatureAlgorithm ?? RSA_SHA256,
          'saml20.sign.assertion': sp.signAssertion ?? true,
          'saml20.sign.response': sp.signResponse ?? true,
          'validate.authnrequest': !!sp.signingCertificate,
          'assertion.encryption': !!sp.encryptionCertificate,
          keys: [
            ...(sp.signingCertificate ? [{ type: 'X509Certificate', signing: true, encryption: false, X509Certificate: pemBody(sp.signingCertificate) }] : []),
            ...(sp.encryptionCertificate ? [{ type: 'X509Certificate', signing: false, encryption: true, X509Certificate: pemBody(sp.encryptionCertificate) }] : []),
          ],
          ...sp.extra,
        };
        return `$metadata[${phpString(sp.entityId)}] = ${php(md)};\n`;
      })
      .join('');
    writeFileSync(join(dir, 'metadata', 'saml20-sp-remote.php'), `<?php\n// Generated per test.\n${body}`);
  };
  setUsers(options.users ?? DEFAULT_USERS);
  setSps(options.sps ?? []);

  let output = '';
  // opcache off: under `php -S` (SAPI cli-server) opcache.enable applies, and its timestamp
  // revalidation (every 2 s) would serve a stale saml20-sp-remote.php right after setSps().
  const child: ChildProcess = spawn('php', ['-d', 'display_errors=stderr', '-d', 'opcache.enable=0', '-d', 'opcache.enable_cli=0', '-S', `127.0.0.1:${port}`, '-t', join(SIMPLESAMLPHP_DIR, 'www')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SIMPLESAMLPHP_CONFIG_DIR: dir, TZ: 'UTC' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const append = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));
  child.once('error', (e) => {
    output += `\nspawn php failed: ${e.message}`;
    alive = false;
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const close = async () => {
    process.off('exit', killOnExit);
    if (alive) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const simpleSamlLog = () => {
    try {
      return readFileSync(join(dir, 'log', 'simplesamlphp.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const logs = () => {
    const ssp = simpleSamlLog() || '(no simplesamlphp.log)';
    return `--- simplesamlphp.log ---\n${ssp.slice(-20_000)}\n--- php -S output ---\n${output.slice(-20_000)}`;
  };

  // Wait until the IdP serves its metadata.
  const metadataUrl = entityId;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!alive) {
      await close();
      if (/Address already in use|Failed to listen/i.test(output)) throw new PortTaken(output);
      throw new Error(`php -S exited at start-up:\n${output}`);
    }
    try {
      const res = await fetch(metadataUrl);
      if (res.status === 200 && (await res.text()).includes('IDPSSODescriptor')) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      const l = logs();
      await close();
      throw new Error(`SimpleSAMLphp did not serve its metadata within 15 s:\n${l}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  async function login(start: string | { action: string; fields: Record<string, string> }, username: string, password: string, browser?: Browser): Promise<IdpPost> {
    const b = browser ?? new Browser();
    const url = typeof start === 'string' ? start : start.action;
    let page;
    if (typeof start === 'string') page = await b.follow(start, baseUrl);
    else {
      const posted = await b.request(start.action, { form: start.fields });
      page = posted.location && new URL(posted.location).origin === baseUrl ? await b.follow(posted.location, baseUrl) : posted;
    }
    if (page.status !== 200) throw new Error(`IdP answered ${page.status} (location ${page.location}) to ${url}:\n${page.text.slice(0, 2000)}\n${logs()}`);
    const form = parseForm(page.text, page.url);
    if (!form || !('password' in form.fields) || !('AuthState' in form.fields))
      throw new Error(`expected SimpleSAMLphp's login form at ${page.url}:\n${page.text.slice(0, 3000)}\n${logs()}`);
    const submitted = await b.request(form.action, { form: { ...form.fields, username, password } });
    const done = submitted.location && new URL(submitted.location).origin === baseUrl ? await b.follow(submitted.location, baseUrl) : submitted;
    const post = parseForm(done.text, done.url);
    if (done.status !== 200 || !post || !post.fields.SAMLResponse)
      throw new Error(`expected SimpleSAMLphp's auto-submit SAMLResponse form, got ${done.status}:\n${done.text.slice(0, 3000)}\n${logs()}`);
    return {
      action: post.action,
      samlResponse: post.fields.SAMLResponse,
      relayState: post.fields.RelayState ?? null,
      xml: Buffer.from(post.fields.SAMLResponse, 'base64').toString('utf8'),
    };
  }

  return {
    baseUrl,
    entityId,
    ssoUrl: `${baseUrl}/saml2/idp/SSOService.php`,
    metadataUrl,
    certificatePem,
    configDir: dir,
    setSps,
    setUsers,
    setSpMetadataXml,
    async metadataXml() {
      const res = await fetch(metadataUrl);
      if (res.status !== 200) throw new Error(`metadata: ${res.status}`);
      return res.text();
    },
    login,
    sloUrl: `${baseUrl}/saml2/idp/SingleLogoutService.php`,
    idpLogoutUrl(returnTo) {
      const u = new URL(`${baseUrl}/saml2/idp/SingleLogoutService.php`);
      u.searchParams.set('ReturnTo', returnTo);
      return u.toString();
    },
    idpInitiatedUrl(spEntityId, relayState) {
      const u = new URL(`${baseUrl}/saml2/idp/SSOService.php`);
      u.searchParams.set('spentityid', spEntityId);
      if (relayState !== undefined) u.searchParams.set('RelayState', relayState);
      return u.toString();
    },
    logs,
    simpleSamlLog,
    close,
  };
}

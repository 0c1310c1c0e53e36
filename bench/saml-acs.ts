/**
 * SAML ACS validations per second for a signed RSA-2048 response (rsa-sha256, exc-c14n,
 * assertion signed, KeyInfo embedded — what Okta or Entra send), measured two ways in one run:
 *
 *  (a) reference: @node-saml/node-saml's bare `validatePostResponseAsync` (signature, audience,
 *      timestamps; no InResponseTo check, no replay cache, no database) on one response;
 *  (b) Gatehouse's full ACS, in-process through `app.request`: POST /api/auth/sso/{slug}/saml/acs
 *      with the form body — size cap, DOCTYPE/algorithm/destination/recipient/issuer checks,
 *      node-saml, the pending-request lookup and consume (SP-initiated), the replay cache insert,
 *      provisioning (existing identity), session creation, audit — answered 302.
 *
 * Every Gatehouse iteration posts a different response (its own AuthnRequest, assertion ID and
 * signature), all prepared before the clock starts: the AuthnRequests are issued by
 * GET /login and the responses signed by test/helpers/saml-forge.ts outside the measurement.
 * One request at a time. Rate = responses / wall time of the round; CPU ms = process CPU time
 * (process.cpuUsage) per response; "on one core" = 1000 / CPU ms. Median of the rounds is reported, all rounds listed.
 *
 *   node --import tsx bench/saml-acs.ts      (also `npm run bench:saml`, and part of `npm run bench`)
 *
 * BENCH_SAML_N (responses per round, default 300), BENCH_SAML_ROUNDS (default 5),
 * BENCH_DATABASE_URL (also PostgreSQL), BENCH_SAML_DRY=1 (print only, do not write RESULTS.md).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { SAML } from '@node-saml/node-saml';
import { benchGatehouse } from './in-process.js';
import { IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields } from '../test/helpers/saml-forge.js';

const N = Number(process.env.BENCH_SAML_N ?? 300);
const ROUNDS = Number(process.env.BENCH_SAML_ROUNDS ?? 5);
const WARMUP = Math.min(100, N);
const DRY = process.env.BENCH_SAML_DRY === '1';
const RESULTS = new URL('./RESULTS.md', import.meta.url);
const IDP_ENTITY_ID = 'https://idp.bench.example/saml/metadata';
const EMAIL = 'returning@bench.example';

let formBytes = 0;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Round {
  perSecond: number;
  cpuMsPer: number;
}
interface Row {
  label: string;
  database: string;
  rounds: Round[];
}

/** Run `one(i)` n times, sequentially; rate over wall time and CPU ms per call. */
async function round(n: number, one: (i: number) => Promise<void>): Promise<Round> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await one(i);
  const wall = performance.now() - t0;
  return { perSecond: (n * 1000) / wall, cpuMsPer: cpuMs(process.cpuUsage(cpu0)) / n };
}

/** (a) node-saml alone on one response (valid for 10 minutes, so one response serves every round). */
async function measureNodeSaml(): Promise<Row> {
  const acsUrl = 'http://localhost:3000/api/auth/sso/bench/saml/acs';
  const spEntityId = 'http://localhost:3000/api/auth/sso/bench/saml/metadata';
  const saml = new SAML({
    idpCert: IDP_KEYS.cert,
    issuer: spEntityId,
    callbackUrl: acsUrl,
    audience: spEntityId,
    idpIssuer: IDP_ENTITY_ID,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: 60_000,
  });
  const xml = forgeResponse(responseFields({ acsUrl, spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo: null, email: EMAIL }, { notOnOrAfter: new Date(Date.now() + 30 * 60_000), subjectNotOnOrAfter: new Date(Date.now() + 30 * 60_000) }));
  const body = { SAMLResponse: Buffer.from(xml).toString('base64') };
  formBytes = postForm(xml).length;
  const one = async () => {
    const { profile } = await saml.validatePostResponseAsync(body);
    if (profile?.nameID !== EMAIL) throw new Error('node-saml: unexpected profile');
  };
  await round(WARMUP, one);
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(N, one));
  return { label: '(a) node-saml `validatePostResponseAsync` alone (reference)', database: '–', rounds };
}

/** (b) Gatehouse's ACS, SP-initiated, repeat login of one user, on a fresh database. */
async function measureGatehouse(databaseUrl: string | null): Promise<Row> {
  const bench = await benchGatehouse(databaseUrl, 'saml');
  const { gh, config } = bench;
  const origin = { origin: config.baseUrl };
  try {
    const signUp = await gh.app.request('/api/auth/sign-up/email', { method: 'POST', headers: { 'content-type': 'application/json', ...origin }, body: JSON.stringify({ email: 'owner@bench.test', password: 'bench password 1' }) });
    const cookie = signUp.headers.get('set-cookie')!.split(';')[0]!;
    const org = await gh.app.request('/api/user/organizations', { method: 'POST', headers: { 'content-type': 'application/json', cookie, ...origin }, body: JSON.stringify({ name: 'Bench', slug: 'bench' }) });
    const orgId = ((await org.json()) as { data: { id: string } }).data.id;
    const put = await gh.app.request(`/api/user/organizations/${orgId}/settings/sso`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', cookie, ...origin },
      body: JSON.stringify({ provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: 'http://127.0.0.1:9/saml/sso', idpCertificate: IDP_KEYS.cert }),
    });
    if (put.status !== 200) throw new Error(`configure SAML failed: ${put.status} ${await put.text()}`);
    const settings = (await (await gh.app.request(`/api/user/organizations/${orgId}/settings/sso`, { headers: { cookie } })).json()) as { data: { acsUrl: string; spEntityId: string } };
    const { acsUrl, spEntityId } = settings.data;

    /** n responses, each answering its own AuthnRequest; prepared outside the measurement. */
    const prepare = async (n: number): Promise<string[]> => {
      const bodies: string[] = [];
      for (let i = 0; i < n; i++) {
        const start = await gh.app.request('/api/auth/sso/bench/login');
        if (start.status !== 302) throw new Error(`login start: ${start.status}`);
        const req = decodeRedirect(start.headers.get('location')!);
        const xml = forgeResponse(responseFields({ acsUrl, spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo: req.id, email: EMAIL }));
        bodies.push(postForm(xml, req.relayState));
      }
      return bodies;
    };
    const post = (body: string) =>
      gh.app.request('/api/auth/sso/bench/saml/acs', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://idp.bench.example' }, body }, { incoming: { socket: { remoteAddress: '127.0.0.1', remotePort: 1, remoteFamily: 'IPv4' } } });
    const runRound = async (n: number) => {
      const bodies = await prepare(n);
      return round(n, async (i) => {
        const res = await post(bodies[i]!);
        const text = await res.text();
        if (res.status !== 302) throw new Error(`ACS answered ${res.status}: ${text.slice(0, 300)}`);
      });
    };
    await runRound(WARMUP); // the first login also creates the user (JIT); later ones are repeat logins
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await runRound(N));
    return { label: '(b) Gatehouse full ACS `POST /api/auth/sso/{slug}/saml/acs` (SP-initiated, repeat login)', database: gh.deps.database.engine, rounds };
  } finally {
    await bench.close();
  }
}

const loadBefore = os.loadavg();
const rows: Row[] = [await measureNodeSaml(), await measureGatehouse(null)];
if (process.env.BENCH_DATABASE_URL) rows.push(await measureGatehouse(process.env.BENCH_DATABASE_URL));
const loadAfter = os.loadavg();

const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const referenceCpu = median(rows[0]!.rounds.map((r) => r.cpuMsPer));
const lines = [
  `## SAML ACS — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `- Machine: ${cpuModel}, nproc ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`,
  `- Date: ${new Date().toISOString()}`,
  `- Load average (1/5/15 min): before ${loadBefore.map((l) => l.toFixed(2)).join(' / ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' / ')} (shared machine; anything near or above the core count depresses the figures)`,
  `- Command: \`${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL=… ' : ''}node --import tsx bench/saml-acs.ts\` (\`npm run bench:saml\`, part of \`npm run bench\`)`,
  `- Response: SAML 2.0 Response, one Assertion signed with RSA-2048 (rsa-sha256, exc-c14n, enveloped, KeyInfo with the certificate), ${(formBytes / 1024).toFixed(1)} KiB form body.`,
  `- Method: ${ROUNDS} rounds of ${N} responses after ${WARMUP} warm-up, one at a time, in one process. (a) node-saml's bare \`validatePostResponseAsync\` (signature against the pinned certificate, audience, timestamps; no InResponseTo, no replay cache, no database) on one response. (b) Gatehouse in-process through \`app.request\`: the whole ACS request — form parsing, 512 KiB cap, DOCTYPE/algorithm/Destination/Recipient/Issuer checks, node-saml, pending AuthnRequest lookup and consume, replay-cache insert, provisioning (existing identity), session and audit rows — answered 302. Each (b) response answers its own AuthnRequest and has a fresh assertion ID; the AuthnRequests (GET /login) and the signing happen before each round's clock starts. Rate = responses / wall time of a round; CPU ms = process CPU per response (all threads of this process: node-saml and the SQLite driver run on the main thread; PostgreSQL's own CPU is not counted); \"on one core\" = 1000 / CPU ms. The median round is reported; all rounds listed.`,
  '',
  '| path | database | validations/s (median, wall) | rounds (per s) | CPU ms per response (median) | validations/s on one core (1000 / CPU ms) | vs node-saml alone (one core) |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => {
    const rate = median(r.rounds.map((x) => x.perSecond));
    const cpu = median(r.rounds.map((x) => x.cpuMsPer));
    return `| ${r.label} | ${r.database} | ${fmt(rate)} | ${r.rounds.map((x) => fmt(x.perSecond)).join(' / ')} | ${cpu.toFixed(2)} | ${fmt(1000 / cpu)} | ${((referenceCpu / cpu) * 100).toFixed(0)} % |`;
  }),
  '',
  'The wall-clock rate is what one process achieved with whatever else ran on the machine; the CPU time per response (and so "on one core") is the steadier figure when the machine is shared.',
];
console.log(lines.join('\n'));

if (!DRY) {
  const text = readFileSync(RESULTS, 'utf8');
  const begin = '<!-- bench:saml:start -->';
  const end = '<!-- bench:saml:end -->';
  const block = `${begin}\n${lines.join('\n')}\n${end}`;
  writeFileSync(RESULTS, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), () => block) : `${text.trimEnd()}\n\n${block}\n`);
}

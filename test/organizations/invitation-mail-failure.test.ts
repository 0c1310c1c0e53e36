import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startSmtpCatcher, type SmtpCatcher } from '../helpers/smtp.js';

/*
 * SPEC §12 "Faults" is about the database. An SMTP outage is not one: invitation create commits
 * the invitation, then sends its mail; when the mail cannot go out (nodemailer reports an SMTP
 * timeout as ETIMEDOUT, a refused connection as ESOCKET "connect ECONNREFUSED …"), the answer must not be the
 * database's "503, try again" — the retry would only meet 409, the invitation being pending —
 * nor be logged as the database being away. The answer is 201 with `emailSent: false`.
 */

/** A TCP server that accepts SMTP connections and never greets: nodemailer's greeting timeout (ETIMEDOUT). */
async function startSilentSmtp(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface LogLine {
  level: number;
  msg: string;
  err?: { code?: string; message?: string };
  invitationId?: string;
}

function logCapture() {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

const invite = (t: TestGatehouse, as: TestUser, orgId: string, email: string) =>
  t.request('POST', `/api/user/organizations/${orgId}/invitations`, { as, body: { email, role: 'member' } });

/** The invitation was committed, answered 201 with emailSent: false, and the log names the mail, not the database. */
async function expectCommittedWithoutMail(t: TestGatehouse, logs: LogLine[], owner: TestUser, orgId: string, email: string, code: string, message: RegExp) {
  const res = await invite(t, owner, orgId, email);
  expect(res.status, res.text).toBe(201);
  expect(res.body.code).toBe('OK');
  expect(res.headers.get('retry-after')).toBeNull();
  expect(res.body.data).toMatchObject({ email, role: 'member', emailSent: false });
  expect(res.body.message).toMatch(/email could not be sent/);
  const stored = await t.deps.db.selectFrom('invitations').select(['id', 'revoked_at']).where('organization_id', '=', orgId).where('email', '=', email).execute();
  expect(stored).toEqual([{ id: res.body.data.id, revoked_at: null }]);

  expect(logs.filter((l) => /database/i.test(l.msg)), 'nothing says the database is away').toEqual([]);
  const failed = logs.filter((l) => l.msg === 'invitation email could not be sent');
  expect(failed).toHaveLength(1);
  expect(failed[0]!.err?.code).toBe(code);
  expect(failed[0]!.err?.message).toMatch(message);
  expect(failed[0]!.invitationId).toBe(res.body.data.id);

  // No "try again" that meets 409: the invitation is pending, and the answer says so.
  const again = await invite(t, owner, orgId, email);
  expect(again.status, again.text).toBe(409);
  return res.body.data.id as string;
}

describe(`an SMTP outage on invitation create is not a database outage, on ${ENGINE}`, () => {
  it('an SMTP server that never answers (ETIMEDOUT): 201 with emailSent false, the invitation exists, no 503, not logged as the database', async () => {
    const silent = await startSilentSmtp();
    const { lines, logger } = logCapture();
    const t = await createTestGatehouse({
      realMailer: true,
      logger,
      env: { SMTP_URL: `smtp://127.0.0.1:${silent.port}/?greetingTimeout=300&connectionTimeout=2000`, GATEHOUSE_EMAIL_FROM: 'Gatehouse Test <no-reply@gatehouse.test>' },
    });
    try {
      const owner = await t.signUp('owner@smtp-timeout.test');
      const orgId = await createOrg(t, owner, 'SMTP Timeout');
      lines.length = 0;
      await expectCommittedWithoutMail(t, lines, owner, orgId, 'invitee@smtp-timeout.test', 'ETIMEDOUT', /Greeting never received/);
    } finally {
      await t.destroy();
      await silent.close();
    }
  });

  describe('the real SMTP server stopped, then back', () => {
    let smtp: SmtpCatcher;
    let t: TestGatehouse;
    const { lines, logger } = logCapture();
    beforeAll(async () => {
      smtp = await startSmtpCatcher();
      t = await createTestGatehouse({ realMailer: true, logger, env: { SMTP_URL: smtp.url, GATEHOUSE_EMAIL_FROM: 'Gatehouse Test <no-reply@gatehouse.test>' } });
    });
    afterAll(async () => {
      await t.destroy();
    });

    it('the SMTP server is down (connection refused): 201 with emailSent false, no 503; once mail works, revoke and invite again sends it', async () => {
      const owner = await t.signUp('owner@smtp-down.test');
      const orgId = await createOrg(t, owner, 'SMTP Down');
      const port = smtp.port;
      await smtp.close();
      lines.length = 0;
      const id = await expectCommittedWithoutMail(t, lines, owner, orgId, 'invitee@smtp-down.test', 'ESOCKET', /ECONNREFUSED/);

      // Mail works again (on the port SMTP_URL names): the documented way out is revoke, then invite again.
      smtp = await startSmtpCatcher({ port });
      expect((await t.request('DELETE', `/api/user/organizations/${orgId}/invitations/${id}`, { as: owner })).status).toBe(200);
      const sent = await invite(t, owner, orgId, 'invitee@smtp-down.test');
      expect(sent.status, sent.text).toBe(201);
      expect(sent.body.data.emailSent).toBe(true);
      expect(sent.body.message).toBe('Invitation sent');
      const mail = await smtp.waitFor((m) => m.to.includes('invitee@smtp-down.test'));
      expect(mail.text).toContain('/invitations/');
      await smtp.close();
    });
  });
});

import { SMTPServer } from 'smtp-server';
import type { LimitSettings } from '../../src/http/rate-limit.js';
import { createTestGatehouse, type TestGatehouse } from './app.js';

/**
 * A real SMTP server (smtp-server) on 127.0.0.1 at a random port, no TLS, authentication optional
 * (or required, with the given credentials). It keeps every message it accepts, decoded just
 * enough to read a plain-text mail: headers unfolded, quoted-printable or base64 body decoded.
 */
export interface ReceivedMail {
  /** Envelope sender and recipients (MAIL FROM / RCPT TO). */
  from: string;
  to: string[];
  headers: Record<string, string>;
  subject: string;
  /** The decoded text body. */
  text: string;
  /** The message exactly as received (RFC 5322). */
  raw: string;
}

export interface SmtpCatcher {
  port: number;
  /** SMTP_URL for Gatehouse. */
  url: string;
  mails: ReceivedMail[];
  /** Logins the server accepted (user names). */
  logins: string[];
  /** The first mail (already received or arriving within timeoutMs) that matches. */
  waitFor(match: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  to(address: string): ReceivedMail[];
  close(): Promise<void>;
}

function decodeQuotedPrintable(body: string): string {
  const bytes: number[] = [];
  const soft = body.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const ch = soft[i]!;
    if (ch === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(ch, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words in a header (=?utf-8?Q?…?= / =?utf-8?B?…?=). */
function decodeHeader(value: string): string {
  return value.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=\s*/g, (_m, _charset: string, enc: string, text: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64').toString('utf8') : decodeQuotedPrintable(text.replace(/_/g, ' ')),
  );
}

export function parseMail(raw: string, envelope: { from: string; to: string[] }): ReceivedMail {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const idx = line.indexOf(':');
    if (idx > 0) headers[line.slice(0, idx).trim().toLowerCase()] = line.slice(idx + 1).trim();
  }
  const cte = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  const text = cte === 'quoted-printable' ? decodeQuotedPrintable(body) : cte === 'base64' ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : body;
  return { ...envelope, headers, subject: decodeHeader(headers.subject ?? ''), text: text.replace(/\r\n/g, '\n'), raw };
}

export async function startSmtpCatcher(options: { auth?: { user: string; pass: string }; port?: number } = {}): Promise<SmtpCatcher> {
  const mails: ReceivedMail[] = [];
  const logins: string[] = [];
  const waiters = new Set<() => void>();
  const server = new SMTPServer({
    secure: false,
    // Plain loopback SMTP: no STARTTLS offered (nodemailer would otherwise upgrade opportunistically).
    disabledCommands: options.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !options.auth,
    allowInsecureAuth: true,
    logger: false,
    size: 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) {
        logins.push(auth.username);
        return callback(null, { user: auth.username });
      }
      return callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        mails.push(parseMail(Buffer.concat(chunks).toString('utf8'), envelope));
        for (const w of [...waiters]) w();
        callback();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const addr = server.server.address();
      if (!addr || typeof addr === 'string') return reject(new Error('no port'));
      resolve(addr.port);
    });
  });
  const cred = options.auth ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.pass)}@` : '';
  return {
    port,
    url: `smtp://${cred}127.0.0.1:${port}`,
    mails,
    logins,
    to: (address) => mails.filter((m) => m.to.includes(address)),
    waitFor(match, timeoutMs = 5000) {
      const found = mails.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = mails.find(match);
          if (m) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching mail within ${timeoutMs} ms (received: ${mails.map((m) => `${m.to.join(',')}: ${m.subject}`).join(' | ') || 'none'})`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The first URL in a mail's text that starts with `prefix` (e.g. `${BASE_URL}/api/auth/magic-link/verify`). */
export function linkIn(mail: ReceivedMail, prefix: string): string {
  const url = mail.text.split(/\s+/).find((w) => w.startsWith(prefix));
  if (!url) throw new Error(`no link starting with ${prefix} in:\n${mail.text}`);
  return url;
}

/** The token query parameter of a link. */
export const tokenOf = (link: string) => new URL(link).searchParams.get('token') ?? '';

/** The path and query of a link (what to pass to request()). */
export const pathOf = (link: string) => {
  const u = new URL(link);
  return u.pathname + u.search;
};

export type SmtpTestGatehouse = TestGatehouse;

/**
 * A Gatehouse like test/helpers/app.ts builds, except that mail goes through the real mailer
 * (nodemailer over SMTP_URL) to `smtp`, not to an in-memory list.
 */
export function createSmtpTestGatehouse(
  smtp: Pick<SmtpCatcher, 'url'>,
  options: { rateLimits?: Partial<LimitSettings>; env?: Record<string, string> } = {},
): Promise<SmtpTestGatehouse> {
  return createTestGatehouse({
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    realMailer: true,
    env: { SMTP_URL: smtp.url, GATEHOUSE_EMAIL_FROM: 'Gatehouse Test <no-reply@gatehouse.test>', ...options.env },
  });
}

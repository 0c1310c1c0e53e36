import type { Transporter } from 'nodemailer';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/**
 * SMTP delivery through nodemailer when SMTP_URL is set; otherwise (SPEC §1) mails go to the log.
 * The log transport writes the body (it holds the link) only outside production, so a production
 * instance without SMTP never logs a token.
 */
export function createMailer(config: Pick<Config, 'smtpUrl' | 'emailFrom' | 'env'>, logger: Logger): Mailer {
  const smtpUrl = config.smtpUrl;
  if (smtpUrl) {
    // nodemailer is loaded with the first mail, not at start-up (idle memory, bench/startup.ts).
    let transport: Promise<Transporter> | null = null;
    return {
      async send(mail) {
        transport ??= import('nodemailer').then((m) => m.default.createTransport(smtpUrl));
        await (await transport).sendMail({ from: config.emailFrom, to: mail.to, subject: mail.subject, text: mail.text });
      },
    };
  }
  return {
    async send(mail) {
      if (config.env === 'production') {
        logger.warn({ mail: { to: mail.to, subject: mail.subject } }, 'SMTP_URL is not set: email not delivered');
      } else {
        logger.info({ mail: { to: mail.to, subject: mail.subject, body: mail.text } }, 'email (SMTP_URL unset, written to the log)');
      }
    },
  };
}

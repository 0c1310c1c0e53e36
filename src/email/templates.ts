/**
 * Plain-text mails Gatehouse sends. Each names what was asked for, carries the link and its
 * lifetime, and tells a recipient who did not ask that they can ignore it.
 */

export interface MailContent {
  subject: string;
  text: string;
}

const IGNORE = "If you didn't ask for this, you can ignore this email: nothing changes until the link is used.";

function lifetime(minutes: number): string {
  if (minutes % (24 * 60) === 0) {
    const days = minutes / (24 * 60);
    return days === 1 ? '24 hours' : `${days} days`;
  }
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return `${minutes} minutes`;
}

function host(baseUrl: string): string {
  try {
    return new URL(baseUrl).host;
  } catch {
    return baseUrl;
  }
}

export function magicLinkMail(input: { link: string; baseUrl: string; expiresInMinutes: number }): MailContent {
  return {
    subject: `Your sign-in link for ${host(input.baseUrl)}`,
    text:
      `Hello,\n\n` +
      `Use this link to sign in to ${host(input.baseUrl)}. If you have no account yet, it creates one for this email address.\n\n` +
      `${input.link}\n\n` +
      `The link works once and expires in ${lifetime(input.expiresInMinutes)}.\n\n` +
      `${IGNORE}\n`,
  };
}

export function passwordResetMail(input: { link: string; baseUrl: string; expiresInMinutes: number }): MailContent {
  return {
    subject: `Reset your password for ${host(input.baseUrl)}`,
    text:
      `Hello,\n\n` +
      `Someone asked to reset the password of the account with this email address at ${host(input.baseUrl)}. ` +
      `Open this link to choose a new password:\n\n` +
      `${input.link}\n\n` +
      `The link works once and expires in ${lifetime(input.expiresInMinutes)}. ` +
      `Setting a new password signs you out everywhere.\n\n` +
      `${IGNORE}\n`,
  };
}

/** Sent instead of a reset link when the user's organization requires SSO: no password can be set. */
export function passwordResetSsoMail(input: { ssoUrl: string; organizationName: string | null; baseUrl: string }): MailContent {
  const who = input.organizationName ? `Your organization, ${input.organizationName},` : 'Your organization';
  return {
    subject: `Sign in to ${host(input.baseUrl)} with your organization's single sign-on`,
    text:
      `Hello,\n\n` +
      `Someone asked to reset the password of the account with this email address at ${host(input.baseUrl)}. ` +
      `${who} requires signing in with its single sign-on (SSO), so passwords are not used and no reset link was created.\n\n` +
      `Sign in here instead:\n\n` +
      `${input.ssoUrl}\n\n` +
      `If you cannot sign in through SSO, contact your organization's administrator.\n\n` +
      `If you didn't ask for this, you can ignore this email: nothing has changed.\n`,
  };
}

export function emailVerificationMail(input: { link: string; baseUrl: string; expiresInMinutes: number }): MailContent {
  return {
    subject: `Verify your email address for ${host(input.baseUrl)}`,
    text:
      `Hello,\n\n` +
      `Please confirm that this email address belongs to your account at ${host(input.baseUrl)} by opening this link:\n\n` +
      `${input.link}\n\n` +
      `The link works once and expires in ${lifetime(input.expiresInMinutes)}.\n\n` +
      `${IGNORE}\n`,
  };
}

import { html } from 'hono/html';
import { errorParagraph, layout, pageHref, ssoHref } from './layout.js';

export type SignInStep = 'email' | 'password' | 'sso' | 'mfa';

export interface SignInView {
  returnTo: string;
  email: string;
  step: SignInStep;
  /** Set when step is 'sso' (server-side discovery of an email given in the URL). */
  sso?: { url: string; organizationName: string | null } | null;
  /** A server-side problem to show in the alert region. */
  error?: string | null;
}

/**
 * `/sign-in`. Without JavaScript the email form still works (GET /sign-in?email= runs discovery
 * on the server and renders the SSO link or the password step); the password, magic-link and MFA
 * steps call the JSON API from /assets/sign-in.js. Inputs whose values are secrets have no `name`,
 * so a script-less submit can never put them in a URL.
 */
export function signInPage(v: SignInView) {
  const step = v.step;
  const orgName = v.sso?.organizationName ?? null;
  const body = html`
<form id="sign-in-form" method="get" action="/sign-in" aria-labelledby="sign-in-legend">
<fieldset>
<legend id="sign-in-legend">Sign in with your work email</legend>
${v.returnTo !== '/' ? html`<input type="hidden" name="returnTo" value="${v.returnTo}">` : ''}
<div class="field">
<label for="email">Email address</label>
<input id="email" name="email" type="email" data-field="email" autocomplete="username" inputmode="email" spellcheck="false" autocapitalize="none" required maxlength="254" value="${v.email}"${step === 'email' ? html` autofocus` : ''}${step === 'password' || step === 'sso' ? html` readonly` : ''}>
</div>
<button type="submit" id="continue" class="primary-action"${step === 'email' ? '' : html` hidden`}>Continue</button>
</fieldset>

<div id="sso-step" class="sso"${step === 'sso' ? '' : html` hidden`}>
<p id="sso-text">${orgName ? `${orgName} manages sign-in for this email address. You will be sent to its sign-in page.` : 'Your organization manages sign-in for this email address.'}</p>
<a id="sso-link" class="button" href="${v.sso ? ssoHref(v.sso.url, v.returnTo) : '#'}">${orgName ? `Continue with ${orgName} SSO` : 'Continue with single sign-on'}</a>
</div>

<fieldset id="password-step"${step === 'password' ? '' : html` hidden`}>
<legend>Enter your password</legend>
<div class="field">
<label for="password">Password</label>
<input id="password" type="password" data-field="password" autocomplete="current-password" maxlength="256">
</div>
<noscript><p><strong>Note:</strong> signing in with a password needs JavaScript. Turn it on and reload this page.</p></noscript>
<button type="submit" id="sign-in-button" class="primary-action">Sign in</button>
<div class="actions">
<button type="button" id="magic-link" class="secondary">Email me a sign-in link</button>
<button type="button" id="forgot" class="link">Forgot password?</button>
<button type="button" id="change-email" class="link">Use a different email</button>
</div>
</fieldset>
</form>

<form id="mfa-form" hidden>
<fieldset>
<legend>Two-step verification</legend>
<div class="field" id="totp-field">
<label for="code">6-digit code</label>
<input id="code" type="text" data-field="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" aria-describedby="code-hint">
<span class="hint" id="code-hint">From your authenticator app.</span>
</div>
<div class="field" id="recovery-field" hidden>
<label for="recovery-code">Recovery code</label>
<input id="recovery-code" type="text" data-field="recoveryCode" autocomplete="one-time-code" spellcheck="false" autocapitalize="none" maxlength="64" aria-describedby="recovery-hint">
<span class="hint" id="recovery-hint">One of the ten codes you saved when you set up two-step verification. Each works once.</span>
</div>
<button type="submit" id="verify" class="primary-action">Verify</button>
<div class="actions">
<button type="button" id="toggle-recovery" class="link" aria-expanded="false" aria-controls="recovery-field">Use a recovery code instead</button>
</div>
</fieldset>
</form>

<p class="foot" id="sign-up-link">No account yet? <a href="${pageHref('/sign-up', { returnTo: v.returnTo, email: v.email || null })}">Create an account</a></p>`;
  return layout({
    title: 'Sign in',
    pageId: 'sign-in-page',
    returnTo: v.returnTo,
    step,
    script: '/assets/sign-in.js',
    body,
    serverError: v.error ? errorParagraph(v.error) : null,
  });
}

/** `/sign-in` or `/sign-up` with a returnTo that is not allowed: the error, and nothing to submit (SPEC §11). */
export function refusedReturnToPage(title: string, message: string) {
  return layout({
    title,
    pageId: 'refused-page',
    returnTo: '/',
    body: html`<p>The application that sent you here asked Gatehouse to return you to an address it does not trust, so sign-in cannot start. Go back and try again, or tell the application's administrator (the address must be a relative path or on an origin listed in <code>GATEHOUSE_TRUSTED_ORIGINS</code>).</p>`,
    serverError: errorParagraph(message),
  });
}

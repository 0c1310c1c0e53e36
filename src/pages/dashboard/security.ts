import { html } from 'hono/html';
import { apiForm, checkbox, orgApi, sectionHref, type Html } from './frame.js';
import type { SectionInput, SectionPage } from './section.js';
import { lastTestOf, savedConnection } from './sso-data.js';

/** Why "SSO required" is not offered, or null when it is (SPEC §5: only while the saved connection's last test passed). */
export function ssoNotOfferedReason(conn: { enabled: boolean } | null, last: { ok: boolean } | null): string | null {
  if (!conn) return 'This organization has no SSO connection yet.';
  if (!conn.enabled) return 'The SSO connection is disabled.';
  if (!last) return 'The saved SSO connection has not been tested yet.';
  if (!last.ok) return 'The last test of the saved SSO connection failed.';
  return null;
}

function radio(name: string, value: string, label: string, hint: string, checked: boolean): Html {
  const id = `auth-${value}`;
  return html`<div class="radio"><input type="radio" id="${id}" name="${name}" value="${value}" aria-describedby="${id}-hint"${checked ? html` checked` : ''}><label for="${id}">${label}</label><span class="hint" id="${id}-hint">${hint}</span></div>`;
}

/** Security section (owner): the sign-in policy, with the lock-out warning and the break-glass way back. */
export async function securitySection({ services, ctx, org, viewer }: SectionInput): Promise<SectionPage> {
  const settings = await services.policy.getSecurity(ctx, org.id);
  const conn = await savedConnection(services, ctx, org.id);
  const reason = ssoNotOfferedReason(conn, lastTestOf(conn));
  const offered = reason === null || settings.authRequired === 'sso';
  const api = orgApi(org.id, '/settings/security');
  const curl = `curl -X PUT -H 'X-Api-Key: gk_…' -H 'content-type: application/json' -d '{"authRequired":"any"}' ${viewer.baseUrl}${api}`;
  const body = html`<fieldset class="group" aria-describedby="auth-required-error"><legend>Members must sign in with</legend>
${radio('authRequired', 'any', 'Any method', 'Password, magic link or SSO.', settings.authRequired === 'any')}
${radio('authRequired', 'mfa', 'Two-step verification', 'Password sign-ins need a second factor; SSO counts as complete.', settings.authRequired === 'mfa')}
${offered ? radio('authRequired', 'sso', 'Single sign-on only', 'Password, magic link and password reset are refused for members and for your verified domains.', settings.authRequired === 'sso') : ''}
<span class="field-error" id="auth-required-error"></span>
</fieldset>
${offered ? '' : html`<p class="notice" id="sso-not-offered">"Single sign-on only" is offered once the SSO connection works: ${reason} <a href="${sectionHref(org.id, 'sso')}">Configure and test SSO</a>.</p>`}
${checkbox({ name: 'requireMfa', label: 'Also require two-step verification for password sign-ins', checked: settings.requireMfa })}`;
  return {
    title: 'Security',
    body: html`<section class="card warning-box" aria-labelledby="lockout-heading">
<h2 id="lockout-heading">Before you raise the policy</h2>
<p><strong>Warning:</strong> with "Single sign-on only", everyone — you included — must sign in through your IdP. If the IdP breaks, nobody can sign in with a password. Keep a break-glass API key (create one under <a href="${sectionHref(org.id, 'api-keys')}">API keys</a> and store it safely): API keys are not subject to the policy, so it can always lower it again:</p>
<pre id="break-glass"><code>${curl}</code></pre>
</section>
<section class="card" aria-labelledby="policy-heading"><h2 id="policy-heading">Sign-in policy</h2>
<p>Currently: <strong id="current-policy">${settings.authRequired}</strong>${settings.requireMfa ? ' with two-step verification required' : ''}.</p>
${apiForm({ id: 'security-form', api: `PUT ${api}`, label: 'Sign-in policy', submit: 'Save policy', flash: 'Security settings saved.', body, confirm: 'Require single sign-on for everyone in the organization, you included? Keep a break-glass API key to lower it again if the IdP fails.', confirmIf: 'authRequired=sso' })}
</section>`,
  };
}

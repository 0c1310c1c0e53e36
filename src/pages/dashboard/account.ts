import { html } from 'hono/html';
import { apiButton, fmtTime, nextPageLink, type Html } from './frame.js';
import { cursorOf, type AccountInput, type SectionPage } from './section.js';

const METHOD_WORDS: Record<string, string> = { password: 'password', magic_link: 'magic link', passkey: 'passkey', social: 'social sign-in', sso: 'single sign-on' };

function mfaBlock(status: { totp: { enrolled: boolean; confirmedAt: string | null; enrollmentPending: boolean }; recoveryCodesRemaining: number }): Html {
  if (status.totp.enrolled) {
    return html`<p id="mfa-state">Two-step verification is <strong>on</strong> (since ${fmtTime(status.totp.confirmedAt)}). Recovery codes left: ${status.recoveryCodesRemaining}.</p>
<div class="actions">
${apiButton({ api: 'POST /api/auth/mfa/recovery-codes', label: 'New recovery codes', after: 'recovery-codes', output: 'mfa-output', confirm: 'Replace your recovery codes? The old ones stop working.' })}
${apiButton({ api: 'DELETE /api/auth/mfa/totp', label: 'Turn off two-step verification', className: 'danger', confirm: 'Turn off two-step verification? Signing in will need only your password.', flash: 'Two-step verification turned off.' })}
</div>
<div id="mfa-output" class="form-output" aria-live="polite"></div>`;
  }
  return html`<p id="mfa-state">Two-step verification is <strong>off</strong>.${status.totp.enrollmentPending ? ' An enrolment was started and not confirmed: start again.' : ''}</p>
<div class="actions">${apiButton({ api: 'POST /api/auth/mfa/totp/enroll', label: 'Set up two-step verification', className: 'primary', after: 'totp-enroll', output: 'totp-enrolment' })}</div>
<div id="totp-enrolment" class="form-output" aria-live="polite"></div>
<form id="totp-confirm-form" class="api-form" data-api="POST /api/auth/mfa/totp/confirm" data-after="recovery-codes" aria-label="Confirm two-step verification" novalidate hidden>
<div class="form-alert error" role="alert" tabindex="-1" data-alert></div>
<div class="field"><label for="totp-code">6-digit code from your authenticator app</label>
<input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" aria-describedby="totp-code-error"><span class="field-error" id="totp-code-error"></span></div>
<div class="actions"><button type="submit">Confirm</button></div>
<div class="form-output" data-output aria-live="polite"></div>
</form>`;
}

/** `/dashboard/account`: the user's own sessions and two-step verification. */
export async function accountSection({ services, ctx, viewer, query }: AccountInput): Promise<SectionPage> {
  const p = ctx.principal;
  const currentId = p?.kind === 'session' ? p.session.id : null;
  const [sessions, mfa] = await Promise.all([
    services.sessions.list(ctx, viewer.userId, currentId, { limit: 50, cursor: cursorOf(query) }),
    services.mfa.status(viewer.userId),
  ]);
  const rows = sessions.items.map((s) => html`<tr>
<th scope="row">${METHOD_WORDS[s.authMethod] ?? s.authMethod}${s.current ? html` <span class="badge">this browser</span>` : ''}</th>
<td>${fmtTime(s.createdAt)}</td><td>${fmtTime(s.lastSeenAt)}</td><td>${s.ip ?? '—'}</td><td class="ua">${s.userAgent ?? '—'}</td><td>${s.mfa}</td>
<td>${s.current ? html`<button type="button" class="secondary" data-sign-out>Sign out</button>` : apiButton({ api: `DELETE /api/user/sessions/${s.id}`, label: 'Revoke', className: 'danger', accessibleName: `Revoke the session from ${fmtTime(s.createdAt)}`, confirm: 'End this session? That browser is signed out.', flash: 'Session revoked.' })}</td>
</tr>`);
  return {
    title: 'My account',
    body: html`<section class="card" aria-labelledby="profile-heading"><h2 id="profile-heading">Profile</h2>
<dl class="facts"><dt>Email</dt><dd>${viewer.email}</dd><dt>Name</dt><dd>${viewer.name ?? '—'}</dd></dl></section>
<section class="card" aria-labelledby="mfa-heading"><h2 id="mfa-heading">Two-step verification</h2>${mfaBlock(mfa)}</section>
<section class="card" aria-labelledby="sessions-heading"><h2 id="sessions-heading">Sessions</h2>
<div class="table-wrap"><table id="sessions-table"><caption>Where you are signed in</caption><thead><tr><th scope="col">Method</th><th scope="col">Started</th><th scope="col">Last seen</th><th scope="col">IP</th><th scope="col">Browser</th><th scope="col">MFA</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody></table></div>
${nextPageLink('/dashboard/account', {}, sessions.nextCursor)}
</section>`,
  };
}

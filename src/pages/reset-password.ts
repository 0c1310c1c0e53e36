import { html } from 'hono/html';
import { layout } from './layout.js';

/**
 * GET /reset-password?token=… — the page the password-reset mail links to. It holds no secret
 * itself: its script reads the token from the address bar, removes it from the address (history),
 * and posts {token, password} as JSON to POST /api/auth/password/reset. Shared page frame: the
 * alert and status regions (#error, #status) come from layout().
 */
export function resetPasswordPage() {
  return layout({
    title: 'Choose a new password',
    pageId: 'reset-password-page',
    returnTo: '/',
    step: 'password',
    script: '/assets/reset-password.js',
    body: html`<form id="reset-form" novalidate>
<div class="field">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="8" maxlength="256" required>
</div>
<div class="field">
<label for="confirm">Repeat the new password</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="8" maxlength="256" required>
</div>
<button type="submit" class="primary-action">Set new password</button>
</form>
<p class="meta">At least 8 characters. Setting a new password signs you out on every device.</p>
<p class="foot"><a href="/sign-in">Back to sign-in</a></p>`,
  });
}

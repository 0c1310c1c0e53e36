import { html } from 'hono/html';
import { layout, pageHref } from './layout.js';

/** `/sign-up`: email, name, password; the script posts them to POST /api/auth/sign-up/email. */
export function signUpPage(v: { returnTo: string; email: string; name: string }) {
  const body = html`
<form id="sign-up-form" method="get" action="/sign-up">
<fieldset>
<legend>Create your account</legend>
${v.returnTo !== '/' ? html`<input type="hidden" name="returnTo" value="${v.returnTo}">` : ''}
<div class="field">
<label for="email">Email address</label>
<input id="email" name="email" type="email" data-field="email" autocomplete="username" inputmode="email" spellcheck="false" autocapitalize="none" required maxlength="254" value="${v.email}" autofocus>
</div>
<div class="field">
<label for="name">Full name <span class="hint">(optional)</span></label>
<input id="name" name="name" type="text" data-field="name" autocomplete="name" maxlength="200" value="${v.name}">
</div>
<div class="field">
<label for="new-password">Password</label>
<input id="new-password" type="password" data-field="password" autocomplete="new-password" required minlength="8" maxlength="256" aria-describedby="password-hint">
<span class="hint" id="password-hint">At least 8 characters.</span>
</div>
<noscript><p><strong>Note:</strong> creating an account needs JavaScript. Turn it on and reload this page.</p></noscript>
<button type="submit" id="create-account" class="primary-action">Create account</button>
</fieldset>
</form>
<p class="foot">Already have an account? <a href="${pageHref('/sign-in', { returnTo: v.returnTo, email: v.email || null })}">Sign in</a></p>`;
  return layout({ title: 'Create an account', pageId: 'sign-up-page', returnTo: v.returnTo, script: '/assets/sign-up.js', body });
}

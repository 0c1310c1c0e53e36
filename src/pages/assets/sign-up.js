// /sign-up: email, name, password → POST /api/auth/sign-up/email → returnTo.
// Served from /assets/sign-up.js (no inline script: CSP script-src 'self').
import { busy, clearMessages, describe, go, markInvalid, postJson, returnTo, showError } from './common.js';

const root = document.getElementById('sign-up-page');
const target = returnTo(root);
const errorRegion = document.getElementById('error');
const statusRegion = document.getElementById('status');
const form = document.getElementById('sign-up-form');
const email = document.getElementById('email');
const name = document.getElementById('name');
const password = document.getElementById('new-password');

function signInHref() {
  const q = new URLSearchParams();
  if (email.value.trim()) q.set('email', email.value.trim());
  if (target !== '/') q.set('returnTo', target);
  const s = q.toString();
  return s ? `/sign-in?${s}` : '/sign-in';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!form.checkValidity()) {
    form.reportValidity();
    return;
  }
  clearMessages(errorRegion, statusRegion);
  const body = { email: email.value.trim(), password: password.value };
  if (name.value.trim()) body.name = name.value.trim();
  const result = await busy(form, () => postJson('/api/auth/sign-up/email', body));
  if (result.ok) {
    go(target);
    return;
  }
  markInvalid(form, result);
  if (result.code === 'CONFLICT') {
    email.setAttribute('aria-invalid', 'true');
    showError(errorRegion, ['An account with this email already exists.', { href: signInHref(), text: 'Sign in instead', id: 'sign-in-instead' }]);
    return;
  }
  showError(errorRegion, describe(result, target));
});

// Gatehouse /reset-password: post the token from the link and the new password to the API.
const params = new URLSearchParams(window.location.search);
const token = params.get('token') || '';
// Keep the token out of the history and out of any later Referer.
if (token) window.history.replaceState(null, '', window.location.pathname);
const form = document.getElementById('reset-form');
const errorBox = document.getElementById('error');
const statusBox = document.getElementById('status');
function say(box, text, link) {
  errorBox.replaceChildren();
  statusBox.replaceChildren();
  const p = document.createElement('p');
  p.textContent = text;
  box.append(p);
  if (link) {
    const a = document.createElement('a');
    a.href = link.href;
    a.textContent = link.text;
    box.append(a);
  }
  box.focus();
}
if (!token) {
  say(errorBox, 'This page needs the link from the password reset email. Ask for a new one from the sign-in page.', { href: '/sign-in', text: 'Go to sign-in' });
  form.hidden = true;
}
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const password = form.elements.password.value;
  if (password.length < 8) return say(errorBox, 'The password must be at least 8 characters.');
  if (password !== form.elements.confirm.value) return say(errorBox, 'The two passwords differ.');
  const button = form.querySelector('button');
  button.disabled = true;
  let res;
  let body = null;
  try {
    res = await fetch('/api/auth/password/reset', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token, password }),
      credentials: 'same-origin',
    });
    body = await res.json().catch(() => null);
  } catch {
    button.disabled = false;
    return say(errorBox, 'Gatehouse could not be reached. Check your connection and try again.');
  }
  button.disabled = false;
  if (res.ok && body && body.success) {
    form.hidden = true;
    return say(statusBox, 'Your password is changed and you are signed out everywhere. Sign in with the new password.', { href: '/sign-in', text: 'Sign in' });
  }
  const code = body && body.code;
  if (code === 'INVALID_TOKEN') {
    form.hidden = true;
    return say(errorBox, 'This reset link is invalid, already used or expired. Ask for a new one from the sign-in page.', { href: '/sign-in', text: 'Go to sign-in' });
  }
  if (code === 'SSO_REQUIRED' && body.details && typeof body.details.ssoUrl === 'string' && body.details.ssoUrl.startsWith('/')) {
    form.hidden = true;
    return say(errorBox, 'Your organization requires single sign-on, so a password cannot be set.', { href: body.details.ssoUrl, text: 'Continue with single sign-on' });
  }
  const issues = body && body.details && Array.isArray(body.details.issues) ? body.details.issues.map((i) => i.message).join('; ') : '';
  say(errorBox, (body && body.message ? body.message : 'Unexpected answer (HTTP ' + res.status + ').') + (issues ? ' ' + issues : ''));
});

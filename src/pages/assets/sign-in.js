// /sign-in: email → discover → SSO, or password / magic link / forgot password → MFA → returnTo.
// Served from /assets/sign-in.js (no inline script: CSP script-src 'self').
import { busy, clearMessages, describe, go, markInvalid, postJson, returnTo, showError, showStatus, withReturnTo } from './common.js';

const root = document.getElementById('sign-in-page');
const target = returnTo(root);
const errorRegion = document.getElementById('error');
const statusRegion = document.getElementById('status');
const form = document.getElementById('sign-in-form');
const email = document.getElementById('email');
const continueButton = document.getElementById('continue');
const ssoStep = document.getElementById('sso-step');
const ssoLink = document.getElementById('sso-link');
const ssoText = document.getElementById('sso-text');
const passwordStep = document.getElementById('password-step');
const password = document.getElementById('password');
const changeEmail = document.getElementById('change-email');
const magicLinkButton = document.getElementById('magic-link');
const forgotButton = document.getElementById('forgot');
const mfaForm = document.getElementById('mfa-form');
const totpField = document.getElementById('totp-field');
const recoveryField = document.getElementById('recovery-field');
const code = document.getElementById('code');
const recoveryCode = document.getElementById('recovery-code');
const toggleRecovery = document.getElementById('toggle-recovery');
const signUpLink = document.getElementById('sign-up-link');

let step = root.dataset.step || 'email';
let usingRecovery = false;

function fail(result) {
  if (result.code === 'VALIDATION_FAILED') markInvalid(form, result);
  showError(errorRegion, describe(result, target));
}

function showEmailStep() {
  step = 'email';
  email.readOnly = false;
  passwordStep.hidden = true;
  ssoStep.hidden = true;
  continueButton.hidden = false;
  password.value = '';
  password.required = false;
  clearMessages(errorRegion, statusRegion);
  email.focus();
}

function showPasswordStep() {
  step = 'password';
  email.readOnly = true;
  continueButton.hidden = true;
  ssoStep.hidden = true;
  passwordStep.hidden = false;
  password.required = true;
  password.focus();
}

function showSso(discovery, automatic) {
  step = 'sso';
  email.readOnly = true;
  continueButton.hidden = true;
  passwordStep.hidden = true;
  const name = discovery.organization && discovery.organization.name;
  ssoLink.textContent = name ? `Continue with ${name} SSO` : 'Continue with single sign-on';
  ssoLink.href = withReturnTo(discovery.url, target);
  ssoText.textContent = name
    ? `${name} manages sign-in for this email address. You will be sent to its sign-in page.`
    : 'Your organization manages sign-in for this email address. You will be sent to its sign-in page.';
  ssoStep.hidden = false;
  if (automatic) showStatus(statusRegion, 'Redirecting…', `Taking you to ${name || 'your organization'}'s sign-in page.`, false);
  // Focus stays on the button: if the redirect does not happen, Enter takes the user there.
  ssoLink.focus();
  if (automatic) window.location.assign(ssoLink.href);
}

function showMfaStep() {
  step = 'mfa';
  form.hidden = true;
  if (signUpLink) signUpLink.hidden = true;
  mfaForm.hidden = false;
  clearMessages(errorRegion);
  showStatus(statusRegion, 'One more step.', 'Enter the 6-digit code from your authenticator app.', false);
  code.focus();
}

async function discover() {
  if (!email.checkValidity()) {
    email.reportValidity();
    return;
  }
  clearMessages(errorRegion, statusRegion);
  const result = await busy(form, () => postJson('/api/auth/sign-in/discover', { email: email.value.trim() }));
  if (!result.ok) return fail(result);
  if (result.data.method === 'sso') return showSso(result.data, true);
  const methods = Array.isArray(result.data.methods) ? result.data.methods : ['password'];
  magicLinkButton.hidden = !methods.includes('magic_link');
  showPasswordStep();
}

async function signIn() {
  if (!password.value) {
    password.setAttribute('aria-invalid', 'true');
    showError(errorRegion, ['Enter your password.']);
    return;
  }
  clearMessages(errorRegion, statusRegion);
  const result = await busy(form, () => postJson('/api/auth/sign-in/email', { email: email.value.trim(), password: password.value }));
  if (!result.ok) {
    if (result.code === 'INVALID_CREDENTIALS') password.setAttribute('aria-invalid', 'true');
    password.value = '';
    return fail(result);
  }
  password.removeAttribute('aria-invalid');
  if (result.data.session && result.data.session.mfa === 'pending') return showMfaStep();
  go(target);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (step === 'email') void discover();
  else if (step === 'password') void signIn();
  else if (step === 'sso') window.location.assign(ssoLink.href);
});

changeEmail.addEventListener('click', showEmailStep);

magicLinkButton.addEventListener('click', async () => {
  clearMessages(errorRegion, statusRegion);
  const address = email.value.trim();
  const body = target === '/' ? { email: address } : { email: address, returnTo: target };
  const result = await busy(form, () => postJson('/api/auth/magic-link', body));
  if (!result.ok) return fail(result);
  showStatus(statusRegion, 'Check your email.', `If ${address} can sign in here, we sent it a sign-in link. The link works once and expires in 15 minutes.`);
});

forgotButton.addEventListener('click', async () => {
  clearMessages(errorRegion, statusRegion);
  const address = email.value.trim();
  const result = await busy(form, () => postJson('/api/auth/password/forgot', { email: address }));
  if (!result.ok) return fail(result);
  showStatus(statusRegion, 'Check your email.', `If an account exists for ${address}, we sent it a link to reset the password.`);
});

toggleRecovery.addEventListener('click', () => {
  usingRecovery = !usingRecovery;
  totpField.hidden = usingRecovery;
  recoveryField.hidden = !usingRecovery;
  code.required = !usingRecovery;
  recoveryCode.required = usingRecovery;
  toggleRecovery.textContent = usingRecovery ? 'Use a code from your authenticator app' : 'Use a recovery code instead';
  toggleRecovery.setAttribute('aria-expanded', String(usingRecovery));
  clearMessages(errorRegion);
  (usingRecovery ? recoveryCode : code).focus();
});

mfaForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = usingRecovery ? recoveryCode : code;
  const value = input.value.replace(/\s+/g, '');
  if (!usingRecovery && !/^[0-9]{6}$/.test(value)) {
    input.setAttribute('aria-invalid', 'true');
    showError(errorRegion, ['Enter the 6-digit code from your authenticator app.']);
    return;
  }
  if (usingRecovery && !value) {
    input.setAttribute('aria-invalid', 'true');
    showError(errorRegion, ['Enter one of your recovery codes.']);
    return;
  }
  clearMessages(errorRegion, statusRegion);
  const result = await busy(mfaForm, () => postJson('/api/auth/mfa/verify', usingRecovery ? { recoveryCode: value } : { code: value }));
  if (!result.ok) {
    input.value = '';
    input.setAttribute('aria-invalid', 'true');
    if (result.code === 'UNAUTHENTICATED') {
      showError(errorRegion, ['Your sign-in expired. Sign in again.', { href: window.location.pathname + window.location.search, text: 'Start again' }]);
      return;
    }
    const known = ['RATE_LIMITED', 'NETWORK', 'CSRF_REJECTED'].includes(result.code) || result.status >= 500;
    showError(errorRegion, known ? describe(result, target) : [usingRecovery ? 'That recovery code is not valid or was already used.' : 'That code is not valid. Check your authenticator app and try again.']);
    return;
  }
  input.removeAttribute('aria-invalid');
  go(target);
});

// The server may render a later step (a pending-MFA session, or an email given in the URL).
if (step === 'mfa') showMfaStep();
else if (step === 'password') showPasswordStep();
else if (step === 'sso') ssoLink.focus();
// An error the server rendered (e.g. a malformed email in the URL) gets the focus like any other.
if (errorRegion.textContent.trim()) errorRegion.focus();

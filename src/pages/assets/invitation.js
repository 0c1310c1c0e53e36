// /invitations/{token}: accept the invitation through the JSON API (same origin, the session
// cookie), or sign out when the wrong account is signed in. Served from /assets/invitation.js.
import { busy, clearMessages, describe, go, postJson, showError, showStatus } from './common.js';

const errorRegion = document.getElementById('error');
const statusRegion = document.getElementById('status');
const acceptForm = document.getElementById('accept-form');
const signOutForm = document.getElementById('sign-out-form');

if (acceptForm) {
  acceptForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearMessages(errorRegion, statusRegion);
    const token = acceptForm.dataset.token || '';
    const result = await busy(acceptForm, () => postJson(`/api/user/invitations/${encodeURIComponent(token)}/accept`, {}));
    if (result.ok) {
      showStatus(statusRegion, 'Invitation accepted.', 'Taking you to Gatehouse…');
      acceptForm.hidden = true;
      go('/');
      return;
    }
    if (result.code === 'INVALID_TOKEN') {
      acceptForm.hidden = true;
      showError(errorRegion, ['This invitation has expired, was already used or was withdrawn. Ask an administrator of the organization to send you a new one.']);
      return;
    }
    if (result.code === 'UNAUTHENTICATED') {
      showError(errorRegion, ['Your session has ended. Reload this page to sign in again.']);
      return;
    }
    if (result.code === 'CONFLICT') acceptForm.hidden = true;
    showError(errorRegion, describe(result, '/'));
  });
}

if (signOutForm) {
  signOutForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearMessages(errorRegion, statusRegion);
    const result = await busy(signOutForm, () => postJson('/api/auth/sign-out', {}));
    // Signed out (or already signed out): sign in as the invited address, coming back here.
    if (result.ok || result.code === 'UNAUTHENTICATED') {
      go(signOutForm.dataset.signIn);
      return;
    }
    showError(errorRegion, describe(result, '/'));
  });
}

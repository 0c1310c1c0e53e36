import { html } from 'hono/html';
import { layout } from './layout.js';

/**
 * Where an IdP sends the browser back after signing it out (SPEC §8 "Signing out of the IdP":
 * the `post_logout_redirect_uri`, the SAML LogoutResponse landing). It shows nothing of the
 * request: `state` and any other parameter are ignored, so nothing an IdP or a link adds is
 * reflected.
 */
export function signedOutPage(signInPath: string) {
  return layout({
    title: 'You are signed out',
    pageId: 'signed-out-page',
    returnTo: '/',
    step: 'signed-out',
    body: html`<p>You have been signed out of Gatehouse and of your organization's identity provider.</p>
<p><a href="${signInPath}">Sign in again</a></p>
`,
  });
}

import { auth0 } from './auth0.js';
import { entra } from './entra.js';
import { google } from './google.js';
import { oidc } from './oidc.js';
import { okta } from './okta.js';
import { onelogin } from './onelogin.js';
import { saml } from './saml.js';
import type { IdpGuide, IdpId } from './types.js';

/** Every IdP guide of the setup wizard, by id, in the order the choice page lists them. */
export const GUIDES: Record<IdpId, IdpGuide> = { okta, entra, google, onelogin, auth0, oidc, saml };

import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { PasswordHasher } from './crypto/passwords.js';
import type { KeyRing } from './crypto/keyring.js';
import type { DatabaseHandle, Db } from './db/database.js';
import type { Mailer } from './email/mailer.js';
import type { RateLimits } from './http/rate-limit.js';
import type { Logger } from './logger.js';
import { createAuditService } from './audit/service.js';
import { createApiKeyService } from './api-keys/service.js';
import { createInvitationService } from './organizations/invitations.js';
import { createMemberService } from './organizations/members.js';
import { createOrganizationService } from './organizations/service.js';
import { createSessionService } from './sessions/service.js';
import { createAccountService } from './users/service.js';

/** Everything a service may depend on, built once at start-up (no module-level singletons). */
export interface Deps {
  config: Config;
  database: DatabaseHandle;
  db: Db;
  clock: Clock;
  keyring: KeyRing;
  logger: Logger;
  passwords: PasswordHasher;
  rateLimits: RateLimits;
  mailer: Mailer;
}

export function createServices(deps: Deps) {
  const audit = createAuditService(deps);
  const sessions = createSessionService({ ...deps, audit });
  const organizations = createOrganizationService({ ...deps, audit });
  const members = createMemberService({ ...deps, audit, organizations });
  const invitations = createInvitationService({ ...deps, audit, organizations });
  const apiKeys = createApiKeyService({ ...deps, audit, organizations });
  const accounts = createAccountService({ ...deps, audit, sessions });
  return { audit, sessions, organizations, members, invitations, apiKeys, accounts };
}

export type Services = ReturnType<typeof createServices>;

import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * One type for every table. The same columns exist on SQLite and PostgreSQL:
 * ids are ULID text, times are ISO-8601 UTC text (sortable), booleans are 0/1 integers,
 * structured values are JSON text that only their store parses (with a zod schema).
 */
export type Bool = 0 | 1;

export interface UsersTable {
  id: string;
  email: string; // lower-cased
  name: string | null;
  password_hash: string | null;
  email_verified: Bool;
  is_superadmin: Bool;
  created_at: string;
  updated_at: string;
}

export type AuthMethod = 'password' | 'magic_link' | 'passkey' | 'social' | 'sso';
export type MfaState = 'none' | 'pending' | 'complete';

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  auth_method: AuthMethod;
  connection_id: string | null;
  organization_id: string | null;
  mfa_state: MfaState;
  mfa_completed_at: string | null;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
  last_seen_at: string;
  /** Idle expiry (slides forward, never past absolute_expires_at). */
  expires_at: string;
  absolute_expires_at: string;
  revoked_at: string | null;
  /** The SSO identity the session came from (SSO sessions only). */
  identity_id: string | null;
  /** The IdP's session: OIDC `sid` of the ID token, SAML `SessionIndex` (back-channel logout, SLO). */
  idp_session_id: string | null;
  /** Sealed JSON (IdpLogoutHint): what signing out of the IdP needs (sessions/idp-session.ts). */
  idp_logout_enc: string | null;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  key_hash: string;
  /** First characters of the key, shown in lists so a user can tell keys apart. */
  key_prefix: string;
  scopes: string | null; // JSON array or null = the user's full access
  organization_id: string | null;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
  revoked_at: string | null;
}

export type Role = 'owner' | 'admin' | 'member';
export type AuthRequired = 'any' | 'mfa' | 'sso';

export interface OrganizationsTable {
  id: string;
  name: string;
  slug: string;
  auth_required: AuthRequired;
  require_mfa: Bool;
  created_at: string;
  updated_at: string;
}

export interface MembersTable {
  organization_id: string;
  user_id: string;
  role: Role;
  created_at: string;
  updated_at: string;
}

export interface InvitationsTable {
  id: string;
  organization_id: string;
  email: string;
  role: Role;
  token_hash: string;
  invited_by: string | null;
  expires_at: string;
  accepted_at: string | null;
  accepted_by: string | null;
  revoked_at: string | null;
  created_at: string;
}

export type JoinRequestStatus = 'pending' | 'approved' | 'rejected';

export interface JoinRequestsTable {
  id: string;
  organization_id: string;
  user_id: string;
  domain_id: string | null;
  status: JoinRequestStatus;
  decided_by: string | null;
  decided_at: string | null;
  created_at: string;
}

export type DomainStatus = 'pending' | 'verified';

export interface DomainsTable {
  id: string;
  organization_id: string;
  domain: string; // normalised ASCII (IDNA), lower case, no trailing dot
  status: DomainStatus;
  verification_token: string;
  verified_at: string | null;
  last_checked_at: string | null;
  auto_join: Bool;
  require_approval: Bool;
  join_role: Role;
  created_at: string;
  updated_at: string;
}

export type SsoProtocol = 'oidc' | 'saml';
export type ConnectionStatus = 'active' | 'replaced';

export interface SsoConnectionsTable {
  id: string;
  organization_id: string;
  protocol: SsoProtocol;
  provider: string;
  status: ConnectionStatus;
  enabled: Bool;
  /** Bumped on every change; flows bound to an older version fail. */
  config_version: number;
  /** OIDC: issuer. SAML: IdP entity ID. */
  issuer: string;
  /** Protocol-specific, non-secret settings; JSON validated by the connection store. */
  config: string;
  /** Client secret (OIDC) or SP private key (SAML), sealed by the key ring. */
  secret_enc: string | null;
  allow_jit: Bool;
  default_role: Role;
  allowed_domains: string | null; // JSON array or null = any
  allow_idp_initiated: Bool;
  /** The last test of the saved settings (SPEC §5 lastTest): its result, time and the config version it tested. */
  last_test_ok: Bool | null;
  last_test_at: string | null;
  last_test_version: number | null;
  created_at: string;
  updated_at: string;
}

export interface SsoIdentitiesTable {
  id: string;
  connection_id: string;
  organization_id: string;
  user_id: string;
  subject: string;
  email: string | null;
  claims: string; // JSON of the last login's claims (no tokens)
  last_login_at: string;
  created_at: string;
}

/** SPEC §9: the IdP's tokens of one SSO identity (`id` is the identity's), sealed. */
export interface SsoIdpTokensTable {
  id: string;
  organization_id: string;
  connection_id: string;
  user_id: string;
  status: IdpTokenRowStatus;
  access_token_enc: string | null;
  refresh_token_enc: string | null;
  /** null: the IdP did not say (no `expires_in`). */
  access_token_expires_at: string | null;
  scopes: string; // JSON array of the granted scopes
  /** Bumped by every write of the tokens: a refresh writes only over the generation it read. */
  generation: number;
  /** The instance refreshing this row, until when (one request to the IdP per identity at a time). */
  lease_holder: string | null;
  lease_until: string | null;
  /** Failed attempts since the last success (the IdP unreachable or answering garbage). */
  failures: number;
  next_attempt_at: string | null;
  last_error: string | null;
  obtained_at: string;
  last_refreshed_at: string | null;
  updated_at: string;
}
export type IdpTokenRowStatus = 'valid' | 'refresh_failed' | 'revoked';

/** Cluster-wide leases of periodic jobs: the holder runs the job until the lease runs out. */
export interface JobLeasesTable {
  name: string;
  holder: string;
  expires_at: string;
}

export interface SsoFlowsTable {
  id: string;
  /** SHA-256 of the OIDC `state` or the SAML AuthnRequest ID. */
  lookup_hash: string;
  organization_id: string;
  connection_id: string;
  config_version: number;
  protocol: SsoProtocol;
  code_verifier: string | null;
  nonce: string | null;
  return_to: string;
  login_hint: string | null;
  /** SHA-256 of the random value in the browser's flow cookie (OIDC): binds the callback to the browser that started. */
  browser_binding_hash: string | null;
  expires_at: string;
  consumed_at: string | null;
  created_at: string;
}

export interface ReplayCacheTable {
  /** Namespaced key, e.g. `saml:<connection>:<assertion id>`. */
  key: string;
  expires_at: string;
}

export interface MfaFactorsTable {
  id: string;
  user_id: string;
  type: 'totp';
  secret_enc: string;
  confirmed_at: string | null;
  /** Highest TOTP time step accepted so far (a code is never accepted twice). */
  last_used_step: number | null;
  created_at: string;
}

export interface RecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  used_at: string | null;
  created_at: string;
}

export type OneTimeTokenPurpose = 'magic_link' | 'password_reset' | 'email_verify';

export interface OneTimeTokensTable {
  id: string;
  token_hash: string;
  purpose: OneTimeTokenPurpose;
  user_id: string | null;
  email: string;
  data: string | null; // JSON (e.g. returnTo)
  expires_at: string;
  used_at: string | null;
  created_at: string;
}

export type ActorType = 'user' | 'api_key' | 'system' | 'idp' | 'setup_link';

export interface AuditEventsTable {
  id: string;
  organization_id: string | null;
  actor_type: ActorType;
  actor_user_id: string | null;
  actor_api_key_id: string | null;
  /** SPEC §5: a change made through a setup link (actor_type setup_link). */
  actor_setup_link_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  metadata: string | null; // JSON, never a secret
  created_at: string;
}

/** Owned by rate-limiter-flexible (its own column layout). */
export interface RateLimitsTable {
  key: string;
  points: Generated<number>;
  expire: number | null;
}

/** A slug an organization left behind (rename or deletion): reserved to that organization (SPEC §12). */
export interface RetiredSlugsTable {
  slug: string;
  /** The organization that held it; no foreign key, so the reservation outlives a deletion. */
  organization_id: string;
  retired_at: string;
}

/** SPEC §8 ES256 key ring: published from created_at, signs from activates_at. */
export interface SigningKeysTable {
  /** The key id (`kid`). */
  id: string;
  alg: 'ES256';
  /** JSON public JWK (kid, alg, use). */
  public_jwk: string;
  /** Private JWK, sealed by the key ring (sealed-columns.ts). */
  private_jwk_enc: string;
  created_at: string;
  activates_at: string;
}

/** Session-token refresh tokens (SPEC §8): SHA-256 only; a family is one issue and its rotations. */
export interface RefreshTokensTable {
  id: string;
  token_hash: string;
  family_id: string;
  session_id: string;
  user_id: string;
  organization_id: string | null;
  created_at: string;
  expires_at: string;
  /** Set when the token was exchanged (rotation): presenting it again revokes the family. */
  used_at: string | null;
  revoked_at: string | null;
}

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/** OpenID Provider clients (the SaaS's apps). JSON columns are parsed only by their store. */
export interface OAuthClientsTable {
  id: string;
  name: string;
  secret_hash: string | null;
  token_endpoint_auth_method: ClientAuthMethod;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  backchannel_logout_uri: string | null;
  grant_types: string;
  jwks_uri: string | null;
  jwks: string | null;
  first_party: Bool;
  created_at: string;
  updated_at: string;
}

/** oidc-provider's records through the Kysely adapter (src/oidc-provider/adapter.ts). */
export interface OidcRecordsTable {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  /** The Gatehouse session (the record's `sid`). */
  session_id: string | null;
  /** The organization the authorization chose (scope `organization`), carried from code to tokens. */
  organization_id: string | null;
  expires_at: string | null;
  consumed_at: string | null;
}

/** An OpenID Provider client a session signed into (migration 0004). */
export interface SessionClientsTable {
  session_id: string;
  client_id: string;
  created_at: string;
}

export type OutboxStatus = 'pending' | 'delivered' | 'abandoned';

/** One back-channel logout delivery to one client for one ended session (logout/outbox.ts). */
export interface LogoutOutboxTable {
  id: string;
  session_id: string;
  user_id: string;
  client_id: string;
  reason: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: string;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
  give_up_at: string;
  finished_at: string | null;
}

/** SPEC §5: a setup link (only hashes of its token and of the bound browser's secret are kept). */
export interface SetupLinksTable {
  id: string;
  organization_id: string;
  token_hash: string;
  /** JSON array of SetupLinkScope. */
  scope: string;
  created_by: string | null;
  created_by_api_key_id: string | null;
  binding_hash: string | null;
  bound_at: string | null;
  last_used_at: string | null;
  expires_at: string;
  revoked_at: string | null;
  created_at: string;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  api_keys: ApiKeysTable;
  organizations: OrganizationsTable;
  members: MembersTable;
  invitations: InvitationsTable;
  join_requests: JoinRequestsTable;
  domains: DomainsTable;
  sso_connections: SsoConnectionsTable;
  sso_identities: SsoIdentitiesTable;
  sso_flows: SsoFlowsTable;
  replay_cache: ReplayCacheTable;
  mfa_factors: MfaFactorsTable;
  recovery_codes: RecoveryCodesTable;
  one_time_tokens: OneTimeTokensTable;
  audit_events: AuditEventsTable;
  rate_limits: RateLimitsTable;
  retired_slugs: RetiredSlugsTable;
  signing_keys: SigningKeysTable;
  refresh_tokens: RefreshTokensTable;
  oauth_clients: OAuthClientsTable;
  oidc_records: OidcRecordsTable;
  session_clients: SessionClientsTable;
  logout_outbox: LogoutOutboxTable;
  sso_idp_tokens: SsoIdpTokensTable;
  job_leases: JobLeasesTable;
  setup_links: SetupLinksTable;
}

export type UserRow = Selectable<UsersTable>;
export type SetupLinkRow = Selectable<SetupLinksTable>;
export type SigningKeyRow = Selectable<SigningKeysTable>;
export type RefreshTokenRow = Selectable<RefreshTokensTable>;
export type OAuthClientRow = Selectable<OAuthClientsTable>;
export type SessionRow = Selectable<SessionsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type OrganizationRow = Selectable<OrganizationsTable>;
export type MemberRow = Selectable<MembersTable>;
export type InvitationRow = Selectable<InvitationsTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type NewAuditEvent = Insertable<AuditEventsTable>;
export type UserUpdate = Updateable<UsersTable>;

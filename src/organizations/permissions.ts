import type { Role } from '../db/schema.js';

/** SPEC §2 permission matrix. A platform superadmin holds every permission on every organization. */
export const PERMISSIONS = {
  'org:read': ['owner', 'admin', 'member'],
  'org:update': ['owner'],
  'org:delete': ['owner'],
  'members:manage': ['owner', 'admin'],
  'invitations:manage': ['owner', 'admin'],
  'join_requests:manage': ['owner', 'admin'],
  'domains:manage': ['owner', 'admin'],
  'sso_identities:manage': ['owner', 'admin'],
  /** SPEC §9: the app's backend reads a user's IdP access token. */
  'sso_idp_tokens:read': ['owner', 'admin'],
  'audit:read': ['owner', 'admin'],
  /** SPEC §5: setup links; each scope of a link also needs the permission it grants (setup-links/service.ts). */
  'setup_links:manage': ['owner', 'admin'],
  'sso:manage': ['owner'],
  'security:manage': ['owner'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function roleAllows(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export const ROLES = ['owner', 'admin', 'member'] as const satisfies readonly Role[];

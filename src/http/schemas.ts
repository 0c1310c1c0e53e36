import { z } from '@hono/zod-openapi';
import { ULID_PATTERN } from '../ids.js';

/** Shared request/response schemas (each validates input and documents it in OpenAPI). */

export const Ulid = z.string().regex(ULID_PATTERN, 'must be a ULID such as 01HZ3K5R4X9Y2V6QF8TJ7W0CDN');

export const Email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be an email address' }))
  .openapi({ example: 'ada@example.com' });

export const Password = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(256, 'must be at most 256 characters')
  .openapi({ example: 'correct horse battery staple' });

export const Role = z.enum(['owner', 'admin', 'member']);

export const OrgParams = z.object({ organizationId: Ulid }).strict();

export const User = z
  .object({ id: z.string(), email: z.string(), name: z.string().nullable(), emailVerified: z.boolean() })
  .openapi('User');

export const Membership = z
  .object({ organizationId: z.string(), name: z.string(), slug: z.string(), role: Role })
  .openapi('Membership');

export const Session = z
  .object({
    id: z.string(),
    authMethod: z.enum(['password', 'magic_link', 'passkey', 'social', 'sso']),
    connectionId: z.string().nullable(),
    organizationId: z.string().nullable(),
    mfa: z.enum(['none', 'pending', 'complete']),
    createdAt: z.string(),
    expiresAt: z.string(),
  })
  .openapi('Session');

export const Empty = z.null();

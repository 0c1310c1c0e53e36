import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { JSONValue } from 'hono/utils/types';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ERROR_CODES, type AppError } from './errors.js';

/** SPEC §3 envelope, success side. */
export function ok(c: Context, data: unknown, options: { status?: 200 | 201; message?: string } = {}) {
  const status = options.status ?? 200;
  return c.json(okBody(data, status, options.message), status);
}

/** The body of a success answer. */
export function okBody(data: unknown, status: 200 | 201 = 200, message = 'OK') {
  return { success: true as const, status, code: 'OK' as const, message, data: data as JSONValue };
}

/** SPEC §3 envelope, error side. 5xx never carries details. */
export function errorBody(err: Pick<AppError, 'status' | 'code' | 'message' | 'details'>) {
  const body: Record<string, unknown> = { success: false, status: err.status, code: err.code, message: err.message };
  if (err.details && err.status < 500) body.details = err.details;
  return body;
}

/** `Retry-After` for the answers that ask the client to come back: 429 RATE_LIMITED and 503 SERVICE_UNAVAILABLE. */
export function setRetryAfter(c: Context, err: Pick<AppError, 'code' | 'details'>): void {
  if ((err.code === 'RATE_LIMITED' || err.code === 'SERVICE_UNAVAILABLE') && typeof err.details?.retryAfter === 'number') c.header('Retry-After', String(err.details.retryAfter));
}

export function fail(c: Context, err: Pick<AppError, 'status' | 'code' | 'message' | 'details'>): Response {
  setRetryAfter(c, err);
  return c.json(errorBody(err), err.status as ContentfulStatusCode);
}

// ---- OpenAPI schemas of the envelope --------------------------------------------------------

export const ErrorEnvelope = z
  .object({
    success: z.literal(false),
    status: z.number().int(),
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES, ...(keyof typeof ERROR_CODES)[]]),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi('Error');

export function successEnvelope<T extends z.ZodType>(data: T) {
  return z.object({
    success: z.literal(true),
    status: z.number().int(),
    code: z.literal('OK'),
    message: z.string(),
    data,
  });
}

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

const errorContent = (description: string) => ({ description, content: { 'application/json': { schema: ErrorEnvelope } } });

/** The responses block of a route: its success plus the errors it can answer. */
export function responses<T extends z.ZodType>(
  data: T,
  description: string,
  errors: Array<400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 502>,
  status: 200 | 201 = 200,
) {
  const out: Record<number, ReturnType<typeof errorContent> | { description: string; content: { 'application/json': { schema: z.ZodType } } }> = {
    [status]: { description, content: { 'application/json': { schema: successEnvelope(data) } } },
  };
  const names: Record<number, string> = {
    400: 'Validation failed or invalid token',
    401: 'Not authenticated, or invalid credentials',
    403: 'Forbidden, CSRF rejected, or a policy (SSO / MFA) requires more',
    404: 'Not found (or not visible to the caller)',
    409: 'Conflict',
    413: 'Body over 1 MiB',
    422: 'Semantically invalid',
    429: 'Rate limited (see Retry-After)',
    502: 'An upstream server (the IdP) gave no usable answer',
  };
  for (const e of errors) out[e] = errorContent(names[e] ?? 'Error');
  out[500] = errorContent('Internal error (details only in the server log, under the request id)');
  return out;
}

/** A browser endpoint's client asked for JSON (an API client), not a page. */
export const wantsJson = (c: Context) => /application\/json/i.test(c.req.header('accept') ?? '') && !/text\/html/i.test(c.req.header('accept') ?? '');

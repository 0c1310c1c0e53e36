import { monotonicFactory } from 'ulid';

const next = monotonicFactory();

/** A new ULID: sortable by creation time, so it doubles as a pagination cursor. */
export function newId(): string {
  return next();
}

export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

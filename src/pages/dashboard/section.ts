import type { Ctx } from '../../context.js';
import type { Services } from '../../services.js';
import type { Html, OrgScope, Viewer } from './frame.js';

/** What every section renderer gets: the services it reads through (the same the REST API calls), the caller, the organization. */
export interface SectionInput {
  services: Services;
  ctx: Ctx;
  viewer: Viewer;
  org: OrgScope;
  /** A query parameter of the page URL (filters, cursors). */
  query: (key: string) => string | undefined;
}

export type AccountInput = Omit<SectionInput, 'org'>;

export interface SectionPage {
  title: string;
  body: Html;
  /** A problem to show in the page's alert region (e.g. filters that are not valid). */
  error?: string;
}

/** A cursor from the URL, only when it has the shape of one (else the first page). */
export function cursorOf(query: SectionInput['query'], key = 'cursor'): string | null {
  const v = query(key);
  return v && /^[0-9A-HJKMNP-TV-Z]{26}$/.test(v) ? v : null;
}

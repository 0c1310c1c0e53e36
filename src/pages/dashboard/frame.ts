import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { html } from 'hono/html';
import type { Role } from '../../db/schema.js';
import { roleAllows, type Permission } from '../../organizations/permissions.js';

/** What hono's `html` tag returns (every value interpolated into it is escaped). */
export type Html = ReturnType<typeof html>;

/** An organization in the switcher (GET /api/user/organizations). */
export interface OrgChoice {
  id: string;
  name: string;
  slug: string;
  role: Role;
}

/** The signed-in viewer of a dashboard page. */
export interface Viewer {
  userId: string;
  email: string;
  name: string | null;
  /** The user's organizations (first page of the switcher). */
  organizations: OrgChoice[];
  /** Absolute base URL of this Gatehouse (for the break-glass curl). */
  baseUrl: string;
}

/** The organization a section page is about, with the viewer's role in it (null: a superadmin who is not a member). */
export interface OrgScope {
  id: string;
  name: string;
  slug: string;
  role: Role | null;
  superadmin: boolean;
}

/** May the viewer do this in the organization? Mirrors the API's own check (src/organizations/permissions.ts). */
export function can(org: OrgScope, permission: Permission): boolean {
  return org.superadmin || (org.role !== null && roleAllows(org.role, permission));
}

export type SectionId = 'sso' | 'domains' | 'security' | 'members' | 'identities' | 'api-keys' | 'audit' | 'setup-links';

interface SectionDef {
  id: SectionId;
  label: string;
  /** The permission the section's content needs; null: any member may open it (read-only view). */
  needs: Permission | null;
}

/** The sections of an organization, in navigation order. */
export const SECTIONS: readonly SectionDef[] = [
  { id: 'sso', label: 'SSO', needs: 'sso:manage' },
  { id: 'domains', label: 'Domains', needs: 'domains:manage' },
  { id: 'security', label: 'Security', needs: 'security:manage' },
  { id: 'members', label: 'Members', needs: null },
  { id: 'identities', label: 'SSO identities', needs: 'sso_identities:manage' },
  { id: 'api-keys', label: 'API keys', needs: null },
  { id: 'audit', label: 'Audit log', needs: 'audit:read' },
  { id: 'setup-links', label: 'Setup links', needs: 'setup_links:manage' },
];

export const sectionHref = (orgId: string, section: SectionId) => `/dashboard/${orgId}/${section}`;
export const orgApi = (orgId: string, rest = '') => `/api/user/organizations/${orgId}${rest}`;

/** The sections this viewer sees in the navigation. */
export function visibleSections(org: OrgScope): SectionDef[] {
  return SECTIONS.filter((s) => s.needs === null || can(org, s.needs));
}

/** Every dashboard page: header with the organization switcher, navigation, the two live regions, the content. */
export function dashboardLayout(input: { title: string; viewer: Viewer; org: OrgScope | null; current: SectionId | 'account' | 'home'; body: Html; error?: string | null }): Html {
  const { viewer, org } = input;
  const switcher = viewer.organizations.length
    ? html`<form id="org-switcher" class="switcher" method="get" action="/dashboard" data-switcher>
<label for="org-select">Organization</label>
<select id="org-select" name="org">${viewer.organizations.map((o) => html`<option value="${o.id}"${org?.id === o.id ? html` selected` : ''}>${o.name} (${o.role})</option>`)}</select>
<button type="submit" class="secondary">Open</button>
</form>`
    : '';
  const nav = html`<nav aria-label="Dashboard"><ul>
${org ? visibleSections(org).map((s) => html`<li><a href="${sectionHref(org.id, s.id)}"${input.current === s.id ? html` aria-current="page"` : ''}>${s.label}</a></li>`) : ''}
<li><a href="/dashboard/account"${input.current === 'account' ? html` aria-current="page"` : ''}>My account</a></li>
</ul></nav>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${input.title}${org ? ` · ${org.name}` : ''} — Gatehouse dashboard</title>
<link rel="stylesheet" href="/assets/gatehouse.css">
<link rel="stylesheet" href="/assets/dashboard.css">
<script type="module" src="/assets/dashboard.js"></script>
</head>
<body class="dashboard">
<a class="skip" href="#content">Skip to content</a>
<header class="top">
<p class="brand"><a href="/dashboard">Gatehouse</a></p>
${switcher}
<p class="who">Signed in as <strong>${viewer.email}</strong> <button type="button" class="link" data-sign-out>Sign out</button></p>
</header>
<div class="frame">
${nav}
<main id="content" tabindex="-1" data-page="${input.current}"${org ? html` data-org="${org.id}"` : ''}>
<h1>${input.title}${org ? html` <span class="org-name">${org.name}</span>` : ''}</h1>
${org && org.role === 'member' ? html`<p class="readonly-note" id="readonly-note">You are a member of ${org.name}: this is a read-only view. Owners and admins manage the organization.</p>` : ''}
<div id="error" class="error" role="alert" aria-live="assertive" tabindex="-1">${input.error ? html`<p><strong>Error: </strong>${input.error}</p>` : ''}</div>
<div id="status" class="status" role="status" aria-live="polite" tabindex="-1"></div>
${input.body}
</main>
</div>
</body>
</html>`;
}

// ---- small building blocks shared by the sections

/** Element ids of the page being rendered: numbered per request, so one page always gets the same ids. */
const pageIds = new AsyncLocalStorage<{ next: number }>();

/** Render a page with its own id numbering. */
export function withPageIds<T>(render: () => Promise<T>): Promise<T> {
  return pageIds.run({ next: 0 }, render);
}

/** A unique element id within the page being rendered. */
export function uid(prefix: string): string {
  const ids = pageIds.getStore();
  if (!ids) return `${prefix}-${randomBytes(4).toString('hex')}`;
  ids.next += 1;
  return `${prefix}-${ids.next}`;
}

export interface FieldOptions {
  name: string;
  label: string;
  value?: string | null;
  type?: 'text' | 'url' | 'email' | 'password' | 'number' | 'datetime-local' | 'date';
  hint?: string | Html | null;
  required?: boolean;
  /** JSON coercion in dashboard.js: list (comma/space separated), lines (one per line), int, json. */
  dataType?: 'list' | 'lines' | 'int' | 'json' | 'date' | null;
  /** Leave the key out of the body when the input is empty (optional secrets, optional fields). */
  omitEmpty?: boolean;
  /** Send null when empty. */
  nullEmpty?: boolean;
  autocomplete?: string;
  placeholder?: string;
  min?: number;
  max?: number;
}

/** The hint and the (initially empty) error slot of a field, and the aria-describedby that points at both. */
function describedBy(id: string, hint: FieldOptions['hint']) {
  const ids = hint ? `${id}-hint ${id}-error` : `${id}-error`;
  const below = html`${hint ? html`<span class="hint" id="${id}-hint">${hint}</span>` : ''}<span class="field-error" id="${id}-error"></span>`;
  return { ids, below };
}

function dataAttrs(o: Pick<FieldOptions, 'dataType' | 'omitEmpty' | 'nullEmpty'>) {
  return html`${o.dataType ? html` data-type="${o.dataType}"` : ''}${o.omitEmpty ? html` data-omit-empty` : ''}${o.nullEmpty ? html` data-null-empty` : ''}`;
}

export function field(o: FieldOptions): Html {
  const id = uid('f');
  const d = describedBy(id, o.hint);
  return html`<div class="field">
<label for="${id}">${o.label}${o.required ? '' : html` <span class="hint">(optional)</span>`}</label>
<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}" aria-describedby="${d.ids}"${o.required ? html` required` : ''}${dataAttrs(o)}${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : html` autocomplete="off"`}${o.placeholder ? html` placeholder="${o.placeholder}"` : ''}${o.min !== undefined ? html` min="${o.min}"` : ''}${o.max !== undefined ? html` max="${o.max}"` : ''} spellcheck="false">
${d.below}
</div>`;
}

export function textarea(o: FieldOptions & { rows?: number }): Html {
  const id = uid('f');
  const d = describedBy(id, o.hint);
  return html`<div class="field">
<label for="${id}">${o.label}${o.required ? '' : html` <span class="hint">(optional)</span>`}</label>
<textarea id="${id}" name="${o.name}" rows="${o.rows ?? 4}" aria-describedby="${d.ids}"${o.required ? html` required` : ''}${dataAttrs(o)} spellcheck="false">${o.value ?? ''}</textarea>
${d.below}
</div>`;
}

export function checkbox(o: { name: string; label: string; checked: boolean; hint?: string | null }): Html {
  const id = uid('f');
  const d = describedBy(id, o.hint);
  return html`<div class="field check">
<input id="${id}" name="${o.name}" type="checkbox" data-type="bool" aria-describedby="${d.ids}"${o.checked ? html` checked` : ''}>
<label for="${id}">${o.label}</label>
${d.below}
</div>`;
}

export function select(o: { name: string; label: string; options: readonly (string | { value: string; label: string })[]; value?: string | null; hint?: string | Html | null; omitEmpty?: boolean }): Html {
  const id = uid('f');
  const d = describedBy(id, o.hint);
  return html`<div class="field">
<label for="${id}">${o.label}</label>
<select id="${id}" name="${o.name}" aria-describedby="${d.ids}"${o.omitEmpty ? html` data-omit-empty` : ''}>
${o.options.map((opt) => {
    const v = typeof opt === 'string' ? opt : opt.value;
    const l = typeof opt === 'string' ? opt : opt.label;
    return html`<option value="${v}"${o.value === v ? html` selected` : ''}>${l}</option>`;
  })}
</select>
${d.below}
</div>`;
}

/** A value to paste elsewhere: a readonly input (select it as a fallback) and a Copy button. */
export function copyField(label: string, value: string, hint?: string | null): Html {
  const id = uid('copy');
  return html`<div class="field copy">
<label for="${id}">${label}</label>
<div class="copy-row"><input id="${id}" type="text" readonly value="${value}"${hint ? html` aria-describedby="${id}-hint"` : ''} data-copy-source><button type="button" class="secondary" data-copy="${id}" aria-label="Copy ${label}">Copy</button></div>
${hint ? html`<span class="hint" id="${id}-hint">${hint}</span>` : ''}
</div>`;
}

/**
 * A form that dashboard.js submits to the JSON API (`data-api="METHOD path"`). Its alert region
 * takes the errors that belong to no field; `data-after` names what happens on success.
 */
export function apiForm(o: { api: string; label: string; body: Html; submit: string; after?: string; confirm?: string; confirmIf?: string; id?: string; extraButtons?: Html; className?: string; flash?: string }): Html {
  const id = o.id ?? uid('form');
  return html`<form id="${id}" class="api-form${o.className ? ` ${o.className}` : ''}" data-api="${o.api}" data-after="${o.after ?? 'reload'}"${o.confirm ? html` data-confirm="${o.confirm}"` : ''}${o.confirmIf ? html` data-confirm-if="${o.confirmIf}"` : ''}${o.flash ? html` data-flash="${o.flash}"` : ''} aria-label="${o.label}" novalidate>
<div class="form-alert error" role="alert" tabindex="-1" data-alert></div>
${o.body}
<div class="actions"><button type="submit">${o.submit}</button>${o.extraButtons ?? ''}</div>
<div class="form-output" data-output aria-live="polite"></div>
</form>`;
}

/** A one-click action (no fields): Delete, Revoke, Verify, Approve … */
export function apiButton(o: { api: string; label: string; confirm?: string; after?: string; className?: string; accessibleName?: string; flash?: string; output?: string }): Html {
  return html`<button type="button" class="${o.className ?? 'secondary'}" data-api="${o.api}" data-after="${o.after ?? 'reload'}"${o.confirm ? html` data-confirm="${o.confirm}"` : ''}${o.accessibleName ? html` aria-label="${o.accessibleName}"` : ''}${o.flash ? html` data-flash="${o.flash}"` : ''}${o.output ? html` data-output-target="${o.output}"` : ''}>${o.label}</button>`;
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:\d\dZ$/, ' UTC');
}

/** Where a section the viewer may not open says so (the API would refuse it too). */
export function notAllowed(what: string): Html {
  return html`<p class="notice">Your role does not allow you to see ${what}. Ask an owner of the organization.</p>`;
}

/** "Next page" link for a cursor-paginated list. */
export function nextPageLink(path: string, query: Record<string, string | null | undefined>, nextCursor: string | null): Html {
  if (!nextCursor) return html``;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
  q.set('cursor', nextCursor);
  return html`<p class="pager"><a href="${path}?${q.toString()}" rel="next">Next page</a></p>`;
}

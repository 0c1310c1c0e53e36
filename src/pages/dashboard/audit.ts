import { html } from 'hono/html';
import { AUDIT_ACTIONS } from '../../audit/actions.js';
import type { AuditEventView } from '../../audit/service.js';
import type { Services } from '../../services.js';
import { fmtTime, nextPageLink, sectionHref, type Html } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

type AuditFilter = NonNullable<Parameters<Services['audit']['list']>[2]>;

const ACTOR_TYPES = ['user', 'api_key', 'setup_link', 'idp', 'system'] as const;
const ACTION = /^[a-z_]+(\.[a-z_]*)?$/;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The filters as typed in the form (echoed back), and the problems found per field. */
export interface AuditFilters {
  action: string | null;
  actorType: string | null;
  actor: string | null;
  from: string | null;
  to: string | null;
}

export function filtersOf(query: SectionInput['query']): AuditFilters {
  const text = (k: string) => {
    const v = (query(k) ?? '').trim().slice(0, 254);
    return v || null;
  };
  return { action: text('action'), actorType: text('actorType'), actor: text('actor'), from: text('from'), to: text('to') };
}

const nextDay = (d: string) => new Date(Date.parse(`${d}T00:00:00.000Z`) + 86_400_000).toISOString();

/**
 * The audit-log service's filter (the one GET …/audit-log takes) from the form's words: an actor
 * given as a member's email becomes their user id; a date range covers whole UTC days.
 */
export function toServiceFilter(f: AuditFilters, emails: Map<string, string>): { filter: AuditFilter; problems: Record<string, string> } {
  const problems: Record<string, string> = {};
  const filter: AuditFilter = {};
  if (f.action) {
    if (ACTION.test(f.action)) filter.action = f.action;
    else problems.action = 'Give an action such as domain.verified, or a family such as sso.';
  }
  if (f.actorType) {
    if ((ACTOR_TYPES as readonly string[]).includes(f.actorType)) filter.actorType = f.actorType;
    else problems.actorType = 'Choose one of the listed actor types.';
  }
  if (f.actor) {
    const byEmail = [...emails].find(([, email]) => email.toLowerCase() === f.actor!.toLowerCase())?.[0];
    if (byEmail) filter.actorId = byEmail;
    else if (ULID.test(f.actor.toUpperCase())) filter.actorId = f.actor.toUpperCase();
    else problems.actor = "Give a member's email address, or a user, API key or setup link id.";
  }
  for (const k of ['from', 'to'] as const) {
    const v = f[k];
    if (!v) continue;
    if (!DATE.test(v) || Number.isNaN(Date.parse(v))) problems[k] = 'Give a date (YYYY-MM-DD).';
    else filter[k] = k === 'from' ? `${v}T00:00:00.000Z` : nextDay(v);
  }
  if (filter.from && filter.to && filter.from >= filter.to) problems.to = 'The end date must not be before the start date.';
  return { filter, problems };
}

/** The actor of an event in words: a user (email when known), an API key, a setup link (SPEC §5), the IdP, the system. */
export function actorText(actor: AuditEventView['actor'], emails: Map<string, string>): string {
  const who = actor.userId ? emails.get(actor.userId) ?? actor.userId : null;
  switch (actor.type) {
    case 'user': return who ?? 'a user';
    case 'api_key': return `API key ${actor.apiKeyId ?? ''}${who ? ` of ${who}` : ''}`.trim();
    case 'setup_link': return `setup link ${actor.setupLinkId ?? ''}`.trim();
    case 'idp': return 'the identity provider';
    case 'system': return 'Gatehouse';
    default: return who ? `${actor.type} ${who}` : actor.type;
  }
}

function filterField(o: { id: string; name: string; label: string; value: string | null; hint?: string; problem?: string | undefined; type?: string; list?: string }): Html {
  const describedBy = `${o.hint ? `${o.id}-hint ` : ''}${o.id}-error`;
  return html`<div class="field"><label for="${o.id}">${o.label}</label><input id="${o.id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}" aria-describedby="${describedBy}"${o.list ? html` list="${o.list}"` : ''}${o.problem ? html` aria-invalid="true"` : ''}>
${o.hint ? html`<span class="hint" id="${o.id}-hint">${o.hint}</span>` : ''}<span class="field-error" id="${o.id}-error">${o.problem ?? ''}</span></div>`;
}

function filterForm(orgId: string, f: AuditFilters, problems: Record<string, string>): Html {
  const actions = Object.keys(AUDIT_ACTIONS).sort();
  return html`<form class="filters" method="get" action="${sectionHref(orgId, 'audit')}" aria-label="Filter the audit log">
${filterField({ id: 'audit-action', name: 'action', label: 'Action', value: f.action, hint: 'An action, or a family such as sso.', problem: problems.action, list: 'audit-actions' })}
<datalist id="audit-actions">${actions.map((a) => html`<option value="${a}"></option>`)}</datalist>
<div class="field"><label for="audit-actor-type">Actor type</label><select id="audit-actor-type" name="actorType" aria-describedby="audit-actor-type-error"${problems.actorType ? html` aria-invalid="true"` : ''}>
<option value="">any</option>${ACTOR_TYPES.map((a) => html`<option value="${a}"${f.actorType === a ? html` selected` : ''}>${a}</option>`)}</select><span class="field-error" id="audit-actor-type-error">${problems.actorType ?? ''}</span></div>
${filterField({ id: 'audit-actor', name: 'actor', label: 'Actor', value: f.actor, hint: "A member's email, or a user, API key or setup link id", problem: problems.actor })}
${filterField({ id: 'audit-from', name: 'from', label: 'From', value: f.from, type: 'date', problem: problems.from })}
${filterField({ id: 'audit-to', name: 'to', label: 'To (inclusive)', value: f.to, type: 'date', problem: problems.to })}
<div class="actions"><button type="submit">Filter</button> <a href="${sectionHref(orgId, 'audit')}">Clear filters</a></div>
</form>`;
}

/** Audit log section (owner, admin): who did what, when and from where; filters and pages (the audit-log route's). */
export async function auditSection({ services, ctx, org, query }: SectionInput): Promise<SectionPage> {
  await services.organizations.requireAccess(ctx, org.id, 'audit:read');
  const members = await services.members.list(ctx, org.id, { limit: 100, cursor: null });
  const emails = new Map(members.items.map((m) => [m.userId, m.email]));
  const f = filtersOf(query);
  const { filter, problems } = toServiceFilter(f, emails);
  const invalid = Object.keys(problems).length > 0;
  const page = invalid ? { items: [], nextCursor: null } : await services.audit.list(org.id, { limit: 50, cursor: cursorOf(query) }, filter);
  const rows = page.items.map((e) => html`<tr>
<td>${fmtTime(e.createdAt)}</td><th scope="row"><code>${e.action}</code></th><td>${actorText(e.actor, emails)}</td>
<td>${e.target ? html`${e.target.type} <code>${e.target.id}</code>` : '—'}</td><td>${e.ip ?? '—'}</td>
<td>${e.metadata ? html`<details><summary>details</summary><pre><code>${JSON.stringify(e.metadata, null, 2)}</code></pre></details>` : '—'}</td>
</tr>`);
  const filtered = Boolean(f.action || f.actorType || f.actor || f.from || f.to);
  return {
    title: 'Audit log',
    ...(invalid ? { error: 'Some filters are not valid: see the highlighted fields.' } : {}),
    body: html`<section class="card" aria-labelledby="filter-heading"><h2 id="filter-heading">Filter</h2>${filterForm(org.id, f, problems)}</section>
<section aria-labelledby="events-heading"><h2 id="events-heading">Events, newest first</h2>
${rows.length
      ? html`<div class="table-wrap"><table id="audit-table"><caption>${filtered ? 'Matching events' : 'Events'}</caption><thead><tr><th scope="col">When (UTC)</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Target</th><th scope="col">IP</th><th scope="col">Details</th></tr></thead><tbody>${rows}</tbody></table></div>`
      : html`<p>No event${filtered ? ' matches the filters' : ' yet'}.</p>`}
${nextPageLink(sectionHref(org.id, 'audit'), { action: f.action, actorType: f.actorType, actor: f.actor, from: f.from, to: f.to }, page.nextCursor)}
</section>`,
  };
}

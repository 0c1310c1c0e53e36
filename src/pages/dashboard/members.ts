import { html } from 'hono/html';
import { ROLES } from '../../organizations/permissions.js';
import { apiButton, apiForm, can, field, fmtTime, nextPageLink, orgApi, sectionHref, select, type Html, type OrgScope } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

/** What any member sees: the organization itself (the member list is for owners and admins, as in the API). */
function overview(org: OrgScope, baseUrl: string): Html {
  return html`<section class="card" aria-labelledby="org-heading"><h2 id="org-heading">Organization</h2>
<dl class="facts">
<dt>Name</dt><dd>${org.name}</dd>
<dt>Slug</dt><dd><code>${org.slug}</code></dd>
<dt>Your role</dt><dd id="my-role">${org.role ?? 'platform superadmin'}</dd>
<dt>SSO login link</dt><dd><code>${baseUrl}/api/auth/sso/${org.slug}/login</code></dd>
</dl>
${org.role === 'member' ? html`<p>Owners and admins manage members, domains and SSO. Your own sessions, two-step verification and API keys are under <a href="/dashboard/account">My account</a> and <a href="${sectionHref(org.id, 'api-keys')}">API keys</a>.</p>` : ''}
</section>`;
}

/** Members section: everyone sees the organization; owners and admins manage members, invitations and join requests. */
export async function membersSection({ services, ctx, org, viewer, query }: SectionInput): Promise<SectionPage> {
  if (!can(org, 'members:manage')) return { title: 'Members', body: overview(org, viewer.baseUrl) };
  const api = (rest: string) => orgApi(org.id, rest);
  const [members, invitations, requests] = await Promise.all([
    services.members.list(ctx, org.id, { limit: 50, cursor: cursorOf(query) }),
    can(org, 'invitations:manage') ? services.invitations.list(ctx, org.id, { limit: 50, cursor: null }) : null,
    can(org, 'join_requests:manage') ? services.joinRequests.list(ctx, org.id, 'pending', { limit: 50, cursor: null }) : null,
  ]);
  // The API lets only an owner grant, take away or remove the owner role (an admin may still leave).
  const actingAsOwner = org.role === 'owner' || org.superadmin;
  const grantable = actingAsOwner ? ROLES : ROLES.filter((r) => r !== 'owner');
  const memberRows = members.items.map((m) => {
    const self = m.userId === viewer.userId;
    const mayChange = actingAsOwner || m.role !== 'owner';
    const changeRole = mayChange
      ? apiForm({
        api: `PATCH ${api(`/members/${m.userId}`)}`, label: `Change the role of ${m.email}`, submit: 'Change role', className: 'inline', flash: `Role of ${m.email} changed.`,
        body: select({ name: 'role', label: `Role of ${m.email}`, options: grantable, value: m.role }),
      })
      : '';
    const remove = mayChange || self
      ? apiButton({ api: `DELETE ${api(`/members/${m.userId}`)}`, label: self ? 'Leave' : 'Remove', className: 'danger', accessibleName: `${self ? 'Leave' : 'Remove'} ${m.email}`, confirm: self ? `Leave ${org.name}?` : `Remove ${m.email} from ${org.name}?`, flash: self ? `You left ${org.name}.` : `${m.email} removed.` })
      : '';
    return html`<tr>
<th scope="row">${m.name ?? m.email}${m.name ? html`<br><span class="meta">${m.email}</span>` : ''}${self ? html` <span class="badge">you</span>` : ''}</th>
<td>${m.role}</td><td>${fmtTime(m.joinedAt)}</td>
<td><div class="row-actions">${changeRole}${remove}${!changeRole && !remove ? html`<span class="hint">Only an owner can change an owner.</span>` : ''}</div></td>
</tr>`;
  });
  const invitationBlock = invitations
    ? html`<section class="card" aria-labelledby="inv-heading"><h2 id="inv-heading">Invitations</h2>
${apiForm({
        api: `POST ${api('/invitations')}`, label: 'Invite someone', submit: 'Send invitation', flash: 'Invitation sent.',
        body: html`${field({ name: 'email', label: 'Email address to invite', type: 'email', required: true, autocomplete: 'off' })}${select({ name: 'role', label: 'Role', options: grantable, value: 'member' })}`,
      })}
${invitations.items.length
        ? html`<table><caption>Pending invitations</caption><thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Expires</th><th scope="col">Actions</th></tr></thead><tbody>
${invitations.items.map((i) => html`<tr><th scope="row">${i.email}</th><td>${i.role}</td><td>${fmtTime(i.expiresAt)}</td><td>${apiButton({ api: `DELETE ${api(`/invitations/${i.id}`)}`, label: 'Revoke', className: 'danger', accessibleName: `Revoke the invitation of ${i.email}`, confirm: `Revoke the invitation of ${i.email}?`, flash: 'Invitation revoked.' })}</td></tr>`)}
</tbody></table>`
        : html`<p>No pending invitation.</p>`}
</section>`
    : '';
  const requestBlock = requests
    ? html`<section class="card" aria-labelledby="req-heading"><h2 id="req-heading">Join requests</h2>
${requests.items.length
        ? html`<table><caption>Waiting for approval (auto-join with approval)</caption><thead><tr><th scope="col">Person</th><th scope="col">Asked</th><th scope="col">Decision</th></tr></thead><tbody>
${requests.items.map((r) => html`<tr><th scope="row">${r.name ?? r.email}${r.name ? html`<br><span class="meta">${r.email}</span>` : ''}</th><td>${fmtTime(r.createdAt)}</td><td>
${apiButton({ api: `POST ${api(`/members/requests/${r.id}/approve`)}`, label: 'Approve', className: 'primary', accessibleName: `Approve ${r.email}`, flash: `${r.email} approved.` })}
${apiButton({ api: `POST ${api(`/members/requests/${r.id}/reject`)}`, label: 'Reject', className: 'danger', accessibleName: `Reject ${r.email}`, confirm: `Reject the join request of ${r.email}?`, flash: `${r.email} rejected.` })}</td></tr>`)}
</tbody></table>`
        : html`<p>No pending join request.</p>`}
</section>`
    : '';
  return {
    title: 'Members',
    body: html`${overview(org, viewer.baseUrl)}
<section class="card" aria-labelledby="members-heading"><h2 id="members-heading">Members</h2>
<table><caption>People in ${org.name}</caption><thead><tr><th scope="col">Person</th><th scope="col">Role</th><th scope="col">Joined</th><th scope="col">Actions</th></tr></thead>
<tbody>${memberRows}</tbody></table>
${nextPageLink(sectionHref(org.id, 'members'), {}, members.nextCursor)}
</section>
${invitationBlock}
${requestBlock}`,
  };
}

import { html } from 'hono/html';
import { apiForm, field, type Html } from './frame.js';

/** `/dashboard` for a user without any organization: create one (POST /api/user/organizations). */
export function createOrganizationForm(): Html {
  return html`<section aria-labelledby="create-org-heading">
<h2 id="create-org-heading">Create an organization</h2>
<p>You are not a member of any organization yet. Create one (you become its owner), or ask an owner to invite you.</p>
${apiForm({
    api: 'POST /api/user/organizations',
    label: 'Create an organization',
    after: 'open-org',
    submit: 'Create organization',
    body: html`${field({ name: 'name', label: 'Name', required: true, autocomplete: 'organization' })}
${field({ name: 'slug', label: 'Slug', omitEmpty: true, hint: 'Lower-case letters, digits and dashes; part of the sign-in URLs. Made from the name when left empty.' })}`,
  })}
</section>`;
}

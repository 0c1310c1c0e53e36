// /setup/{token}: the setup-link wizard (SPEC §5). Served from /assets/setup.js (CSP script-src
// 'self', no inline code). The page is a server-rendered shell; this script calls the ordinary
// REST API of the link's organization with `X-Setup-Link: {linkId}` (the HttpOnly cookie proves
// the browser). Everything is written with textContent / DOM nodes, never innerHTML.

import { apiRequest, busy } from './common.js';

const root = document.getElementById('setup-page');
const errorRegion = document.getElementById('error');
const statusRegion = document.getElementById('status');
const copyStatus = document.getElementById('copy-status');
const API = `/api/user/organizations/${encodeURIComponent(root.dataset.organizationId)}`;
const linkId = root.dataset.linkId;

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** One API call as the link (the HttpOnly cookie proves the browser); see apiRequest. */
const api = (method, path, body) => apiRequest(method, API + path, body, { 'x-setup-link': linkId });

function showError(parts) {
  errorRegion.replaceChildren();
  parts.forEach((part, i) => {
    if (Array.isArray(part)) errorRegion.append(el('ul', {}, part.map((item) => el('li', {}, [item]))));
    else errorRegion.append(el('p', {}, [i === 0 ? el('strong', {}, ['Error: ']) : null, part]));
  });
  errorRegion.focus();
}

function showStatus(heading, text) {
  statusRegion.replaceChildren(el('p', {}, [el('strong', {}, [heading + ' ']), text]));
  statusRegion.focus();
}

function clearMessages() {
  errorRegion.replaceChildren();
  statusRegion.replaceChildren();
}

/** The words for an API failure that is not about one field. */
function words(result) {
  if (result.status === 401 || (result.status === 403 && result.code !== 'CSRF_REJECTED')) {
    return 'This setup link can no longer do that: it may have expired or been withdrawn, or it does not cover this. Reload the page to see its state, or ask for a new link.';
  }
  if (result.code === 'CSRF_REJECTED') return 'This page is not served from an origin Gatehouse trusts (check GATEHOUSE_BASE_URL and GATEHOUSE_TRUSTED_ORIGINS).';
  if (result.status >= 500) return `Something went wrong on Gatehouse's side. ${result.message}`;
  return result.message;
}

/**
 * Field errors of a VALIDATION_FAILED answer: each message next to the field whose data-field is
 * the issue's path (its first segment), the input marked invalid; the rest only in the summary.
 * Returns the summary lines for the alert region.
 */
function showFieldErrors(form, result) {
  for (const span of form.querySelectorAll('.field-error')) span.replaceChildren();
  for (const input of form.querySelectorAll('[data-field]')) input.removeAttribute('aria-invalid');
  const issues = result.code === 'VALIDATION_FAILED' && Array.isArray(result.details.issues) ? result.details.issues : [];
  const lines = [];
  for (const issue of issues) {
    const path = Array.isArray(issue.path) ? issue.path.join('.') : String(issue.path || '');
    const key = path.split('.')[0];
    const input = key ? form.querySelector(`[data-field="${CSS.escape(key)}"]`) : null;
    const label = input ? document.querySelector(`label[for="${input.id}"]`) : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      document.getElementById(`e-${key}`)?.append(el('span', {}, [issue.message]));
      const details = input.closest('details');
      if (details) details.open = true;
    }
    lines.push(`${label ? label.textContent.trim() : path || 'Request'}: ${issue.message}`);
  }
  return lines;
}

// ---- Copy buttons (every page) ----

async function copyText(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission: select the value so Ctrl+C / ⌘C copies it.
    const range = document.createRange();
    range.selectNodeContents(source);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    return false;
  }
}

document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy-from]') : null;
  if (!button) return;
  const source = document.getElementById(button.dataset.copyFrom);
  if (!source || source.dataset.ready !== 'true') return;
  const label = button.querySelector('.visually-hidden')?.textContent.trim() || 'value';
  const copied = await copyText(source.textContent, source);
  copyStatus.textContent = copied ? `Copied ${label}.` : `Selected ${label}: press Ctrl+C (⌘C on a Mac) to copy it.`;
  button.firstChild.textContent = copied ? 'Copied' : 'Selected';
  setTimeout(() => {
    button.firstChild.textContent = 'Copy';
  }, 2000);
});

function fillValue(node, value) {
  const copy = node.parentElement?.querySelector('button[data-copy-from]');
  if (value) {
    node.textContent = value;
    node.dataset.ready = 'true';
    if (copy) copy.hidden = false;
  } else {
    node.textContent = 'Not available on this Gatehouse';
    node.dataset.ready = 'false';
    if (copy) copy.hidden = true;
  }
}

// ---- SSO: an IdP's steps and form ----

const regexEscape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

async function guide() {
  const form = document.getElementById('sso-form');
  const protocol = root.dataset.protocol;
  const provider = root.dataset.provider;
  const testSection = document.getElementById('test-result');
  const savedSection = document.getElementById('saved');
  const secretStatus = document.getElementById('s-clientSecret');

  const sp = await api('GET', '/settings/sso/service-provider');
  if (sp.ok) {
    const values = { ...sp.data, acsUrlValidator: sp.data.acsUrl ? `^${regexEscape(sp.data.acsUrl)}$` : null };
    for (const node of document.querySelectorAll('[data-sp]')) fillValue(node, values[node.dataset.sp]);
  } else {
    for (const node of document.querySelectorAll('[data-sp]')) node.textContent = 'Could not be loaded';
    showError([`The values to paste could not be loaded. ${words(sp)}`]);
  }

  const current = await api('GET', '/settings/sso');
  const existing = document.getElementById('existing-connection');
  const orgName = document.getElementById('org-name').textContent;
  if (current.ok) {
    const c = current.data;
    if (c.enabled) {
      // A link never changes a connection an owner has turned on (the API answers 409): say so, offer only Test.
      existing.textContent = `${orgName} already has single sign-on turned on (${c.protocol.toUpperCase()}, ${c.provider}). Only an owner of ${orgName} can change it, in the Gatehouse dashboard: you can test settings here, but not save them.`;
      document.getElementById('save-button').hidden = true;
    } else {
      existing.textContent = `A ${c.protocol.toUpperCase()} connection (${c.provider}) saved earlier is waiting for an owner of ${orgName} to turn it on. Saving here replaces it.`;
    }
    existing.hidden = false;
    if (c.protocol === protocol && protocol === 'oidc') {
      const issuer = document.getElementById('f-issuerUrl');
      const clientId = document.getElementById('f-clientId');
      if (issuer && !issuer.value) issuer.value = c.issuerUrl || '';
      if (clientId && !clientId.value) clientId.value = c.clientId || '';
      const tenants = document.getElementById('f-allowedTenants');
      if (tenants && !tenants.value && Array.isArray(c.allowedTenants)) tenants.value = c.allowedTenants.join(', ');
    }
    if (secretStatus) secretStatus.textContent = c.protocol === 'oidc' && c.hasClientSecret ? 'A client secret is saved. Leave this empty to keep it.' : 'No client secret is saved yet.';
  } else if (secretStatus) {
    secretStatus.textContent = 'No client secret is saved yet.';
  }

  const metadataFile = document.getElementById('f-metadataFile');
  metadataFile?.addEventListener('change', async () => {
    const file = metadataFile.files && metadataFile.files[0];
    if (!file) return;
    document.getElementById('f-idpMetadataXml').value = await file.text();
    showStatus('Loaded.', `${file.name} is in the metadata box.`);
  });

  function settings() {
    const body = { protocol, provider };
    for (const input of form.querySelectorAll('[data-field]')) {
      const value = input.value.trim();
      if (!value) continue;
      body[input.dataset.field] = input.dataset.field === 'allowedTenants' ? value.split(/[\s,]+/).filter(Boolean) : value;
    }
    return body;
  }

  function renderChecks(checks, warnings) {
    const list = document.getElementById('test-checks');
    list.replaceChildren(...(checks || []).map((c) => el('li', { class: c.ok ? 'check ok' : 'check failed' }, [
      el('strong', {}, [c.ok ? 'Passed: ' : 'Failed: ']), `${c.name.replaceAll('_', ' ')} — ${c.message}`,
    ])));
    document.getElementById('test-warnings').replaceChildren(...(warnings || []).map((w) => el('li', { class: 'check warning' }, [
      el('strong', {}, ['Note: ']), w.message,
    ])));
    testSection.hidden = false;
  }

  function fail(result, what) {
    const lines = showFieldErrors(form, result);
    if (Array.isArray(result.details.checks)) {
      renderChecks(result.details.checks, []);
      document.getElementById('test-summary').textContent = `${what} failed: fix the checks marked Failed, then try again.`;
    }
    showError(lines.length ? ['Please correct the following:', lines] : [words(result)]);
  }

  document.getElementById('test-button').addEventListener('click', () => busy(form, async () => {
    clearMessages();
    const result = await api('POST', '/settings/sso/test', settings());
    if (!result.ok) return fail(result, 'The test');
    showFieldErrors(form, { code: 'OK' });
    renderChecks(result.data.checks, result.data.warnings);
    document.getElementById('test-summary').textContent = 'Every check passed. Nothing is saved yet: select Save to turn single sign-on on.';
    showStatus('Test passed.', 'Every check passed. Select Save to turn single sign-on on.');
  }));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    return busy(form, async () => {
      clearMessages();
      const result = await api('PUT', '/settings/sso', settings());
      if (!result.ok) return fail(result, 'Saving');
      showFieldErrors(form, { code: 'OK' });
      const secret = document.getElementById('f-clientSecret');
      if (secret) secret.value = '';
      if (secretStatus) secretStatus.textContent = 'A client secret is saved. Leave this empty to keep it.';
      fillValue(document.getElementById('pv-saved-login'), result.data.loginUrl);
      const on = result.data.enabled === true;
      document.getElementById('saved-pending').hidden = on;
      document.getElementById('saved-enabled').hidden = !on;
      savedSection.hidden = false;
      showStatus('Saved.', on
        ? 'Single sign-on is on. Share the sign-in link below with your people.'
        : `An owner of ${orgName} must now turn single sign-on on in the Gatehouse dashboard before anyone can sign in with it.`);
    });
  });
}

// ---- Domains ----

const DNS_ANSWERS = {
  nxdomain: 'the name does not exist (NXDOMAIN): the record is not published yet, or not under this name.',
  no_record: 'the name exists but has no TXT record.',
  wrong_value: 'TXT records are published, but none has the expected value.',
  timeout: 'no answer in time.',
  dns_error: 'an error.',
};

function domainItem(d) {
  const verified = d.status === 'verified';
  const paste = (key, label, value) => el('div', { class: 'paste' }, [
    el('span', { class: 'paste-label', id: `pl-${key}-${d.id}` }, [label]),
    el('code', { class: 'paste-value', id: `pv-${key}-${d.id}`, 'data-ready': 'true' }, [value]),
    el('button', { type: 'button', class: 'secondary copy', 'data-copy-from': `pv-${key}-${d.id}` }, ['Copy', el('span', { class: 'visually-hidden' }, [` ${label} for ${d.domain}`])]),
  ]);
  const children = [
    el('h3', { id: `dh-${d.id}` }, [d.domain]),
    el('p', { class: 'domain-status' }, ['Status: ', el('strong', { class: verified ? 'verified' : 'pending' }, [verified ? 'Verified' : 'Waiting for verification'])]),
  ];
  if (!verified) {
    children.push(
      el('p', {}, ['At your DNS provider, add this record:']),
      el('div', { class: 'paste-list' }, [
        el('div', { class: 'paste' }, [el('span', { class: 'paste-label' }, ['Type']), el('code', { class: 'paste-value' }, [d.verification.type])]),
        paste('name', 'TXT record name', d.verification.name),
        paste('value', 'TXT record value', d.verification.value),
      ]),
      el('p', { class: 'hint' }, [`Some DNS providers add the domain to the name themselves: then enter only ${d.verification.name.slice(0, -(d.domain.length + 1))}.`]),
      el('button', { type: 'button', 'data-verify': d.id, 'data-domain': d.domain }, ['Verify', el('span', { class: 'visually-hidden' }, [` ${d.domain}`])]),
      el('div', { class: 'verify-result', id: `vr-${d.id}` }, []),
    );
  }
  return el('li', { class: 'domain', id: `domain-${d.id}`, 'aria-labelledby': `dh-${d.id}` }, children);
}

async function domains() {
  const list = document.getElementById('domain-list');
  const empty = document.getElementById('domains-empty');
  const form = document.getElementById('domain-form');
  const input = document.getElementById('f-domain');

  function put(d) {
    const item = domainItem(d);
    const old = document.getElementById(`domain-${d.id}`);
    if (old) old.replaceWith(item);
    else list.append(item);
    empty.hidden = true;
    return item;
  }

  const listed = await api('GET', '/domains?limit=100');
  if (listed.ok) {
    empty.textContent = 'No domains yet.';
    empty.hidden = listed.data.items.length > 0;
    for (const d of listed.data.items) put(d);
  } else {
    empty.textContent = 'The domains could not be loaded.';
    showError([words(listed)]);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    return busy(form, async () => {
      clearMessages();
      const domain = input.value.trim();
      const result = await api('POST', '/domains', { domain });
      if (!result.ok) {
        const lines = showFieldErrors(form, result);
        if (!lines.length) {
          input.setAttribute('aria-invalid', 'true');
          document.getElementById('e-domain').replaceChildren(el('span', {}, [words(result)]));
        }
        return showError(lines.length ? ['Please correct the following:', lines] : [words(result)]);
      }
      showFieldErrors(form, { code: 'OK' });
      input.value = '';
      put(result.data);
      showStatus('Added.', `${result.data.domain}: publish the TXT record shown below at your DNS provider, then select Verify.`);
    });
  });

  list.addEventListener('click', async (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-verify]') : null;
    if (!button) return;
    const id = button.dataset.verify;
    const name = button.dataset.domain;
    clearMessages();
    button.disabled = true;
    const result = await api('POST', `/domains/${encodeURIComponent(id)}/verify`);
    button.disabled = false;
    if (result.ok) {
      put(result.data);
      return showStatus('Verified.', `${name} is verified.`);
    }
    const box = document.getElementById(`vr-${id}`);
    if (result.code === 'DOMAIN_VERIFICATION_FAILED') {
      const d = result.details;
      const found = Array.isArray(d.found) ? d.found : [];
      box.replaceChildren(
        el('p', {}, [el('strong', {}, ['DNS answered: ']), DNS_ANSWERS[d.reason] || d.reason || 'nothing usable.', d.dnsError ? ` (${d.dnsError})` : null]),
        found.length ? el('p', {}, ['Found:']) : null,
        found.length ? el('ul', {}, found.map((f) => el('li', {}, [el('code', {}, [f])]))) : null,
        d.expected ? el('p', {}, ['Expected: ', el('code', {}, [d.expected.value])]) : null,
      );
      return showError([`${name} is not verified yet.`, result.message]);
    }
    box.replaceChildren(el('p', {}, [words(result)]));
    return showError([words(result)]);
  });
}

// The expiry in the reader's own time zone (the server renders it in UTC).
for (const time of document.querySelectorAll('#link-expiry time[datetime]')) {
  const d = new Date(time.getAttribute('datetime'));
  if (Number.isNaN(d.getTime())) continue;
  try {
    time.textContent = d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' });
  } catch {
    // An engine without these options keeps the server's UTC text.
  }
}

if (root.dataset.view === 'guide') guide();
else if (root.dataset.view === 'domains') domains();

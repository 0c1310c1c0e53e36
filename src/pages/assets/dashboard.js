// /dashboard: every write goes through the REST API with fetch (same origin, JSON, the session
// cookie; the CSRF rule is the Origin header the browser sends). Served from /assets/dashboard.js
// (no inline script: CSP script-src 'self'). Everything is written with DOM nodes and textContent,
// never innerHTML: server messages are data, not markup.
//
// Forms: <form data-api="PUT /api/…" data-after="reload|…">; an input's name is a JSON path
// (universalLogout.enabled) and data-type coerces it: bool (checkbox), set (checkboxes sharing a
// name → array), value (checkbox → its value or nothing), int, list (comma/space separated),
// lines (one per line), json, date (end of that day, UTC). data-omit-empty leaves an empty input
// out; data-null-empty sends null. Buttons: <button data-api="POST /api/…"> (optional data-body
// JSON) for one-click actions; <button data-submit-to="POST /api/…"> sends its form elsewhere.

import { apiRequest } from './common.js';

const FLASH_KEY = 'gatehouse-dashboard-flash';
const statusRegion = document.getElementById('status');
const pageError = document.getElementById('error');

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children || []) node.append(child);
  return node;
}

const request = (method, path, body) => apiRequest(method, path, body);

function parseApi(spec) {
  const i = spec.indexOf(' ');
  return { method: spec.slice(0, i), path: spec.slice(i + 1) };
}

// ---- form → JSON

function setPath(target, path, value) {
  const keys = path.split('.');
  let node = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k];
  }
  node[keys[keys.length - 1]] = value;
}

class FieldError extends Error {
  constructor(input, message) {
    super(message);
    this.input = input;
  }
}

export function serialize(form) {
  const body = {};
  const sets = new Map();
  for (const input of form.elements) {
    const name = input.name;
    if (!name || input.disabled || !('value' in input) || input.type === 'submit' || input.type === 'button') continue;
    const type = input.dataset.type;
    if (input.type === 'checkbox') {
      if (type === 'set') {
        if (!sets.has(name)) sets.set(name, []);
        if (input.checked) sets.get(name).push(input.value);
      } else if (type === 'value') {
        if (input.checked) setPath(body, name, input.value);
      } else {
        setPath(body, name, input.checked);
      }
      continue;
    }
    if (input.type === 'radio') {
      if (input.checked) setPath(body, name, input.value);
      continue;
    }
    const raw = input.type === 'password' ? input.value : input.value.trim();
    if (raw === '') {
      if ('omitEmpty' in input.dataset) continue;
      if ('nullEmpty' in input.dataset) {
        setPath(body, name, null);
        continue;
      }
    }
    let value = raw;
    if (type === 'int' && raw !== '') value = Number(raw);
    else if (type === 'list') value = raw.split(/[\s,]+/).filter(Boolean);
    else if (type === 'lines') value = raw.split('\n').map((s) => s.trim()).filter(Boolean);
    else if (type === 'date' && raw !== '') value = `${raw}T23:59:59Z`;
    else if (type === 'json' && raw !== '') {
      try {
        value = JSON.parse(raw);
      } catch {
        throw new FieldError(input, 'is not valid JSON');
      }
    }
    setPath(body, name, value);
  }
  for (const [name, values] of sets) if (values.length) setPath(body, name, values);
  return body;
}

// ---- messages

function flash(text) {
  try {
    sessionStorage.setItem(FLASH_KEY, text);
  } catch {
    /* storage off: the reload simply shows no message */
  }
}

function showStatus(text, moveFocus = true) {
  statusRegion.replaceChildren(el('p', {}, [el('strong', {}, ['Done: ']), text]));
  if (moveFocus) statusRegion.focus();
}

function errorParagraphs(result) {
  const parts = [el('p', {}, [el('strong', {}, ['Error: ']), result.status >= 500 ? `Something went wrong on our side. ${result.message}` : result.message])];
  if (result.code === 'CSRF_REJECTED') parts.push(el('p', {}, ['This page is not served from an origin Gatehouse trusts (GATEHOUSE_BASE_URL, GATEHOUSE_TRUSTED_ORIGINS).']));
  if (result.code === 'UNAUTHENTICATED') parts.push(el('p', {}, [el('a', { href: `/sign-in?returnTo=${encodeURIComponent(location.pathname)}` }, ['Sign in again'])]));
  return parts;
}

function clearErrors(form) {
  for (const bad of form.querySelectorAll('[aria-invalid="true"]')) bad.removeAttribute('aria-invalid');
  for (const slot of form.querySelectorAll('.field-error')) slot.replaceChildren();
  const alert = form.querySelector('[data-alert]');
  if (alert) alert.replaceChildren();
  pageError.replaceChildren();
}

/** The input an issue path names ("allowedDomains.0" falls back to "allowedDomains"). */
function inputFor(form, path) {
  const keys = String(path || '').split('.');
  for (let n = keys.length; n > 0; n--) {
    const name = keys.slice(0, n).join('.');
    const input = [...form.elements].find((e) => e.name === name);
    if (input) return input;
  }
  return null;
}

function errorSlot(form, input) {
  return document.getElementById(`${input.id}-error`) || input.closest('fieldset')?.querySelector('.field-error') || null;
}

/** VALIDATION_FAILED: each issue next to its field (aria-invalid, the message in its described-by slot); the rest in the alert. */
function showFormErrors(form, result) {
  const alert = form.querySelector('[data-alert]') || pageError;
  const issues = result.code === 'VALIDATION_FAILED' && Array.isArray(result.details.issues) ? result.details.issues : [];
  let first = null;
  const loose = [];
  for (const issue of issues) {
    const input = inputFor(form, issue.path);
    const slot = input && errorSlot(form, input);
    if (!input || !slot) {
      loose.push(`${issue.path ? `${issue.path}: ` : ''}${issue.message}`);
      continue;
    }
    input.setAttribute('aria-invalid', 'true');
    if (slot.textContent) slot.append(' ');
    slot.append(issue.message);
    first = first || input;
  }
  if (issues.length) {
    const parts = [el('p', {}, [el('strong', {}, ['Error: ']), first ? 'Please correct the highlighted fields.' : result.message])];
    if (loose.length) parts.push(el('ul', {}, loose.map((t) => el('li', {}, [t]))));
    alert.replaceChildren(...parts);
  } else {
    alert.replaceChildren(...errorParagraphs(result));
  }
  if (first) first.focus();
  else alert.focus();
}

// ---- what happens after an answer

function outputOf(source) {
  const target = source.dataset.outputTarget && document.getElementById(source.dataset.outputTarget);
  return target || source.closest('form')?.querySelector('[data-output]') || source.parentElement.querySelector('.form-output') || statusRegion;
}

function copyRow(label, value) {
  const id = `out-${Math.random().toString(36).slice(2, 10)}`;
  return el('div', { class: 'field copy' }, [
    el('label', { for: id }, [label]),
    el('div', { class: 'copy-row' }, [el('input', { id, type: 'text', readonly: '', value }), el('button', { type: 'button', class: 'secondary', 'data-copy': id, 'aria-label': `Copy ${label}` }, ['Copy'])]),
  ]);
}

function checkList(checks, warnings) {
  const items = [];
  for (const c of checks || []) items.push(el('li', { class: c.ok ? 'ok' : 'fail' }, [el('strong', {}, [c.ok ? 'Passed: ' : 'Failed: ']), `${c.name} — ${c.message}`]));
  for (const w of warnings || []) items.push(el('li', { class: 'warning' }, [el('strong', {}, ['Warning: ']), `${w.name} — ${w.message}`]));
  return el('ul', { class: 'checks' }, items);
}

function focusOutput(out) {
  out.setAttribute('tabindex', '-1');
  out.focus();
}

const AFTER = {
  reload(source, result) {
    flash(source.dataset.flash || source.closest('form')?.dataset.flash || result.message || 'Saved.');
    location.reload();
  },
  'open-org'(_source, result) {
    location.assign(`/dashboard/${encodeURIComponent(result.data.id)}`);
  },
  'sso-test'(source, result) {
    const out = outputOf(source);
    const data = result.ok ? result.data : result.details;
    const heading = result.ok ? 'Test passed: the IdP is reachable and the settings are valid.' : `Test failed: ${result.message}`;
    out.replaceChildren(el('h3', {}, [heading]), checkList(data.checks, data.warnings));
    if (!result.ok && !data.checks) out.append(el('p', {}, [result.message]));
    focusOutput(out);
  },
  'domain-verify'(source, result) {
    if (result.ok) return AFTER.reload(source, result);
    const out = outputOf(source);
    const d = result.details || {};
    const parts = [el('h3', {}, ['Not verified yet — what DNS answered']), el('p', {}, [result.message])];
    if (Array.isArray(d.found)) parts.push(el('p', {}, ['TXT records found:']), el('ul', {}, d.found.length ? d.found.map((f) => el('li', {}, [el('code', {}, [f])])) : [el('li', {}, ['none'])]));
    if (d.reason) parts.push(el('p', { class: 'meta' }, [`Reason: ${d.reason}${d.dnsError ? ` (${d.dnsError})` : ''}`]));
    out.replaceChildren(...parts);
    focusOutput(out);
  },
  'api-key'(source, result) {
    const out = outputOf(source);
    out.replaceChildren(
      el('h3', {}, [`API key "${result.data.apiKey.name}" created`]),
      el('p', {}, [el('strong', {}, ['Copy it now: ']), 'it is shown only this once.']),
      copyRow('New API key', result.data.key),
      el('p', {}, [el('a', { href: location.pathname }, ['Done — show the list'])]),
    );
    source.closest('form')?.reset();
    out.querySelector('input').focus();
  },
  'setup-link'(source, result) {
    const out = outputOf(source);
    out.replaceChildren(
      el('h3', {}, ['Setup link created']),
      el('p', {}, [`Send it to your IT administrator. It is shown only this once and works until ${result.data.expiresAt} for the first browser that opens it.`]),
      copyRow('Setup link URL', result.data.url),
      el('p', {}, [el('a', { href: location.pathname }, ['Done — show the list'])]),
    );
    out.querySelector('input').focus();
  },
  'totp-enroll'(source, result) {
    const out = outputOf(source);
    const parts = [el('h3', {}, ['Scan this QR code with your authenticator app'])];
    if (result.data.qrCodeSvg) {
      const bytes = new TextEncoder().encode(result.data.qrCodeSvg);
      let bin = '';
      for (const b of bytes) bin += String.fromCharCode(b);
      parts.push(el('img', { class: 'qr', src: `data:image/svg+xml;base64,${btoa(bin)}`, alt: 'QR code to add Gatehouse to your authenticator app', width: '200', height: '200' }));
    }
    parts.push(el('p', {}, ['Or enter this key by hand:']), copyRow('Secret key', result.data.secret));
    out.replaceChildren(...parts);
    const confirmForm = document.getElementById('totp-confirm-form');
    confirmForm.hidden = false;
    document.getElementById('totp-code').focus();
  },
  'recovery-codes'(source, result) {
    const form = source.closest('form');
    const out = form ? form.querySelector('[data-output]') : outputOf(source);
    out.replaceChildren(
      el('h3', {}, ['Your recovery codes']),
      el('p', {}, [el('strong', {}, ['Save them now: ']), 'each works once if you lose your authenticator, and they are not shown again.']),
      el('ul', { class: 'codes', id: 'recovery-codes' }, result.data.recoveryCodes.map((c) => el('li', {}, [el('code', {}, [c])]))),
      el('p', {}, [el('a', { href: location.pathname }, ['I saved them'])]),
    );
    if (form) for (const input of form.querySelectorAll('input, button[type="submit"]')) input.disabled = true;
    focusOutput(out);
  },
};

async function busy(container, work) {
  const buttons = [...container.querySelectorAll('button')];
  container.setAttribute('aria-busy', 'true');
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    container.removeAttribute('aria-busy');
    for (const b of buttons) b.disabled = false;
  }
}

/** Send `body` to `spec` and run the `after` handler; errors beside the fields of `form` (or in the page alert). */
async function run(source, form, spec, body, after) {
  const { method, path } = parseApi(spec);
  const result = await busy(form || source.parentElement, () => request(method, path, body));
  const handler = AFTER[after] || AFTER.reload;
  if (result.ok) return handler(source, result);
  // The test and the verify answers carry what to show (checks, what DNS answered) in their details.
  if ((after === 'sso-test' && result.code === 'SSO_TEST_FAILED') || (after === 'domain-verify' && result.code === 'DOMAIN_VERIFICATION_FAILED')) {
    return handler(source, result);
  }
  if (form) showFormErrors(form, result);
  else {
    pageError.replaceChildren(...errorParagraphs(result));
    pageError.focus();
  }
}

/** The form's JSON body, or null after showing the field a value could not be read from. */
function serializeOrShow(form) {
  try {
    return serialize(form);
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    showFormErrors(form, { code: 'VALIDATION_FAILED', message: e.message, details: { issues: [{ path: e.input.name, message: e.message }] } });
    return null;
  }
}

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
  event.preventDefault();
  clearErrors(form);
  const body = serializeOrShow(form);
  if (body === null) return;
  // data-confirm-if="name=value": ask only when the body sets that value (e.g. raising the policy to sso).
  const [ifName, ifValue] = (form.dataset.confirmIf || '').split('=');
  const needsConfirm = form.dataset.confirm && (!form.dataset.confirmIf || String(body[ifName]) === ifValue);
  if (needsConfirm && !window.confirm(form.dataset.confirm)) return;
  void run(event.submitter || form, form, form.dataset.api, body, form.dataset.after);
});

document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button') : null;
  if (!button) return;
  if (button.dataset.copy) {
    const input = document.getElementById(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      showStatus(`Copied ${button.getAttribute('aria-label')?.replace(/^Copy /, '') || 'the value'} to the clipboard.`, false);
    } catch {
      showStatus('The value is selected: press Ctrl+C (⌘C) to copy it.', false);
    }
    return;
  }
  if ('signOut' in button.dataset) {
    const result = await request('POST', '/api/auth/sign-out', {});
    location.assign(result.ok && result.data && result.data.idpLogoutUrl ? result.data.idpLogoutUrl : '/sign-in');
    return;
  }
  if (button.dataset.submitTo) {
    const form = button.closest('form');
    clearErrors(form);
    const body = serializeOrShow(form);
    if (body === null) return;
    void run(button, form, button.dataset.submitTo, body, button.dataset.after);
    return;
  }
  if (button.dataset.api) {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    pageError.replaceChildren();
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
    void run(button, null, button.dataset.api, body, button.dataset.after);
  }
});

// SSO protocol choice: show the form of the chosen protocol.
for (const radio of document.querySelectorAll('[data-protocol-choice] input[type="radio"]')) {
  radio.addEventListener('change', () => {
    for (const panel of document.querySelectorAll('[data-protocol-panel]')) panel.hidden = panel.dataset.protocolPanel !== radio.value;
  });
}

// A message left by the action that reloaded the page.
try {
  const message = sessionStorage.getItem(FLASH_KEY);
  if (message) {
    sessionStorage.removeItem(FLASH_KEY);
    showStatus(message);
  }
} catch {
  /* storage off */
}
if (pageError.textContent.trim()) pageError.focus();

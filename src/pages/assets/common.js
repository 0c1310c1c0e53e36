// Shared helpers of the hosted pages (ES module, no build step; served from /assets/common.js).
// Everything is written with textContent / DOM nodes, never innerHTML: server messages and
// URLs are data, not markup.

/**
 * One call to the Gatehouse API (JSON body when given, same-origin credentials, extra headers
 * such as X-Setup-Link); never throws for an HTTP error, only answers
 * { ok, status, data, message } or { ok: false, status, code, message, details, retryAfter }.
 */
export async function apiRequest(method, path, body, headers = {}) {
  const init = { method, headers: { accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, code: 'NETWORK', message: 'Gatehouse could not be reached. Check your connection and try again.', details: {} };
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = null;
  }
  if (res.ok && json && json.success) return { ok: true, status: res.status, data: json.data, message: json.message };
  const retryHeader = Number(res.headers.get('retry-after'));
  return {
    ok: false,
    status: res.status,
    code: (json && json.code) || 'INTERNAL',
    message: (json && json.message) || `Unexpected answer (HTTP ${res.status}).`,
    details: (json && json.details) || {},
    retryAfter: Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader : null,
  };
}

/** POST a JSON body to the Gatehouse API (see apiRequest). */
export function postJson(path, body) {
  return apiRequest('POST', path, body);
}

/** The page's validated returnTo (rendered by the server into data-return-to). */
export function returnTo(root) {
  return root.dataset.returnTo || '/';
}

/** Append returnTo to an SSO login URL (unless it is the default or already there). */
export function withReturnTo(url, target) {
  if (!url || !target || target === '/') return url;
  const u = new URL(url, window.location.origin);
  if (!u.searchParams.has('returnTo')) u.searchParams.set('returnTo', target);
  return u.origin === window.location.origin ? u.pathname + u.search : u.href;
}

/** Only same-origin relative paths and absolute http(s) URLs may become an href. */
function safeHref(url) {
  try {
    const u = new URL(url, window.location.origin);
    return u.protocol === 'http:' || u.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children || []) node.append(child);
  return node;
}

export function waitText(seconds) {
  if (!seconds || seconds <= 0) return 'Wait a little and try again.';
  if (seconds < 90) return `Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`;
  const minutes = Math.ceil(seconds / 60);
  return `Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

/**
 * Show an error in the page's alert region and move focus to it (so keyboard and screen-reader
 * users land on it). `parts` are strings (paragraphs) or { href, text } (a link styled as a button)
 * or { list: [strings] }.
 */
export function showError(region, parts) {
  region.replaceChildren();
  let first = true;
  for (const part of parts) {
    if (typeof part === 'string') {
      const p = el('p');
      if (first) p.append(el('strong', {}, ['Error: ']));
      p.append(part);
      region.append(p);
      first = false;
    } else if (part.list) {
      region.append(el('ul', {}, part.list.map((item) => el('li', {}, [item]))));
    } else if (part.href) {
      const href = safeHref(part.href);
      if (href) region.append(el('p', {}, [el('a', { class: 'button', href, id: part.id || '' }, [part.text])]));
    }
  }
  region.focus();
}

export function clearMessages(...regions) {
  for (const r of regions) r.replaceChildren();
}

/** Show a status (success) message in a polite live region and move focus to it. */
export function showStatus(region, heading, text, moveFocus = true) {
  region.replaceChildren(el('p', {}, [el('strong', {}, [heading + ' ']), text]));
  if (moveFocus) region.focus();
}

/** Words for the error codes the pages can meet (SPEC §3); anything else shows the server's message. */
export function describe(result, target) {
  switch (result.code) {
    case 'INVALID_CREDENTIALS':
      return ['The email or password is incorrect.'];
    case 'RATE_LIMITED': {
      const wait = result.retryAfter ?? (typeof result.details.retryAfter === 'number' ? result.details.retryAfter : null);
      return [`Too many attempts. ${waitText(wait)}`];
    }
    case 'SSO_REQUIRED':
      return [
        'Your organization requires single sign-on.',
        result.message,
        { href: withReturnTo(result.details.ssoUrl, target), text: 'Continue with single sign-on', id: 'sso-required-link' },
      ];
    case 'CSRF_REJECTED':
      return ['This page is not served from an origin Gatehouse trusts (check GATEHOUSE_BASE_URL and GATEHOUSE_TRUSTED_ORIGINS).'];
    case 'VALIDATION_FAILED': {
      const issues = Array.isArray(result.details.issues) ? result.details.issues : [];
      return issues.length
        ? ['Please correct the following:', { list: issues.map((i) => `${fieldName(i.path)} ${i.message}`.trim()) }]
        : [result.message];
    }
    case 'NETWORK':
      return [result.message];
    default:
      return result.status >= 500 ? [`Something went wrong on our side. ${result.message}`] : [result.message];
  }
}

const FIELD_NAMES = { email: 'Email:', password: 'Password:', name: 'Name:', code: 'Code:', recoveryCode: 'Recovery code:', returnTo: 'Return address:' };
function fieldName(path) {
  return FIELD_NAMES[path] || (path ? `${path}:` : '');
}

/** Mark inputs named in a VALIDATION_FAILED answer as invalid (and clear the others). */
export function markInvalid(form, result) {
  const bad = new Set((result && result.code === 'VALIDATION_FAILED' && Array.isArray(result.details.issues) ? result.details.issues : []).map((i) => i.path));
  for (const input of form.querySelectorAll('input[data-field]')) {
    if (bad.has(input.dataset.field)) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

/** Disable a form's buttons while a request runs (and say so to assistive technology). */
export async function busy(form, work) {
  const buttons = [...form.querySelectorAll('button')];
  form.setAttribute('aria-busy', 'true');
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    form.removeAttribute('aria-busy');
    for (const b of buttons) b.disabled = false;
  }
}

/** Leave the page for the validated returnTo. */
export function go(target) {
  window.location.assign(target || '/');
}

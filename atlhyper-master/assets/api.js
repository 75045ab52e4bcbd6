// The master's REST API on the same origin, with the token the user entered (a viewer token
// reads; an operator token also writes: silences).

const TOKEN_STORAGE_KEY = 'atlhyper.viewerToken';

/** A failed request: `status` is the HTTP status, 0 when the master could not be reached. */
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let viewerToken = readStoredToken();
let whenUnauthorized = () => {};

function readStoredToken() {
  try { return localStorage.getItem(TOKEN_STORAGE_KEY) || ''; } catch (_) { return ''; }
}

/** Uses `token` from now on and keeps it in this browser's local storage. */
export function useViewerToken(token) {
  viewerToken = token;
  try { localStorage.setItem(TOKEN_STORAGE_KEY, token); } catch (_) { /* private mode: keep it in memory */ }
}

/** Calls `handler` whenever the master answers 401 (a viewer token is needed). */
export function onUnauthorized(handler) { whenUnauthorized = handler; }

/**
 * GETs `path` and returns its JSON body; throws an ApiError otherwise. When `timing` is given,
 * `timing.parse` receives the milliseconds spent parsing the body.
 */
export async function getJson(path, timing) {
  const headers = { Accept: 'application/json' };
  if (viewerToken) headers.Authorization = 'Bearer ' + viewerToken;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store' });
  } catch (_) {
    throw new ApiError(0, 'The master is unreachable');
  }
  const text = await res.text();
  const t0 = performance.now();
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch (_) { body = null; }
  }
  if (timing) timing.parse = performance.now() - t0;
  if (res.status === 401) { whenUnauthorized(); throw new ApiError(401, 'A viewer token is required'); }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : res.status + ' ' + res.statusText;
    throw new ApiError(res.status, msg);
  }
  if (body === null) throw new ApiError(res.status, 'The master sent a body that is not JSON');
  return body;
}

/** POSTs `body` as JSON to `path` with the stored token and returns the answer's JSON. */
export function postJson(path, body) { return send('POST', path, body); }

/** DELETEs `path` with the stored token and returns the answer's JSON (null when empty). */
export function deleteJson(path) { return send('DELETE', path); }

/** A write: throws an ApiError on refusal (403: the token may only read), like `getJson`. */
async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (viewerToken) headers.Authorization = 'Bearer ' + viewerToken;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    throw new ApiError(0, 'The master is unreachable');
  }
  const text = await res.text();
  let answer = null;
  try { answer = text ? JSON.parse(text) : null; } catch (_) { answer = null; }
  if (res.status === 401) { whenUnauthorized(); throw new ApiError(401, 'A token is required'); }
  if (!res.ok) {
    throw new ApiError(res.status, answer && typeof answer.error === 'string' ? answer.error : res.status + ' ' + res.statusText);
  }
  return answer;
}

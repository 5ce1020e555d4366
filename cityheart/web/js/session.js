// Who is at the screen: the token (pasted from `cityheart token`, or the identity provider's
// after signing in through it, see oidc.js) kept in sessionStorage, checked with
// GET /api/whoami, and the dispatch API called with it (Authorization: Bearer <token>).
//
// Without a token the page works as before: the server treats the caller as an anonymous
// operator while auth.required is false; with auth.required it answers 401 and the page asks
// for a token. Signing in or out reloads the page, so the feed, the store and every screen
// start over with what the new role may see.

const KEY = "cityheart.token";

/** An API answer: {ok, status, data} where data is the JSON document (or an error one). */
async function call(method, path, token, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store",
                                   body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    return { ok: false, status: 0, data: { error: "network", detail: `the server does not answer (${error.message})` } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = { error: "invalid", detail: `HTTP ${response.status} without a JSON answer` };
  }
  if (!response.ok && (typeof data !== "object" || data === null || !data.detail)) {
    const detail = data?.detail || data?.error || `HTTP ${response.status}`;
    data = { error: data?.error || "http", detail: String(detail) };
  }
  return { ok: response.ok, status: response.status, data };
}

export class Session {
  constructor(storage = window.sessionStorage) {
    this.storage = storage;
    this.token = storage.getItem(KEY) || null;
    this.me = null; // {sub, role, department} once whoami answered
    this.problem = null; // why the API refused us: {status, detail}
    this.listeners = new Set();
  }

  /** Ask the server who this token is; true when it answered. */
  async check() {
    const answer = await this.get("api/whoami");
    if (answer.ok) {
      this.me = { sub: answer.data.sub, role: answer.data.role, department: answer.data.department || null };
      this.problem = null;
    } else {
      this.me = null;
      this.problem = { status: answer.status, detail: answer.data.detail };
    }
    this.changed();
    return answer.ok;
  }

  /** Whether this caller may act at all (viewers may not). */
  get mayAct() {
    return this.me !== null && this.me.role !== "viewer";
  }

  get role() {
    return this.me?.role ?? null;
  }

  /** "ana (dispatcher, environment-bureau)". */
  describe() {
    if (!this.me) return "";
    const parts = [this.me.role, this.me.department].filter(Boolean).join(", ");
    return `${this.me.sub} (${parts})`;
  }

  /** The feed URL with ?token= when signed in. */
  feedUrl(url) {
    if (!this.token) return url;
    const joiner = url.includes("?") ? "&" : "?";
    return `${url}${joiner}token=${encodeURIComponent(this.token)}`;
  }

  signIn(token) {
    this.storage.setItem(KEY, token.trim());
    location.reload();
  }

  /** Take the token the identity provider gave on this page load (no reload needed). */
  adopt(token) {
    this.storage.setItem(KEY, token.trim());
    this.token = token.trim();
  }

  signOut() {
    this.storage.removeItem(KEY);
    location.reload();
  }

  get(path) {
    return call("GET", path, this.token);
  }

  post(path, body) {
    return call("POST", path, this.token, body);
  }

  /** The feed refused our token (or wants one): say so where the sign-in is. */
  refused(detail) {
    this.problem = { status: 401, detail };
    this.changed();
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this);
  }
}

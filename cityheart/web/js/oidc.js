// Sign-in through the city's OpenID Connect provider (Keycloak, Keyrock, Azure AD, ...): the
// authorization code flow with PKCE (RFC 7636), run by this page as a public client.
//
// /config.json names the provider when auth.oidc has a client_id:
//   {"issuer", "client_id", "scope", "token": "access_token" | "id_token"}
// startSignIn() reads the provider's discovery document, keeps a random state and code verifier
// in sessionStorage and goes to its login page; the provider comes back to this page with
// ?code=&state=, and finishSignIn() trades the code (with the verifier) for tokens at the token
// endpoint and returns the one the server checks. The server, not the page, verifies it.
// The provider must allow this page's address as a redirect URI and as a web origin (CORS).

const PENDING = "cityheart.oidc";

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(size) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** Where the provider sends people back: this page, without query or hash. */
function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

async function discover(issuer) {
  const url = `${issuer}/.well-known/openid-configuration`;
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (error) {
    throw new Error(`the identity provider does not answer at ${url} (${error.message})`);
  }
  if (!response.ok) throw new Error(`the identity provider answers HTTP ${response.status} at ${url}`);
  return response.json();
}

/** Go to the provider's login page; resolves never (the page leaves), throws why not. */
export async function startSignIn(signin, storage = window.sessionStorage) {
  if (!window.crypto?.subtle) {
    throw new Error("signing in needs this page on https:// (or on localhost)");
  }
  const provider = await discover(signin.issuer);
  const verifier = random(32);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const state = random(16);
  storage.setItem(PENDING, JSON.stringify({ state, verifier, hash: location.hash,
                                            tokenEndpoint: provider.token_endpoint }));
  const query = new URLSearchParams({
    response_type: "code", client_id: signin.client_id, redirect_uri: redirectUri(),
    scope: signin.scope, state, nonce: random(16),
    code_challenge: base64url(new Uint8Array(digest)), code_challenge_method: "S256",
  });
  location.assign(`${provider.authorization_endpoint}?${query}`);
}

/** Back from the provider: its token; null when this page load is no return from it. */
export async function finishSignIn(signin, storage = window.sessionStorage) {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  const pending = JSON.parse(storage.getItem(PENDING) || "null");
  storage.removeItem(PENDING);
  // the code is single-use and the state spent: take them out of the address bar and history
  history.replaceState(null, "", `${location.pathname}${pending?.hash || ""}`);
  if (params.has("error")) {
    throw new Error(`the identity provider refused: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new Error("this sign-in answer does not match a sign-in started here: sign in again");
  }
  let response;
  try {
    response = await fetch(pending.tokenEndpoint, {
      method: "POST", cache: "no-store",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"),
                                  redirect_uri: redirectUri(), client_id: signin.client_id,
                                  code_verifier: pending.verifier }),
    });
  } catch (error) {
    throw new Error(`the identity provider's token endpoint does not answer (${error.message})`);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`the identity provider refused the sign-in: ${data.error_description || data.error || `HTTP ${response.status}`}`);
  }
  if (typeof data[signin.token] !== "string") {
    throw new Error(`the identity provider sent no ${signin.token}`);
  }
  return data[signin.token];
}

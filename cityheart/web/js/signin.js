// The header's sign-in control: "Sign in" opens a small form to paste a token issued by
// `cityheart token --role ... [--department ...]`, and, when /config.json names an identity
// provider (`signin`), a button to sign in through it (oidc.js); once the server knows the
// token, "signed in as <sub> (<role>[, <department>])" and "Sign out". A refused token (expired,
// forged) or a server that requires one (401 without a token) opens the form with the reason.

import { h, setAttr, setText } from "./dom.js";
import { startSignIn } from "./oidc.js";

export function signInControl(el, session, signin = null) {
  const who = h("span", { class: "who", "data-role": "who" });
  const toggle = h("button", { type: "button", class: "signin-toggle", "aria-expanded": "false" }, "Sign in");
  const signOut = h("button", { type: "button", class: "signout", hidden: true, onclick: () => session.signOut() }, "Sign out");
  const input = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false",
                             placeholder: "paste a token from `cityheart token`", "aria-label": "Access token" });
  const problem = h("p", { class: "signin-problem", role: "alert" });
  const provider = signin && h("button", { type: "button", class: "signin-provider primary",
    onclick: () => startSignIn(signin).catch((error) => setText(problem, error.message)) },
    "Sign in with the city account");
  const form = h("form", { class: "signin-form", hidden: true },
    provider,
    h("label", {}, provider ? "or paste an access token" : "Access token", input),
    problem,
    h("div", { class: "form-buttons" },
      h("button", { type: "submit", class: "primary" }, "Sign in"),
      h("button", { type: "button", onclick: () => open(false) }, "Cancel")));
  el.replaceChildren(who, toggle, signOut, form);

  function open(yes) {
    form.hidden = !yes;
    setAttr(toggle, "aria-expanded", yes ? "true" : "false");
    if (yes) (provider || input).focus();
  }

  toggle.addEventListener("click", () => open(form.hidden));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      setText(problem, "Paste a token first.");
      return;
    }
    session.signIn(token);
  });

  const show = () => {
    const signedIn = Boolean(session.token) && session.me !== null;
    setAttr(el, "data-signed-in", signedIn ? "true" : "false");
    setAttr(el, "data-role", session.me?.role ?? null);
    setText(who, signedIn ? `signed in as ${session.describe()}` : "");
    toggle.hidden = signedIn;
    signOut.hidden = !session.token;
    const refused = session.problem?.status === 401;
    setText(problem, refused ? session.problem.detail : "");
    if (refused) open(true);
  };
  session.onChange(show);
  show();
}

"use strict";
// The console's shell: hash routes (#/overview, #/workers, ... #/signin), sign-in and sign-out, the
// refresh loop of the page shown, and the navigation's current-page marks.
//
// Sign-in keeps the token in sessionStorage (api.js) after checking it with one read of the nodes API; a
// wrong token is the API's 401 and the user stays on sign-in with its message. Any 401 later (a token
// revoked, a cluster without anonymous reads before sign-in) clears the token and comes back here with the
// reason. A page whose refresh fails keeps what it showed and says why in the status region.
window.Loam = window.Loam || {};
(function (Loam) {
  const api = Loam.api;
  const v = Loam.view;
  const h = v.h;
  let current = null; // {timer, alive} of the page shown
  let reason = ""; // why the user was sent to sign-in

  const signin = {
    title: "Sign in",
    build: function (root) {
      const input = h("input", { type: "password", name: "token", id: "token", autocomplete: "off", required: true });
      v.fill(root, h("h1", {}, "Sign in"),
        reason ? h("p", { class: "error-text", id: "signin-reason" }, reason) : null,
        h("p", { class: "hint" }, "Enter an admin token of this cluster (the Coordinator's token file, or the LOAM_TOKEN " +
          "that loam local prints). It is kept in this browser tab only, and sent with each API call."),
        v.form("Sign in", [h("label", {}, "Token", input)], "Sign in", async function () {
          api.signIn(input.value.trim());
          await api.get("/api/v1/nodes", { limit: 0 });
          reason = "";
          who();
          v.status("Signed in.", "ok");
          location.hash = "#/overview";
          document.getElementById("main").focus();
        }));
      input.focus();
      return null;
    },
  };

  api.onUnauthorized(function (message) {
    api.signOut();
    reason = "Sign in needed: " + message;
    who();
    v.status(reason, "error");
    if (location.hash !== "#/signin") location.hash = "#/signin";
    else show("signin");
  });

  function who() {
    const signedIn = api.token() !== "";
    document.getElementById("who").textContent = signedIn ? "Signed in" : "Not signed in";
    document.getElementById("signout").hidden = !signedIn;
    document.getElementById("signin-link").hidden = signedIn;
  }

  function show(name) {
    if (current) {
      clearInterval(current.timer);
      current.alive = false;
    }
    const page = name === "signin" ? signin : Loam.pages[name];
    if (!page) {
      location.hash = "#/overview";
      return;
    }
    document.title = page.title + " · Loam console";
    document.querySelectorAll("nav a").forEach(function (a) {
      if (a.getAttribute("href") === "#/" + name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    const root = h("div", { id: "page-" + name });
    v.fill(document.getElementById("main"), root);
    const update = page.build(root);
    const state = { timer: null, alive: true, running: false };
    current = state;
    if (!update) return;
    const tick = async function () {
      if (state.running || !state.alive) return;
      state.running = true;
      try {
        await update();
      } catch (e) {
        if (state.alive && e.status !== 401) v.status(page.title + ": " + e.message, "error");
      } finally {
        state.running = false;
      }
    };
    tick();
    state.timer = setInterval(tick, page.every || 2000);
  }

  function route() {
    const hash = location.hash;
    if (hash === "" || hash === "#" || hash === "#/") {
      location.hash = "#/overview";
      return;
    }
    if (hash.slice(0, 2) === "#/") show(hash.slice(2));
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("skip").addEventListener("click", function (ev) {
      ev.preventDefault();
      document.getElementById("main").focus();
    });
    document.getElementById("signout").addEventListener("click", function () {
      api.signOut();
      reason = "";
      who();
      v.status("Signed out.", "ok");
      location.hash = "#/signin";
    });
    window.addEventListener("hashchange", route);
    who();
    route();
  });
})(window.Loam);

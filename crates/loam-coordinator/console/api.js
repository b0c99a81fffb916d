"use strict";
// The console's only way to the Coordinator: the public REST API, with the token the user signed in with.
//
// The token lives in sessionStorage (this tab only, gone when the tab closes) and is sent as
// `Authorization: Bearer <token>`, exactly as the CLI sends it. Without a token no header is sent, so reads
// work before sign-in when the Coordinator allows anonymous reads. Every error answer carries
// `{"status": "<message>"}`; `call` turns it into an ApiError with that message, and a 401 (missing or bad
// credentials) also tells the app, which sends the user back to sign-in with the reason.
window.Loam = window.Loam || {};
(function (Loam) {
  const TOKEN_KEY = "loam.token";
  let unauthorized = function () {};

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "the Coordinator cannot be reached (" + e.message + ")", null);
    }
    const text = await resp.text();
    let data = null;
    if ((resp.headers.get("content-type") || "").indexOf("json") >= 0) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (resp.ok) return data !== null ? data : text;
    const message = (data && data.status) || text.trim() || "HTTP " + resp.status;
    const err = new ApiError(resp.status, message, data);
    if (resp.status === 401) unauthorized(message);
    throw err;
  }

  // A query string from an object, skipping empty values.
  function query(params) {
    const q = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== "") q.set(k, params[k]);
    });
    const s = q.toString();
    return s ? "?" + s : "";
  }

  // Prometheus/OpenMetrics text to [{name, labels, value}] (comments and `# EOF` skipped).
  function parseMetrics(text) {
    const out = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    text.split("\n").forEach(function (l) {
      const m = line.exec(l);
      if (!m) return;
      const labels = {};
      let lm;
      while ((lm = label.exec(m[3] || "")) !== null) labels[lm[1]] = lm[2];
      out.push({ name: m[1], labels: labels, value: Number(m[4]) });
    });
    return out;
  }

  // The sum of every sample named `name` whose labels include `match`; null when there is none.
  function sumMetric(samples, name, match) {
    let found = false;
    let sum = 0;
    samples.forEach(function (s) {
      if (s.name !== name) return;
      for (const k in match || {}) if (s.labels[k] !== match[k]) return;
      found = true;
      sum += s.value;
    });
    return found ? sum : null;
  }

  Loam.api = {
    ApiError: ApiError,
    token: token,
    signIn: function (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
    },
    signOut: function () {
      sessionStorage.removeItem(TOKEN_KEY);
    },
    onUnauthorized: function (f) {
      unauthorized = f;
    },
    get: function (path, params) {
      return call("GET", path + query(params || {}));
    },
    post: function (path, body) {
      return call("POST", path, body);
    },
    del: function (path, body, params) {
      return call("DELETE", path + query(params || {}), body);
    },
    metrics: async function () {
      return parseMetrics(await call("GET", "/metrics"));
    },
    sumMetric: sumMetric,
  };
})(window.Loam);

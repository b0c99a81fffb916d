"use strict";
// The console's pages but jobs (jobs.js): overview, workers, mounts, rules, file index. Each page's `build`
// lays out its headings and forms once and returns `update`, which the shell (app.js) calls every `every`
// ms to re-read the API; lists are redrawn only when their data changed, and a focused button gets its
// focus back after a redraw (`refresh`), so keyboard users are not thrown out of a list by the refresh.
window.Loam = window.Loam || {};
(function (Loam) {
  const api = Loam.api;
  const v = Loam.view;
  const h = v.h;
  const pages = (Loam.pages = Loam.pages || {});

  // Redraws `el` with `render(data)` unless `data` is what it shows already; keeps the focus on the
  // element with the same `data-key`.
  function refresh(el, data, render) {
    const json = JSON.stringify(data);
    if (el.dataset.json === json) return;
    el.dataset.json = json;
    const active = document.activeElement;
    const key = active && el.contains(active) ? active.getAttribute("data-key") : null;
    v.fill(el, render(data));
    if (key) {
      const again = el.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }
  Loam.refresh = refresh;

  // "10GiB", "512 MB", "4096" to bytes; an Error naming the input otherwise (nothing is sent).
  function parseBytes(text, what) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$/i.exec(text || "");
    if (!m) throw new Error(what + " must be a number of bytes (like 1048576 or 10GiB), got \"" + text + "\"");
    const pow = " kmgtp".indexOf(m[2].toLowerCase() || " ");
    const base = m[3].toLowerCase() === "ib" || m[3] === "" ? 1024 : 1000;
    return Math.round(Number(m[1]) * Math.pow(base, pow));
  }
  Loam.parseBytes = parseBytes;

  // A call that answers 501 (a feature turned off on this Coordinator) as null instead of an error.
  async function unlessDisabled(promise) {
    try {
      return await promise;
    } catch (e) {
      if (e.status === 501) return { disabled: e.message };
      throw e;
    }
  }

  // ---- Overview ----
  // {t, loaded, requests, hits, misses}: the Coordinator's /metrics and the cluster's page hits and misses
  // (/api/v1/nodes/stats), sampled every 2 s, the last 5 minutes.
  const samples = [];
  const WINDOW_MS = 5 * 60 * 1000;
  const sum = api.sumMetric;

  function rates(key) {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const dt = (samples[i].t - samples[i - 1].t) / 1000;
      const d = samples[i][key] - samples[i - 1][key];
      out.push(dt > 0 && d >= 0 ? d / dt : 0);
    }
    return out;
  }

  // The hit ratio of the pages asked for between the oldest sample kept and the newest, and over how long;
  // null before two samples or without a page asked for (a worker that restarted counts from zero again,
  // which can make the difference negative: then null too).
  function recentHitRatio() {
    if (samples.length < 2) return null;
    const a = samples[0], b = samples[samples.length - 1];
    const hits = b.hits - a.hits, asked = hits + (b.misses - a.misses);
    if (hits < 0 || asked <= 0) return null;
    return { ratio: v.pct(hits, asked), ms: b.t - a.t };
  }

  function card(key, title, value, hint) {
    return h("div", { class: "card", "data-card": key }, h("h2", {}, title), h("div", { class: "value" }, value),
      hint ? h("div", { class: "hint" }, hint) : null);
  }

  pages.overview = {
    title: "Overview",
    every: 2000,
    build: function (root) {
      const cards = h("div", { class: "cards" });
      const charts = h("div", {});
      v.fill(root, h("h1", {}, "Overview"), cards, h("h2", {}, "Throughput over the last 5 minutes"), charts);
      return async function () {
        const all = await Promise.all([
          api.get("/api/v1/nodes/stats"), api.metrics(), api.get("/api/v1/mount"),
          api.get("/api/v1/load"), api.get("/api/v1/free"), api.get("/api/v1/rebalance"),
        ]);
        const nodes = all[0].workers || [];
        const t = all[0].totals;
        const m = all[1];
        const active = [all[3], all[4], all[5]].map(function (r) {
          return (r.results || []).filter(function (j) { return j.state === "RUNNING" || j.state === "VERIFYING"; }).length;
        });
        const now = Date.now();
        samples.push({ t: now, loaded: sum(m, "loam_coordinator_job_bytes_loaded_total") || 0,
          requests: sum(m, "loam_coordinator_api_request_duration_seconds_count") || 0,
          hits: t.page_hits, misses: t.page_misses });
        while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
        const online = nodes.filter(function (n) { return n.status === "ONLINE"; }).length;
        const missing = nodes.length - t.workers_answered;
        const answered = missing ? "; " + missing + " worker(s) did not answer, not counted" : "";
        const recent = recentHitRatio();
        const load = rates("loaded");
        const reqs = rates("requests");
        v.fill(cards,
          card("workers", "Workers", online + " online", (nodes.length - online) + " offline of " + nodes.length + " registered"),
          card("usage", "Capacity and usage", v.fmtBytes(t.used_bytes) + " of " + v.fmtBytes(t.capacity_bytes),
            [v.bar("meter", t.used_bytes, t.capacity_bytes, v.pct(t.used_bytes, t.capacity_bytes) + " used"),
              h("div", {}, "disk " + v.fmtBytes(t.disk.used_bytes) + " of " + v.fmtBytes(t.disk.capacity_bytes) +
                ", memory " + v.fmtBytes(t.memory.used_bytes) + " of " + v.fmtBytes(t.memory.capacity_bytes) + answered),
              t.unhealthy_dirs ? h("div", { class: "error-text" }, t.unhealthy_dirs + " cache director" +
                (t.unhealthy_dirs === 1 ? "y" : "ies") + " failed (see Workers)") : null]),
          card("hit-ratio", "Hit ratio", t.hit_ratio === undefined ? "—" : v.pct(t.page_hits, t.page_hits + t.page_misses),
            [h("div", {}, t.page_hits + " page hits, " + t.page_misses + " misses since the workers started"),
              h("div", { "data-recent": "" }, recent ? recent.ratio + " over the last " + v.fmtDuration(recent.ms)
                : "no pages asked for since this tab opened")]),
          card("jobs", "Jobs running", String(active[0] + active[1] + active[2]), active[0] + " load, " + active[1] + " free, " + active[2] + " rebalance"),
          card("mounts", "Mounts", String((all[2].results || []).length), null));
        v.fill(charts,
          h("p", {}, "Bytes loaded by jobs: " + v.fmtBytes(load.length ? load[load.length - 1] : 0) + "/s now"),
          v.sparkline(load, "bytes loaded per second, last 5 minutes"),
          h("p", {}, "API requests: " + (reqs.length ? reqs[reqs.length - 1].toFixed(1) : "0") + "/s now"),
          v.sparkline(reqs, "API requests per second, last 5 minutes"),
          h("p", { class: "hint" }, "Rates computed in this tab every 2 s since it was opened, from the Coordinator's " +
            "/metrics and the workers' stats (/api/v1/nodes/stats)."));
      };
    },
  };

  // ---- Workers ----
  // One worker's cache directories: path, health (and why not), use of capacity, errors.
  function dirList(n) {
    if (!n.stats) return h("span", { class: "error-text" }, n.error || "no stats");
    const dirs = n.stats.dirs.map(function (d) {
      return h("li", { "data-dir": d.path }, h("code", {}, d.path), " ",
        h("span", { class: d.healthy ? "dir-healthy" : "dir-failed" }, d.healthy ? "healthy" : "FAILED"),
        d.problem ? h("span", { class: "error-text" }, " (" + d.problem + ")") : null, " ",
        v.bar("meter", d.used_bytes, d.capacity_bytes, v.fmtBytes(d.used_bytes) + " of " + v.fmtBytes(d.capacity_bytes)),
        d.errors ? h("span", { class: "error-text" }, " " + d.errors + " errors") : null);
    });
    const mem = n.stats.memory;
    dirs.push(h("li", {}, "memory ", v.bar("meter", mem.used_bytes, mem.capacity_bytes,
      v.fmtBytes(mem.used_bytes) + " of " + v.fmtBytes(mem.capacity_bytes))));
    return h("ul", { class: "dirs" }, dirs);
  }

  pages.workers = {
    title: "Workers",
    every: 2000,
    build: function (root) {
      const list = h("div", {});
      v.fill(root, h("h1", {}, "Workers"), list, h("p", { class: "hint" },
        "From /api/v1/nodes/stats: the Coordinator asks every worker for its stats; one that does not answer " +
        "in time shows why instead."));
      const update = async function () {
        const r = await api.get("/api/v1/nodes/stats");
        // Only what is shown, so a redraw happens when that changes.
        const shown = (r.workers || []).map(function (n) {
          return { identity: n.identity, address: n.address, status: n.status, error: n.error,
            stats: n.stats && { dirs: n.stats.dirs, memory: n.stats.memory } };
        });
        refresh(list, shown, function (nodes) {
          return v.table("Registered workers", ["Worker", "Address", "Status", "Cache directories", "Action"], nodes.map(function (n) {
            return [h("code", {}, n.identity), n.address || "—", h("span", { class: "state-" + n.status }, n.status),
              dirList(n),
              n.status === "OFFLINE" ? v.action("Forget", "Forget " + n.identity, async function () {
                await api.del("/api/v1/nodes", undefined, { id: n.identity });
                await update();
                return "Forgot worker " + n.identity + ".";
              }, "Confirm forget") : ""];
          }), "No worker has registered.");
        });
      };
      return update;
    },
  };

  // ---- Mounts ----
  function parseOptions(text) {
    const options = {};
    (text || "").split(/[\n,]/).forEach(function (line, i) {
      if (!line.trim()) return;
      const eq = line.indexOf("=");
      if (eq <= 0) throw new Error("option " + (i + 1) + " is not key=value: \"" + line.trim() + "\"");
      options[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    });
    return options;
  }

  pages.mounts = {
    title: "Mounts",
    every: 3000,
    build: function (root) {
      const list = h("div", {});
      const add = v.form("Add mount", [
        v.field("Mount point", { name: "path", required: true, placeholder: "/data" }),
        v.field("UFS URI", { name: "ufs", required: true, placeholder: "s3://bucket/prefix or file:///srv/data" }),
        v.field("Options (key=value, comma separated)", { name: "options", placeholder: "s3.region=us-east-1" }),
      ], "Add mount", async function (f) {
        const body = { path: f.elements.path.value.trim(), ufs: f.elements.ufs.value.trim(), options: parseOptions(f.elements.options.value) };
        await api.post("/api/v1/mount", body);
        f.reset();
        await update();
        v.status("Mounted " + body.ufs + " at " + body.path + ".", "ok");
      });
      v.fill(root, h("h1", {}, "Mounts"), list, h("h2", {}, "Add a mount"), add);
      const update = async function () {
        const r = await api.get("/api/v1/mount");
        refresh(list, r.results || [], function (mounts) {
          return v.table("Mount table", ["Mount point", "UFS", "Options", "Action"], mounts.map(function (m) {
            const opts = Object.keys(m.options || {}).map(function (k) { return k + "=" + m.options[k]; }).join(", ");
            return [h("code", {}, m.path), h("code", {}, m.ufs), opts || "—", v.action("Remove", "Remove mount " + m.path, async function () {
              await api.del("/api/v1/mount", { path: m.path });
              await update();
              return "Removed mount " + m.path + ".";
            }, "Confirm remove")];
          }), "Nothing is mounted.");
        });
      };
      return update;
    },
  };

  // ---- Rules: TTL, priority, quota ----
  function ruleSection(root, spec) {
    const list = h("div", {});
    const form = v.form("Set " + spec.what, [v.field("Path", { name: "path", required: true, placeholder: "/data/dir" }), spec.input()],
      "Set " + spec.what, async function (f) {
        const body = Object.assign({ path: f.elements.path.value.trim() }, spec.body(f));
        await api.post(spec.endpoint, body);
        f.reset();
        await spec.update();
        v.status("Set " + spec.what + " at " + body.path + ".", "ok");
      });
    v.fill(root, h("h2", {}, spec.title), list, form);
    return function (r) {
      if (r.disabled) return v.fill(list, h("p", { class: "hint" }, "Turned off on this Coordinator: " + r.disabled));
      refresh(list, r.results || [], function (rules) {
        return v.table(spec.title, spec.heads.concat(["Action"]), rules.map(function (x) {
          return spec.cells(x).concat([v.action("Remove", "Remove " + spec.what + " at " + x.path, async function () {
            await api.del(spec.endpoint, { path: x.path });
            await spec.update();
            return "Removed " + spec.what + " at " + x.path + ".";
          })]);
        }), "No " + spec.what + " rule.");
      });
    };
  }

  pages.rules = {
    title: "Rules",
    every: 3000,
    build: function (root) {
      const parts = [h("section", {}), h("section", {}), h("section", {})];
      v.fill(root, h("h1", {}, "Rules"), parts);
      const update = async function () {
        const r = await Promise.all(["/api/v1/ttl", "/api/v1/priority", "/api/v1/quota"].map(function (p) {
          return unlessDisabled(api.get(p));
        }));
        show[0](r[0]); show[1](r[1]); show[2](r[2]);
      };
      const show = [
        ruleSection(parts[0], { title: "TTL", what: "TTL", endpoint: "/api/v1/ttl", update: update, heads: ["Path", "TTL (s)"],
          input: function () { return v.field("TTL seconds", { name: "ttl", type: "number", min: 1, required: true }); },
          body: function (f) { return { ttlSeconds: Number(f.elements.ttl.value) }; },
          cells: function (x) { return [h("code", {}, x.path), String(x.ttlSeconds)]; } }),
        ruleSection(parts[1], { title: "Priority", what: "priority", endpoint: "/api/v1/priority", update: update, heads: ["Path", "Priority"],
          input: function () {
            return h("label", {}, "Priority", h("select", { name: "priority" }, ["high", "medium", "low"].map(function (p) { return h("option", { value: p }, p); })));
          },
          body: function (f) { return { priority: f.elements.priority.value }; },
          cells: function (x) { return [h("code", {}, x.path), x.priority]; } }),
        ruleSection(parts[2], { title: "Quotas", what: "quota", endpoint: "/api/v1/quota", update: update, heads: ["Path", "State", "Usage", "Reserved"],
          input: function () { return v.field("Quota (bytes, or 10GiB)", { name: "quota", required: true }); },
          body: function (f) { return { quotaBytes: parseBytes(f.elements.quota.value, "the quota") }; },
          cells: function (x) {
            return [h("code", {}, x.path), h("span", { class: "state-" + x.state }, x.state),
              v.bar("meter", x.usedBytes, x.quotaBytes, v.fmtBytes(x.usedBytes) + " of " + v.fmtBytes(x.quotaBytes) + " (" + v.pct(x.usedBytes, x.quotaBytes) + ")"),
              v.fmtBytes(x.reservedBytes)];
          } }),
      ];
      return update;
    },
  };

  // ---- File index ----
  pages.files = {
    title: "File index",
    every: 3000,
    build: function (root) {
      const list = h("div", {});
      let prefix = null;
      const search = v.form("Search the file index", [
        v.field("Prefix (cluster path or UFS URI)", { name: "prefix", required: true, placeholder: "/data/dir/" }),
      ], "Search", async function (f) {
        prefix = f.elements.prefix.value.trim();
        await update();
      });
      v.fill(root, h("h1", {}, "File index"), search, list);
      const update = async function () {
        if (prefix === null) return;
        const r = await api.get("/api/v1/file_index", { prefix: prefix, limit: 100 });
        const files = await Promise.all((r.results || []).map(async function (uri) {
          try {
            return { uri: uri, workers: (await api.get("/api/v1/file_index", { file: uri })).workers || [] };
          } catch (e) {
            if (e.status === 404) return { uri: uri, workers: [] }; // dropped between the two calls
            throw e;
          }
        }));
        refresh(list, files, function (rows) {
          return v.table("Files under " + prefix + " (first 100)", ["File", "Held by"], rows.map(function (x) {
            return [h("code", {}, x.uri), x.workers.length ? h("ul", {}, x.workers.map(function (w) {
              return h("li", {}, h("code", {}, w.identity), w.address ? " at " + w.address : " (not online)");
            })) : "no worker"];
          }), "No file under " + prefix + " is in the index.");
        });
      };
      return update;
    },
  };
})(window.Loam);

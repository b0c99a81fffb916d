"use strict";
// The jobs page: start a load, a free or a rebalance; watch every job's progress (re-read each second);
// stop a running job; resume a stopped load or free (the API resumes a STOPPED job when the same paths are
// submitted again: it answers 409 with the job's id); see a job's failed files. A rebalance cannot be
// resumed from here: its progress does not carry its target.
window.Loam = window.Loam || {};
(function (Loam) {
  const api = Loam.api;
  const v = Loam.view;
  const h = v.h;
  const open = new Set(); // ids whose failed-file list is open, kept across redraws

  const KINDS = {
    load: {
      title: "Loads", endpoint: "/api/v1/load",
      progress: function (j) {
        const done = (j.loadedBytes || 0) + (j.skippedBytes || 0);
        return v.bar("progress", done, j.totalBytes || 0, v.fmtBytes(done) + " of " + v.fmtBytes(j.totalBytes) + " (" +
          v.pct(done, j.totalBytes) + "), " + (j.scannedFiles || 0) + " files scanned, " + (j.failedFiles || 0) + " failed");
      },
      failed: function (j) { return j.failedFiles || 0; },
      resume: function (j) {
        return { paths: j.paths, index: j.index, options: { verify: j.verify, skipIfExists: j.skipIfExists, bandwidth: j.bandwidth, loadMetadataOnly: j.loadMetadataOnly } };
      },
    },
    free: {
      title: "Frees", endpoint: "/api/v1/free",
      progress: function (j) {
        return v.bar("progress", (j.freedFiles || 0) + (j.failedFiles || 0), j.totalFiles || 0,
          (j.freedFiles || 0) + " of " + (j.totalFiles || 0) + " files freed, " + (j.failedFiles || 0) + " failed");
      },
      failed: function (j) { return j.failedFiles || 0; },
      resume: function (j) { return { paths: j.paths, index: j.index }; },
    },
    rebalance: {
      title: "Rebalances", endpoint: "/api/v1/rebalance",
      progress: function (j) {
        const done = (j.succeededWorkers || 0) + (j.failedWorkers || 0);
        return v.bar("progress", done, j.totalWorkers || 0, done + " of " + (j.totalWorkers || 0) + " workers done; " +
          (j.filesLoaded || 0) + " files loaded, " + (j.filesPruned || 0) + " pruned, " + (j.filesFailed || 0) + " failed");
      },
      failed: function (j) { return j.filesFailed || 0; },
      resume: null,
    },
  };

  function paths(text) {
    return text.split(",").map(function (p) { return p.trim(); }).filter(Boolean);
  }

  function failures(j, failedCount) {
    const errors = j.errorMessage || {};
    const keys = Object.keys(errors);
    if (!keys.length && !j.failedFileListPath) return failedCount ? String(failedCount) + " failed" : "—";
    const d = h("details", { "data-key": "failed " + j.id, open: open.has(j.id), ontoggle: function () {
      if (d.open) open.add(j.id);
      else open.delete(j.id);
    } }, h("summary", {}, failedCount + " failed files"),
    h("ul", {}, keys.map(function (k) { return h("li", {}, h("code", {}, k), ": ", errors[k]); })),
    j.failedFileListPath ? h("p", { class: "hint" }, "Full list on the Coordinator's disk: ", h("code", {}, j.failedFileListPath)) : null);
    return d;
  }

  function row(kind, spec, j, update) {
    const active = j.state === "RUNNING" || j.state === "VERIFYING";
    const actions = [];
    if (active) {
      actions.push(v.action("Stop", "Stop " + kind + " job " + j.id, async function () {
        await api.del(spec.endpoint, { id: j.id });
        await update();
        return "Stopped " + kind + " job " + j.id + ".";
      }));
    }
    if (j.state === "STOPPED" && spec.resume) {
      actions.push(v.action("Resume", "Resume " + kind + " job " + j.id, async function () {
        try {
          await api.post(spec.endpoint, spec.resume(j));
        } catch (e) {
          if (e.status !== 409) throw e; // 409 {"id"}: the stopped twin, now resumed
        }
        await update();
        return "Resumed " + kind + " job " + j.id + ".";
      }));
    }
    const what = (j.paths || []).join(", ") || j.index || "";
    return [h("code", {}, j.id), what ? h("code", {}, what) : "—",
      h("span", { class: "state-" + j.state }, j.state + (j.runningState ? " (" + j.runningState + ")" : "")),
      spec.progress(j), v.fmtDuration(j.timeElapsedMilliseconds), failures(j, spec.failed(j)), actions];
  }

  function startForm(kind, update) {
    const fields = kind === "rebalance"
      ? [v.field("Target (a worker id, or ALL)", { name: "target", required: true, value: "ALL" })]
      : [v.field("Paths (comma separated)", { name: "paths", required: true, placeholder: "/data/dir" })];
    if (kind === "load") {
      fields.push(v.field("Replicas", { name: "replicas", type: "number", min: 1, placeholder: "1" }),
        v.field("Bandwidth per worker (bytes/s, or 64KiB)", { name: "bandwidth", placeholder: "unlimited" }),
        h("label", { class: "inline" }, h("input", { type: "checkbox", name: "verify" }), " verify"),
        h("label", { class: "inline" }, h("input", { type: "checkbox", name: "skipIfExists" }), " skip cached files"));
    }
    return v.form("Start " + kind, fields, "Start " + kind, async function (f) {
      const e = f.elements;
      let body;
      if (kind === "rebalance") body = { target: e.target.value.trim() };
      else body = { paths: paths(e.paths.value) };
      if (kind === "load") {
        body.options = { replicas: e.replicas.value ? Number(e.replicas.value) : 0, verify: e.verify.checked, skipIfExists: e.skipIfExists.checked,
          bandwidth: e.bandwidth.value.trim() ? Loam.parseBytes(e.bandwidth.value, "the bandwidth") : 0 };
      }
      let id;
      try {
        id = (await api.post(KINDS[kind].endpoint, body)).id;
      } catch (err) {
        if (err.status !== 409 || !err.body || !err.body.id) throw err;
        await update();
        v.status("The same " + kind + " is already running (or was stopped and is resumed): job " + err.body.id + ".", "ok");
        return;
      }
      f.reset();
      await update();
      v.status("Started " + kind + " job " + id + ".", "ok");
    });
  }

  Loam.pages = Loam.pages || {};
  Loam.pages.jobs = {
    title: "Jobs",
    every: 1000,
    build: function (root) {
      const lists = {};
      const sections = Object.keys(KINDS).map(function (kind) {
        lists[kind] = h("div", { id: "jobs-" + kind });
        return h("section", {}, h("h2", {}, KINDS[kind].title), lists[kind]);
      });
      const update = async function () {
        const all = await Promise.all(Object.keys(KINDS).map(function (kind) {
          return api.get(KINDS[kind].endpoint, { limit: 50 });
        }));
        Object.keys(KINDS).forEach(function (kind, i) {
          Loam.refresh(lists[kind], all[i].results || [], function (jobs) {
            return v.table(KINDS[kind].title + ", newest first (50 at most)",
              ["Job", "Paths", "State", "Progress", "Elapsed", "Failed files", "Action"],
              jobs.map(function (j) { return row(kind, KINDS[kind], j, update); }), "No " + kind + " job.");
          });
        });
      };
      const forms = ["load", "free", "rebalance"].map(function (kind) {
        return h("section", {}, h("h2", {}, "Start a " + kind), startForm(kind, update));
      });
      v.fill(root, h("h1", {}, "Jobs"), sections, forms);
      return update;
    },
  };
})(window.Loam);

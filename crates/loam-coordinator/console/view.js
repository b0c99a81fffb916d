"use strict";
// DOM helpers: elements are built with createElement and text nodes (never from HTML strings, so nothing
// the API returns can become markup), tables, forms that submit with Enter, and the status line, an
// aria-live region where every result and error of an action is announced.
window.Loam = window.Loam || {};
(function (Loam) {
  // h("a", {href: "#/x", onclick: f}, "text", child, ...): an element with attributes, listeners, children.
  function h(tag, attrs) {
    const el = document.createElement(tag);
    const a = attrs || {};
    Object.keys(a).forEach(function (k) {
      const v = a[k];
      if (v === undefined || v === null || v === false) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "class") el.className = v;
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    });
    append(el, Array.prototype.slice.call(arguments, 2));
    return el;
  }

  function append(el, children) {
    children.flat(Infinity).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
  }

  // Replaces the children of `el`.
  function fill(el) {
    el.replaceChildren();
    append(el, Array.prototype.slice.call(arguments, 1));
    return el;
  }

  // A table with a caption and a header row, or a line saying `empty` when there are no rows.
  function table(caption, heads, rows, empty) {
    if (!rows.length) return h("p", { class: "hint" }, empty);
    return h(
      "table",
      {},
      h("caption", { class: "hint" }, caption),
      h("thead", {}, h("tr", {}, heads.map(function (t) {
        return h("th", { scope: "col" }, t);
      }))),
      h("tbody", {}, rows.map(function (cells) {
        return h("tr", {}, cells.map(function (c) {
          return c instanceof Node && c.tagName === "TD" ? c : h("td", {}, c);
        }));
      }))
    );
  }

  let lastStatus = "";
  // Announces `message` in the status region; kind "error" or "ok". The same message is not repeated.
  function status(message, kind) {
    const el = document.getElementById("status");
    if (message === lastStatus && el.className.indexOf(kind || "") >= 0) return;
    lastStatus = message;
    el.className = "status " + (kind || "");
    el.textContent = message;
  }

  // A form whose submit (a button, or Enter in a field) runs `action(form)` once at a time; an error is
  // the API's message in the status region, and nothing else changes.
  function form(label, fields, submitText, action) {
    let busy = false;
    const f = h("form", { "aria-label": label }, fields, h("button", { type: "submit" }, submitText));
    f.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      if (busy) return;
      busy = true;
      try {
        await action(f);
      } catch (e) {
        status(label + " refused: " + e.message, "error");
      } finally {
        busy = false;
      }
    });
    return f;
  }

  // A labelled input; `attrs` are the input's (name, type, required, ...).
  function field(text, attrs) {
    return h("label", {}, text, h("input", Object.assign({ type: "text" }, attrs)));
  }

  // A button that runs `run` and announces its result or the API's error. With `confirmText`, the first
  // press only arms it (its text becomes `confirmText`); the second runs it: for what cannot be undone.
  function action(text, label, run, confirmText) {
    let armed = false;
    const b = h("button", { type: "button", "aria-label": label, "data-key": label, onclick: async function () {
      if (confirmText && !armed) {
        armed = true;
        b.textContent = confirmText;
        status(label + ": press again to confirm.", "");
        return;
      }
      armed = false;
      b.textContent = text;
      try {
        status(await run(), "ok");
      } catch (e) {
        status(label + " refused: " + e.message, "error");
      }
    } }, text);
    return b;
  }

  function fmtBytes(n) {
    if (n === null || n === undefined || isNaN(n)) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
  }

  function fmtDuration(ms) {
    const s = Math.round((ms || 0) / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function pct(part, whole) {
    return whole > 0 ? Math.min(100, Math.floor((100 * part) / whole)) + "%" : "—";
  }

  // A <progress> (jobs) or <meter> (usage) with a text equivalent for screen readers.
  function bar(tag, value, max, text) {
    const el = h(tag, { max: Math.max(max, 1), value: Math.min(value, Math.max(max, 1)), "aria-label": text });
    return h("span", {}, el, " ", text);
  }

  // An SVG line of `values` (oldest first), scaled to its own maximum.
  function sparkline(values, label) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    svg.setAttribute("viewBox", "0 0 100 40");
    svg.setAttribute("preserveAspectRatio", "none");
    const max = Math.max.apply(null, values.concat([1]));
    const step = values.length > 1 ? 100 / (values.length - 1) : 100;
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", values.map(function (v, i) {
      return (i * step).toFixed(2) + "," + (38 - (36 * v) / max).toFixed(2);
    }).join(" "));
    svg.appendChild(line);
    return svg;
  }

  Loam.view = {
    h: h, fill: fill, table: table, status: status, form: form, field: field, action: action,
    fmtBytes: fmtBytes, fmtDuration: fmtDuration, pct: pct, bar: bar, sparkline: sparkline,
  };
})(window.Loam);

// Renders /openapi.json: operations grouped by tag, with scopes,
// parameters, request bodies and responses. No dependencies.
"use strict";
(async function () {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  let doc;
  try {
    doc = await (await fetch("/openapi.json")).json();
  } catch (e) {
    main.textContent = "Could not load /openapi.json: " + e;
    return;
  }
  const el = (tag, attrs, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    for (const k of kids) n.append(k && k.nodeType ? k : document.createTextNode(k == null ? "" : String(k)));
    return n;
  };
  const resolve = (o) => {
    let guard = 0;
    while (o && o.$ref && guard++ < 10) {
      o = o.$ref.replace(/^#\//, "").split("/").reduce((a, k) => (a || {})[k], doc);
    }
    return o || {};
  };
  const schemaText = (s, depth) => {
    s = resolve(s);
    if (depth > 3) return s.type || "object";
    if (s.type === "object" || s.properties) {
      const req = new Set(s.required || []);
      const lines = Object.entries(s.properties || {}).map(([k, v]) => {
        const r = resolve(v);
        const t = Array.isArray(r.type) ? r.type.join("|") : (r.type || (r.properties ? "object" : ""));
        return "  ".repeat(depth + 1) + k + (req.has(k) ? "" : "?") + ": " + (r.enum ? r.enum.join(" | ") : t) +
          (r.type === "object" && r.properties ? "\n" + schemaText(r, depth + 1) : "");
      });
      return lines.join("\n");
    }
    if (s.type === "array") return "[" + (resolve(s.items).type || "object") + "]";
    return s.type || "";
  };
  document.title = (doc.info && doc.info.title) || document.title;
  const info = el("section", { class: "op" }, el("h2", {}, doc.info.title + " " + doc.info.version), el("div", { class: "desc" }, doc.info.description || ""));
  main.replaceChildren(info);
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || "Other";
      (byTag[tag] = byTag[tag] || []).push({ path, method, op, common: item.parameters || [] });
    }
  }
  for (const [tag, ops] of Object.entries(byTag)) {
    nav.append(el("h2", {}, tag));
    main.append(el("h2", {}, tag));
    for (const { path, method, op, common } of ops) {
      const id = (op.operationId || method + path).replace(/[^A-Za-z0-9_-]/g, "_");
      nav.append(el("a", { href: "#" + id }, method.toUpperCase() + " " + path));
      const sec = el("section", { class: "op", id });
      sec.append(el("h3", {}, el("span", { class: "method " + method }, method.toUpperCase()), " ", el("code", {}, path)));
      if (op.summary) sec.append(el("p", {}, el("strong", {}, op.summary)));
      if (op["x-nexus-scope"]) sec.append(el("p", {}, "Scope: ", el("span", { class: "scope" }, op["x-nexus-scope"])));
      if (op.description) sec.append(el("div", { class: "desc" }, op.description));
      const params = [...common, ...(op.parameters || [])].map(resolve);
      if (params.length) {
        const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "description")));
        for (const p of params) t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, p.description || "")));
        sec.append(t);
      }
      const body = op.requestBody && resolve(op.requestBody).content;
      if (body) {
        const [ct, media] = Object.entries(body)[0];
        sec.append(el("p", {}, "Body (" + ct + "):"), el("pre", {}, schemaText(media.schema, 0)));
      }
      const rt = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning")));
      for (const [code, r] of Object.entries(op.responses || {})) rt.append(el("tr", {}, el("td", {}, code), el("td", {}, resolve(r).description || "")));
      sec.append(rt);
      main.append(sec);
    }
  }
  if (location.hash) {
    const t = document.getElementById(location.hash.slice(1));
    if (t) t.scrollIntoView();
  }
})();

// Renders /openapi.json with the vendored Redoc (see redoc/VENDORED.md).
// A file of its own, not an inline script, so the page's CSP can stay
// script-src 'self'.
"use strict";
Redoc.init("/openapi.json", {
  // Every answer is shown with its schema and example; the success ones open.
  expandResponses: "200,201",
  jsonSampleExpandLevel: 3,
  requiredPropsFirst: true,
  showExtensions: ["x-nexus-scope"],
  hideHostname: false,
  theme: {
    colors: { primary: { main: "#1f4fd1" } },
    // System fonts: the page loads nothing from other origins.
    typography: {
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      headings: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
      code: { fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace' },
    },
  },
}, document.getElementById("redoc"));

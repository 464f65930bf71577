// Interactive API docs (/api/docs): Swagger UI from the vendored bundle, reading the signed-in schema.
// An external file, not an inline script, so the page runs under the dashboard's CSP (script-src 'self').
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  var csrf = root.getAttribute("data-csrf") || "";
  window.SwaggerUIBundle({
    url: root.getAttribute("data-schema"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    // "Try it out" with the browser's session needs the CSRF header on state-changing calls; with a
    // token from "Authorize" (Bearer) the server does not ask for one.
    requestInterceptor: function (request) {
      var method = (request.method || "GET").toUpperCase();
      if (method !== "GET" && method !== "HEAD" && csrf) {
        request.headers["X-CSRF-Token"] = csrf;
      }
      return request;
    },
  });
})();

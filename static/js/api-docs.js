// The API reference at /api/docs: Swagger UI (vendored) reading /api/openapi.json.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("api-docs");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});

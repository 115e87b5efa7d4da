// Clarion staff pages: the few behaviours htmx does not cover. Pages work without this file.
(function () {
  "use strict";
  // Every htmx request carries the page's CSRF token, as the forms do.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
  });
  // Forms that change something big ask once more (the server checks again regardless).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();

// The web app's only script besides htmx: bar widths (inline styles are not allowed by
// the page's content security policy) and a clear message when a partial update fails.
(function () {
  "use strict";
  function bars(root) {
    root.querySelectorAll(".bar[data-width]").forEach(function (bar) {
      var width = Math.max(0, Math.min(100, parseInt(bar.getAttribute("data-width"), 10) || 0));
      bar.style.width = width + "%";
    });
  }
  function banner(message) {
    var box = document.getElementById("request-error");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = !message;
  }
  document.addEventListener("DOMContentLoaded", function () { bars(document); });
  document.addEventListener("htmx:afterSwap", function (event) { bars(event.target); banner(""); });
  document.addEventListener("htmx:responseError", function () {
    banner("The list could not be updated. Reload the page to try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    banner("The server could not be reached. Check your connection and try again.");
  });
})();

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
  // The pipeline board: a card dropped on another stage's lane submits the card's own
  // "Move" form with that stage (the form alone works without scripts).
  function board(root) {
    root.querySelectorAll("[data-board] .deal[draggable=true]").forEach(function (card) {
      card.addEventListener("dragstart", function (event) {
        event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
      });
    });
    root.querySelectorAll("[data-board] .lane").forEach(function (lane) {
      lane.addEventListener("dragover", function (event) { event.preventDefault(); lane.classList.add("drop"); });
      lane.addEventListener("dragleave", function () { lane.classList.remove("drop"); });
      lane.addEventListener("drop", function (event) {
        event.preventDefault();
        lane.classList.remove("drop");
        var id = event.dataTransfer.getData("text/plain");
        var card = document.querySelector('.deal[data-id="' + id + '"]');
        if (!card || card.closest(".lane") === lane) { return; }
        var form = card.querySelector("form.move");
        form.querySelector("select[name=stage]").value = lane.getAttribute("data-stage");
        form.submit();
      });
    });
  }
  // "/" or Ctrl+K (Cmd+K) jumps to the header's search box, unless the key is being typed
  // into a field.
  document.addEventListener("keydown", function (event) {
    var box = document.getElementById("global-search");
    if (!box) { return; }
    var target = event.target;
    var typing = target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    var slash = event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey;
    var k = (event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey);
    if (slash || k) { event.preventDefault(); box.focus(); box.select(); }
  });
  document.addEventListener("DOMContentLoaded", function () { bars(document); board(document); });
  document.addEventListener("htmx:afterSwap", function (event) { bars(event.target); banner(""); });
  document.addEventListener("htmx:responseError", function () {
    banner("The list could not be updated. Reload the page to try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    banner("The server could not be reached. Check your connection and try again.");
  });
})();

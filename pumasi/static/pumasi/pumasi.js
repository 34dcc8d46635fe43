// pumasi's small client script: live updates from the event stream (Server-Sent Events).
(function () {
  "use strict";
  function connect() {
    var targets = document.querySelectorAll("[data-live-events]");
    if (!targets.length || !window.EventSource) return;
    var source = new EventSource("/events/stream");
    source.onmessage = null;
    var names = new Set();
    targets.forEach(function (el) {
      (el.getAttribute("data-live-events") || "").split(/\s+/).filter(Boolean).forEach(function (n) { names.add(n); });
    });
    names.forEach(function (name) {
      source.addEventListener(name, function (msg) {
        var data = JSON.parse(msg.data);
        document.dispatchEvent(new CustomEvent("pumasi:event", { detail: data }));
        targets.forEach(function (el) {
          if ((el.getAttribute("data-live-events") || "").split(/\s+/).indexOf(name) === -1) return;
          if (el.getAttribute("hx-get") && window.htmx) { window.htmx.trigger(el, "pumasi:refresh"); }
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", connect);
})();

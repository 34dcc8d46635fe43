// pumasi's small client script: live updates from the event stream (Server-Sent Events).
(function () {
  "use strict";
  function connect() {
    var targets = document.querySelectorAll("[data-live-events]");
    var badges = document.querySelectorAll("[data-unread-count]");
    if ((!targets.length && !badges.length) || !window.EventSource) return;
    var source = new EventSource("/events/stream");
    var names = new Set();
    if (badges.length) {
      // The unread count in the header follows the person's own notification events.
      ["notifications.created", "notifications.read"].forEach(function (name) {
        source.addEventListener(name, function (msg) {
          var payload = (JSON.parse(msg.data) || {}).payload || {};
          badges.forEach(function (badge) {
            if (typeof payload.unread === "number") { badge.textContent = payload.unread; }
            else if (payload.bulk) { badge.textContent = (parseInt(badge.textContent, 10) || 0) + 1; }
          });
        });
      });
    }
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

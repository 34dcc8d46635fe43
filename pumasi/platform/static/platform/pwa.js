// Registers pumasi's service worker so the site can be installed as an app.
if ("serviceWorker" in navigator) {
  window.addEventListener("load", function () { navigator.serviceWorker.register("/sw.js", { scope: "/" }); });
}

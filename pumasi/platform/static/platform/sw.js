// pumasi service worker: makes the app installable, shows an offline page for navigations, and
// shows Web Push notifications. Served from /sw.js (scope "/"); the page sets self.PUMASI_ICON first.
const CACHE = "pumasi-v1";
const OFFLINE = "/offline/";
const FALLBACK_URL = "/notifications/";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.add(OFFLINE)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  if (event.request.mode !== "navigate") return;
  event.respondWith(fetch(event.request).catch(() => caches.match(OFFLINE)));
});

// Only addresses on this site are opened from a notification; anything else opens the list.
function sameSiteUrl(url) {
  try {
    const target = new URL(url || FALLBACK_URL, self.location.origin);
    if (target.origin === self.location.origin) return target.href;
  } catch (err) { /* not a URL */ }
  return new URL(FALLBACK_URL, self.location.origin).href;
}

// The payload is {id, title, body, url, unread}, encrypted by pumasi for this browser (RFC 8291).
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = { body: event.data ? event.data.text() : "" }; }
  const options = {
    body: data.body || "",
    icon: self.PUMASI_ICON,
    badge: self.PUMASI_ICON,
    data: { url: sameSiteUrl(data.url) },
  };
  if (data.id) options.tag = "pumasi-" + data.id;
  const shown = [self.registration.showNotification(data.title || "pumasi", options)];
  if (typeof data.unread === "number" && self.navigator.setAppBadge) {
    shown.push((data.unread ? self.navigator.setAppBadge(data.unread) : self.navigator.clearAppBadge()).catch(() => {}));
  }
  event.waitUntil(Promise.all(shown));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = sameSiteUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    for (const client of windows) {
      if (client.url === url && "focus" in client) return client.focus();
    }
    return self.clients.openWindow(url);
  }));
});

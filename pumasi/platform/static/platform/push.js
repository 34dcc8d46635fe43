// Turns Web Push on or off for this browser from the notifications page. Where the browser has no
// Push API the control stays hidden and the page works as before.
(function () {
  var box = document.querySelector("[data-push-control]");
  if (!box || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
  var status = box.querySelector("[data-push-status]");
  var on = box.querySelector("[data-push-on]");
  var off = box.querySelector("[data-push-off]");
  var csrf = box.querySelector("[name=csrfmiddlewaretoken]").value;

  function say(text) { status.textContent = text || ""; }
  function show(subscribed) { on.hidden = subscribed; off.hidden = !subscribed; }
  function keyBytes(text) {
    var b64 = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf },
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw data;
        return data;
      });
    });
  }
  function problem(data) {
    var parts = [(data && data.title) || box.dataset.msgError];
    if (data && data.errors) Object.keys(data.errors).forEach(function (k) { parts.push(data.errors[k].join(" ")); });
    return parts.join(" ");
  }

  var ready = navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  });
  box.hidden = false;
  if (Notification.permission === "denied") { say(box.dataset.msgDenied); on.disabled = true; }
  ready.then(function (registration) { return registration.pushManager.getSubscription(); })
    .then(function (subscription) { show(!!subscription); if (subscription) say(box.dataset.msgOn); })
    .catch(function () { /* no push service reachable: the button still explains on click */ });

  on.addEventListener("click", function () {
    on.disabled = true;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw { title: box.dataset.msgDenied };
      return ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(box.dataset.key) });
    }).then(function (subscription) {
      // pumasi refused it: end it in the browser too, so the two never disagree
      return post(box.dataset.subscribeUrl, subscription.toJSON()).catch(function (data) {
        return subscription.unsubscribe().then(function () { throw data; });
      });
    }).then(function (data) {
      show(true); say(data.message || box.dataset.msgOn);
    }).catch(function (data) {
      say(problem(data));
    }).then(function () { on.disabled = Notification.permission === "denied"; });
  });

  off.addEventListener("click", function () {
    off.disabled = true;
    ready.then(function (registration) { return registration.pushManager.getSubscription(); })
      .then(function (subscription) {
        if (!subscription) return null;
        return post(box.dataset.unsubscribeUrl, { endpoint: subscription.endpoint }).catch(function () { return null; })
          .then(function () { return subscription.unsubscribe(); });
      }).then(function () { show(false); say(box.dataset.msgOff); })
      .catch(function (data) { say(problem(data)); })
      .then(function () { off.disabled = false; });
  });
})();

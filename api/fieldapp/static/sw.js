// The field app's service worker. The service writes VERSION (a hash of the shell's files) and
// SHELL (their URLs) above this line. It keeps the shell so the app opens with no network, keeps
// the station's basemap tiles the app asked for, and sends the outbox when Background Sync says
// the network is back. API answers are not cached here: the app keeps its data in IndexedDB, per
// member, so another member signing in on the same phone never sees them.
/* global VERSION, SHELL */
"use strict";
importScripts("/app/store.js", "/app/outbox.js");

var SHELL_CACHE = "mp-shell-" + VERSION;
var TILE_CACHE = "mp-tiles";

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then(function (cache) { return cache.addAll(SHELL.map(function (u) { return new Request(u, { cache: "reload" }); })); })
      .then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) {
        return n.indexOf("mp-shell-") === 0 && n !== SHELL_CACHE;
      }).map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function shellPath(url) {
  return SHELL.indexOf(url.pathname) >= 0 || url.pathname === "/app" || url.pathname === "/app/index.html";
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (shellPath(url)) {
    // The shell from the cache first: it opens at once, offline or on a crawling link. A new
    // release arrives as a new worker (its bytes change), which replaces the cache whole.
    var key = url.pathname === "/app" || url.pathname === "/app/index.html" ? "/app/" : url.pathname;
    event.respondWith(
      caches.open(SHELL_CACHE).then(function (cache) {
        return cache.match(key).then(function (hit) { return hit || fetch(request); });
      })
    );
    return;
  }
  if (url.pathname.indexOf("/tiles/") === 0) {
    // Basemap tiles: the copy kept on the phone, else the station's service (kept for next time).
    event.respondWith(
      caches.open(TILE_CACHE).then(function (cache) {
        return cache.match(url.pathname).then(function (hit) {
          if (hit) return hit;
          return fetch(request).then(function (response) {
            if (response.ok) cache.put(url.pathname, response.clone());
            return response;
          });
        });
      })
    );
  }
});

// Background Sync: the browser wakes the worker when the network is back, even with the app closed.
self.addEventListener("sync", function (event) {
  if (event.tag === "mp-outbox") {
    event.waitUntil(self.MP.outbox.flush({ force: true }).then(function (result) {
      // A transient failure: reject, so the browser tries this sync again later.
      if (result && result.offline) throw new Error("still offline");
    }));
  }
});

self.addEventListener("message", function (event) {
  if (event.data && event.data.type === "flush") {
    event.waitUntil(self.MP.outbox.flush({ force: true }));
  }
});

// Anxin's service worker, for visitors on a phone: the pages they have
// opened (their round, their elders, the visit form) stay readable without a
// connection. Network first: whenever the console answers, its answer is
// shown and kept; without one, the kept copy is. Nothing is kept for a page
// that redirected (a signed-out session) or failed, and nothing but these
// pages and the console's own assets. Signing out clears it all
// (Clear-Site-Data).
'use strict';
var CACHE = 'anxin-visitor-v3';
var ASSETS = ['/static/app.css', '/static/app.js', '/static/offline.js', '/static/evidence.js', '/static/htmx-2.0.11.min.js', '/static/icon.svg', '/manifest.webmanifest'];
var KEPT = [/^\/round$/, /^\/my$/, /^\/elders\/\d+$/, /^\/elders\/\d+\/visits\/new$/, /^\/static\//, /^\/manifest\.webmanifest$/];

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(ASSETS); }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) { return key !== CACHE; }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!KEPT.some(function (path) { return path.test(url.pathname); })) return;
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && !response.redirected) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request).then(function (kept) {
      return kept || new Response('offline', { status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
    });
  }));
});

// Visits recorded without a connection (visitors' phones). A visit form
// that cannot reach the console is kept on the phone (IndexedDB), under the
// visit's own id, and shown as 待上传 — never as saved. It is sent again
// when the page opens, every 15 s and when the phone comes back online; the
// console records it once on that id. Only what the visitor typed is kept,
// and only until it is sent.
(function () {
  'use strict';
  var body = document.body;
  if (body.dataset.app !== 'visitor' || !('indexedDB' in window)) return;
  var words = body.dataset;

  function db() {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open('anxin-visits', 1);
      open.onupgradeneeded = function () { open.result.createObjectStore('waiting', { keyPath: 'client_id' }); };
      open.onsuccess = function () { resolve(open.result); };
      open.onerror = function () { reject(open.error); };
    });
  }
  function store(mode, work) {
    return db().then(function (base) {
      return new Promise(function (resolve, reject) {
        var tx = base.transaction('waiting', mode);
        var result = work(tx.objectStore('waiting'));
        tx.oncomplete = function () { resolve(result && result.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function all() { return store('readonly', function (s) { return s.getAll(); }); }
  function keep(visit) { return store('readwrite', function (s) { return s.put(visit); }); }
  function forget(id) { return store('readwrite', function (s) { return s.delete(id); }); }

  function show(list) {
    var box = document.getElementById('waiting-visits');
    if (!box) {
      box = document.createElement('section');
      box.id = 'waiting-visits';
      box.className = 'card notice';
      box.setAttribute('role', 'status');
      var main = document.querySelector('main');
      if (main) main.insertBefore(box, main.firstChild);
    }
    box.hidden = list.length === 0;
    box.textContent = '';
    var title = document.createElement('h2');
    title.textContent = words.waitingTitle;
    box.appendChild(title);
    var items = document.createElement('ul');
    list.forEach(function (visit) {
      var item = document.createElement('li');
      item.className = 'waiting ' + (visit.refused ? 'bad' : 'warn');
      item.dataset.clientId = visit.client_id;
      item.textContent = visit.elder + ' · ' + visit.day + ' · ' + (visit.refused ? words.refused + visit.refused : words.waiting);
      items.appendChild(item);
    });
    box.appendChild(items);
  }
  function refresh() { return all().then(show).catch(function () {}); }

  // Sends each visit waiting; a refusal (the console answered, but no) is
  // kept with its reason for the visitor to see.
  var sending = false;
  function send() {
    if (sending) return Promise.resolve();
    sending = true;
    return all().then(function (list) {
      return list.filter(function (visit) { return !visit.refused; }).reduce(function (chain, visit) {
        return chain.then(function () {
          // Sent with this page's session token: the visitor may have
          // signed in again since the visit was kept.
          var fields = new URLSearchParams(visit.body);
          var meta = document.querySelector('meta[name="csrf-token"]');
          if (meta && meta.content) fields.set('csrf', meta.content);
          return fetch(visit.action, {
            method: 'POST',
            headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: fields.toString(),
            credentials: 'same-origin'
          }).then(function (response) {
            // Sent back to sign in (the session ended): not sent; it waits.
            if (new URL(response.url).pathname === '/login') return;
            if (response.ok) return forget(visit.client_id);
            if (response.status === 422 || response.status === 403 || response.status === 404) {
              visit.refused = String(response.status);
              return keep(visit);
            }
          }, function () { /* still no connection */ });
        });
      }, Promise.resolve());
    }).then(refresh).then(function () { sending = false; }, function () { sending = false; });
  }

  var form = document.querySelector('form.visit-form');
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var data = new URLSearchParams(new FormData(form));
      var action = form.getAttribute('action');
      // Reachable: the plain form post (the console's own answer page).
      // Not reachable: kept on the phone, waiting.
      fetch('/healthz', { cache: 'no-store' }).then(function () { form.submit(); }, function () {
        var visit = {
          client_id: data.get('client_id'),
          action: action,
          body: data.toString(),
          elder: form.dataset.elder || '',
          day: data.get('day') || '',
          kept_at: Date.now()
        };
        keep(visit).then(refresh);
      });
    });
  }
  // Signing out wipes what the phone keeps: refused while visits wait.
  var logout = document.querySelector('form[action="/logout"]');
  if (logout) {
    logout.addEventListener('submit', function (event) {
      event.preventDefault();
      all().then(function (list) {
        if (list.length === 0) { logout.submit(); return; }
        show(list);
        var box = document.getElementById('waiting-visits');
        if (box) {
          var note = document.createElement('p');
          note.className = 'error';
          note.id = 'logout-refused';
          note.textContent = words.logoutRefused;
          box.appendChild(note);
        }
      }, function () { logout.submit(); });
    });
  }

  refresh();
  send();
  setInterval(send, 15000);
  window.addEventListener('online', send);
})();

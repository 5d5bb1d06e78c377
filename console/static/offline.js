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

  // Each visit kept: `waiting` (not on the server yet), `refused` (the
  // console answered no, with its reason: the visitor can reopen it in the
  // form or drop it) or `sent` (committed, with the visit's number and
  // whether it was recorded late, 补录; shown for a day, then forgotten).
  var SENT_SHOWN_MS = 24 * 3600 * 1000;
  function button(text, action) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary small';
    b.textContent = text;
    b.addEventListener('click', action);
    return b;
  }
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
      var state = visit.sent ? 'sent' : visit.refused ? 'refused' : 'waiting';
      item.className = state + ' ' + ({ sent: 'ok', refused: 'bad', waiting: 'warn' })[state];
      item.dataset.clientId = visit.client_id;
      var said = state === 'sent' ? (visit.late ? words.sentLate : words.sent)
        : state === 'refused' ? words.refused + visit.refused : words.waiting;
      item.appendChild(document.createTextNode(visit.elder + ' · ' + visit.day + ' · ' + said + ' '));
      if (state === 'refused') {
        item.appendChild(button(words.reopen, function () {
          location.href = visit.action.replace(/\/visits$/, '/visits/new') + '?restore=' + encodeURIComponent(visit.client_id);
        }));
      }
      if (state !== 'waiting') {
        item.appendChild(button(words.dismiss, function () { forget(visit.client_id).then(refresh); }));
      }
      items.appendChild(item);
    });
    box.appendChild(items);
  }
  function refresh() {
    return all().then(function (list) {
      var now = Date.now();
      var old = list.filter(function (visit) { return visit.sent && now - visit.sent > SENT_SHOWN_MS; });
      return Promise.all(old.map(function (visit) { return forget(visit.client_id); })).then(function () {
        return list.filter(function (visit) { return old.indexOf(visit) < 0; });
      });
    }).then(show).catch(function () {});
  }
  function page(response) {
    return response.text().then(function (text) { return new DOMParser().parseFromString(text, 'text/html'); });
  }

  // Sends each visit waiting. The console's answer decides: committed
  // (the elder's page names the visit saved, and 补录 when its month was
  // closed meanwhile), refused with a reason (kept, to be reopened), or
  // not reached (still waiting).
  var sending = false;
  function send() {
    if (sending) return Promise.resolve();
    sending = true;
    return all().then(function (list) {
      return list.filter(function (visit) { return !visit.refused && !visit.sent; }).reduce(function (chain, visit) {
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
            if (response.ok) {
              return page(response).then(function (answer) {
                var saved = answer.getElementById('saved-visit');
                visit.sent = Date.now();
                visit.late = !!(saved && saved.dataset.late === 'true');
                delete visit.body;
                return keep(visit);
              });
            }
            if (response.status === 422 || response.status === 403 || response.status === 404) {
              return page(response).then(function (answer) {
                var reason = answer.querySelector('[role=alert]');
                visit.refused = (reason && reason.textContent.trim()) || String(response.status);
                return keep(visit);
              });
            }
          }, function () { /* still no connection */ });
        });
      }, Promise.resolve());
    }).then(refresh).then(function () { sending = false; }, function () { sending = false; });
  }

  var form = document.querySelector('form.visit-form');
  // A refused visit reopened: the form filled as it was typed, under the
  // same visit id, for the visitor to put right.
  var restore = new URLSearchParams(location.search).get('restore');
  if (form && restore) {
    store('readonly', function (s) { return s.get(restore); }).then(function (visit) {
      if (!visit || !visit.body) return;
      new URLSearchParams(visit.body).forEach(function (value, name) {
        if (name === 'csrf') return;
        form.querySelectorAll('[name="' + name + '"]').forEach(function (field) {
          if (field.type === 'radio' || field.type === 'checkbox') field.checked = field.value === value;
          else field.value = value;
        });
      });
      form.dispatchEvent(new Event('restored'));
    });
  }
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var data = new URLSearchParams(new FormData(form));
      var action = form.getAttribute('action');
      // Reachable: the plain form post (the console's own answer page).
      // Not reachable: kept on the phone, waiting.
      fetch('/healthz', { cache: 'no-store' }).then(function () {
        // Reachable: whatever was kept under this visit's id (a refused
        // copy reopened) gives way to the console's own answer.
        forget(data.get('client_id')).then(function () { form.submit(); }, function () { form.submit(); });
      }, function () {
        var visit = {
          client_id: data.get('client_id'),
          action: action,
          body: data.toString(),
          elder: form.dataset.elder || '',
          day: data.get('day') || '',
          kept_at: Date.now()
        };
        keep(visit).then(refresh).then(function () { window.scrollTo(0, 0); });
      });
    });
  }
  // Signing out wipes what the phone keeps: refused while visits wait.
  var logout = document.querySelector('form[action="/logout"]');
  if (logout) {
    logout.addEventListener('submit', function (event) {
      event.preventDefault();
      all().then(function (list) {
        if (list.every(function (visit) { return visit.sent; })) { logout.submit(); return; }
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

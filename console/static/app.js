// Anxin console: the little script the pages need (no inline script is
// allowed by the content security policy). It sends the CSRF token with
// every htmx request, keeps the ages on the alert board ticking, and keeps
// the board live over server-sent events, with a sound and a banner when a
// critical alert opens.
(function () {
  'use strict';
  var body = document.body;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : '';
  body.addEventListener('htmx:configRequest', function (event) {
    event.detail.headers['X-CSRF-Token'] = csrf;
  });

  // The server's clock, not the browser's, decides how old an alert is.
  var skew = 0;
  function readServerClock() {
    var mark = document.querySelector('[data-server-now]');
    if (mark) skew = Number(mark.getAttribute('data-server-now')) - Date.now();
  }
  var units = body.dataset;
  function age(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' ' + units.unitS;
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' ' + units.unitMin + ' ' + (s % 60) + ' ' + units.unitS;
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' ' + units.unitH + ' ' + (m % 60) + ' ' + units.unitMin;
    return Math.floor(h / 24) + ' ' + units.unitD + ' ' + (h % 24) + ' ' + units.unitH;
  }
  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll('time.age[data-since]').forEach(function (t) {
      t.textContent = age(now - Number(t.getAttribute('data-since')));
    });
  }
  readServerClock();
  tick();
  setInterval(tick, 1000);

  // Visitors: the app's service worker keeps the pages they open, and a
  // banner says so when the console cannot be reached.
  if (body.dataset.app === 'visitor' && 'serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(function () {});
    fetch('/healthz', { cache: 'no-store' }).catch(function () {
      var banner = document.createElement('p');
      banner.className = 'notice offline';
      banner.id = 'offline';
      banner.setAttribute('role', 'status');
      banner.textContent = body.dataset.offline;
      var main = document.querySelector('main');
      if (main) main.insertBefore(banner, main.firstChild);
    });
  }

  var board = document.getElementById('board');
  if (!board) return;
  var live = document.getElementById('live');
  var banner = document.getElementById('new-critical');
  var soundButton = document.getElementById('sound');
  var sound = false;
  var audio = null;
  var fresh = new Set();

  soundButton.addEventListener('click', function () {
    sound = !sound;
    if (sound && !audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio && audio.state === 'suspended') audio.resume();
    soundButton.textContent = sound ? soundButton.dataset.on : soundButton.dataset.off;
    soundButton.setAttribute('aria-pressed', String(sound));
  });
  function beep() {
    if (!sound || !audio) return;
    [0, 0.35, 0.7].forEach(function (at) {
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      tone.connect(gain);
      gain.connect(audio.destination);
      gain.gain.setValueAtTime(0.25, audio.currentTime + at);
      tone.start(audio.currentTime + at);
      tone.stop(audio.currentTime + at + 0.25);
    });
  }

  var pending = null;
  function refreshRows() {
    clearTimeout(pending);
    pending = setTimeout(function () { htmx.trigger(body, 'board-refresh'); }, 150);
  }
  function refreshDetail(alertId) {
    var shown = document.querySelector('#detail [data-alert]');
    if (shown && Number(shown.getAttribute('data-alert')) === alertId) {
      htmx.ajax('GET', '/board/alerts/' + alertId, { target: '#detail', swap: 'innerHTML' });
    }
  }

  // An open board is attended by its nature (the duty room's screen): it
  // refreshes every five minutes, which keeps the shift figure current and
  // the session alive until its absolute limit.
  setInterval(refreshRows, Number(board.getAttribute('data-refresh-ms')) || 300000);

  var source = new EventSource(board.getAttribute('data-events'));
  source.addEventListener('open', function () {
    live.textContent = live.dataset.connected;
    live.className = 'live ok';
    // Whatever happened while the stream was down is on the refreshed rows.
    refreshRows();
  });
  source.addEventListener('error', function () {
    live.textContent = live.dataset.lost;
    live.className = 'live bad';
  });
  source.addEventListener('alert', function (event) {
    var change = JSON.parse(event.data);
    if (change.action === 'opened' && change.severity === 'critical') {
      fresh.add(change.alert_id);
      banner.hidden = false;
      beep();
    }
    if (change.action === 'acknowledged' || change.action === 'resolved') fresh.delete(change.alert_id);
    if (fresh.size === 0) banner.hidden = true;
    refreshRows();
    refreshDetail(change.alert_id);
  });
  body.addEventListener('board-changed', function (event) {
    var id = event.detail && event.detail.value;
    if (typeof id === 'number') {
      fresh.delete(id);
      if (fresh.size === 0) banner.hidden = true;
      refreshDetail(id);
    }
  });
  body.addEventListener('htmx:afterSwap', function (event) {
    if (event.target.id !== 'board-rows') return;
    readServerClock();
    tick();
    fresh.forEach(function (id) {
      var row = document.getElementById('alert-' + id);
      if (row && !row.classList.contains('acked')) row.classList.add('fresh');
    });
  });
  banner.addEventListener('click', function () { banner.hidden = true; });

})();

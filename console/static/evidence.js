// The visit form's evidence, on the visitor's phone: two signature pads
// (被探访人, 探访人员) drawn with a finger, the visit's end time, and — only
// when its consent box is ticked — the phone's location as the visit
// begins and one photo, shrunk on the phone (the console re-encodes it
// anyway). Everything lands in the form's own fields, so a visit kept
// offline carries it too.
(function () {
  'use strict';
  var form = document.querySelector('form.visit-form');
  if (!form) return;

  // A pad keeps strokes of whole points in its 300 × 120 box; its text is
  // "x,y x,y;x,y" (strokes by ';'), which the console reads and draws.
  function pad(box) {
    var canvas = box.querySelector('canvas');
    var field = box.querySelector('input[type=hidden]');
    var context = canvas.getContext('2d');
    var strokes = [];
    function draw() {
      context.clearRect(0, 0, canvas.width, canvas.height);
      context.lineWidth = 2.5;
      context.lineCap = 'round';
      context.lineJoin = 'round';
      context.strokeStyle = '#1b2733';
      strokes.forEach(function (stroke) {
        context.beginPath();
        stroke.forEach(function (p, i) { if (i === 0) context.moveTo(p[0], p[1]); else context.lineTo(p[0], p[1]); });
        if (stroke.length === 1) context.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
        context.stroke();
      });
    }
    function save() {
      field.value = strokes.map(function (s) { return s.map(function (p) { return p[0] + ',' + p[1]; }).join(' '); }).join(';');
      box.classList.toggle('signed', strokes.length > 0);
    }
    function load() {
      strokes = (field.value || '').split(';').filter(Boolean).map(function (s) {
        return s.trim().split(/\s+/).map(function (p) { return p.split(',').map(Number); });
      });
      box.classList.toggle('signed', strokes.length > 0);
      draw();
    }
    function at(event) {
      var r = canvas.getBoundingClientRect();
      var x = Math.round((event.clientX - r.left) * canvas.width / r.width);
      var y = Math.round((event.clientY - r.top) * canvas.height / r.height);
      return [Math.max(0, Math.min(canvas.width, x)), Math.max(0, Math.min(canvas.height, y))];
    }
    var drawing = null;
    canvas.addEventListener('pointerdown', function (event) {
      event.preventDefault();
      try { canvas.setPointerCapture(event.pointerId); } catch (ignored) { /* a pointer the page did not see begin */ }
      drawing = [at(event)];
      strokes.push(drawing);
      draw();
    });
    canvas.addEventListener('pointermove', function (event) {
      if (!drawing) return;
      var p = at(event);
      var last = drawing[drawing.length - 1];
      if (Math.abs(p[0] - last[0]) + Math.abs(p[1] - last[1]) < 2) return;
      drawing.push(p);
      draw();
    });
    function end() { if (drawing) { drawing = null; save(); } }
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    box.querySelector('button.clear').addEventListener('click', function () { strokes = []; save(); draw(); });
    form.addEventListener('restored', load);
    load();
  }
  document.querySelectorAll('.signature-pad').forEach(pad);

  // The deployment's day and clock, whatever the phone's time zone.
  var offset = Number(form.dataset.offsetMinutes || 0);
  function localNow() {
    var text = new Date(Date.now() + offset * 60000).toISOString();
    return { day: text.slice(0, 10), time: text.slice(11, 16) };
  }
  function field(name) { return form.querySelector('[name=' + name + ']'); }
  // A fresh form (not one sent back with a reason, not a refused visit
  // reopened) is a new visit: its own id, today, begun now. A form the
  // phone kept from an earlier day would otherwise carry that day's
  // values — and one id for every visit recorded from it.
  var sentBack = document.querySelector('main p.error[role=alert]');
  var reopened = new URLSearchParams(location.search).has('restore');
  if (!sentBack && !reopened) {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    field('client_id').value = Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
    var now = localNow();
    field('day').value = now.day;
    field('started').value = now.time;
  }

  // The end: the moment it is saved, unless the visitor typed one (left
  // empty when that would be before the start: a visit past midnight).
  form.addEventListener('submit', function () {
    var ended = field('ended');
    if (ended && !ended.value) {
      var time = localNow().time;
      var started = field('started').value;
      if (!started || time >= started) ended.value = time;
    }
  }, true);

  // The location, asked once when the visitor agrees (the visit begins
  // when the form is opened at the door).
  var consentLocation = form.querySelector('input[name=consent_location]');
  var status = form.querySelector('.location-status');
  function set(name, value) { form.querySelector('input[name=' + name + ']').value = value; }
  function locate() {
    if (!consentLocation.checked) {
      set('latitude', ''); set('longitude', ''); set('accuracy', '');
      status.textContent = '';
      return;
    }
    if (form.querySelector('input[name=latitude]').value) { status.textContent = status.dataset.located; return; }
    if (!navigator.geolocation) { status.textContent = status.dataset.unlocated; return; }
    navigator.geolocation.getCurrentPosition(function (position) {
      set('latitude', position.coords.latitude.toFixed(6));
      set('longitude', position.coords.longitude.toFixed(6));
      set('accuracy', Math.round(position.coords.accuracy));
      status.textContent = status.dataset.located;
    }, function () { status.textContent = status.dataset.unlocated; }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }
  if (consentLocation) {
    consentLocation.addEventListener('change', locate);
    if (consentLocation.checked) locate();
  }

  // The photo: drawn into a canvas at most 1280 px on its longest side and
  // encoded as JPEG — which also leaves the camera's metadata behind.
  var consentPhoto = form.querySelector('input[name=consent_photo]');
  var file = form.querySelector('input.photo-file');
  var photo = form.querySelector('input[name=photo]');
  var preview = form.querySelector('img.photo-preview');
  function showPhoto() {
    preview.hidden = !photo.value;
    if (photo.value) preview.src = photo.value;
    if (file) file.disabled = consentPhoto && !consentPhoto.checked;
  }
  if (file && photo) {
    file.addEventListener('change', function () {
      var chosen = file.files && file.files[0];
      if (!chosen) return;
      // Read as a data: URL (the content security policy admits no blob:).
      var reader = new FileReader();
      var picture = new Image();
      picture.onload = function () {
        var scale = Math.min(1, 1280 / Math.max(picture.width, picture.height));
        var canvas = document.createElement('canvas');
        canvas.width = Math.round(picture.width * scale);
        canvas.height = Math.round(picture.height * scale);
        canvas.getContext('2d').drawImage(picture, 0, 0, canvas.width, canvas.height);
        photo.value = canvas.toDataURL('image/jpeg', 0.75);
        file.value = '';
        showPhoto();
      };
      reader.onload = function () { picture.src = reader.result; };
      reader.readAsDataURL(chosen);
    });
    consentPhoto.addEventListener('change', function () {
      if (!consentPhoto.checked) photo.value = '';
      showPhoto();
    });
    form.addEventListener('restored', showPhoto);
    showPhoto();
  }
})();

// Cashier behaviour: countdown, status polling, auto-submit. Everything also works without it.
(function () {
  'use strict';
  var times = document.querySelectorAll('time[data-expires-at]');
  if (times.length) {
    var tick = function () {
      var now = Math.floor(Date.now() / 1000);
      times.forEach(function (el) {
        var left = Math.max(0, Number(el.getAttribute('data-expires-at')) - now);
        el.textContent = Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0');
        if (left === 0) location.reload();
      });
    };
    tick();
    setInterval(tick, 1000);
  }
  var form = document.querySelector('form[data-autosubmit]');
  if (form) form.submit();
  var watched = document.querySelector('[data-status-url]');
  if (watched) {
    var url = watched.getAttribute('data-status-url');
    var poll = function () {
      fetch(url, { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) {
        if (s.status === 'succeeded') {
          if (s.return_url) window.top.location.href = s.return_url; else location.reload();
        } else if (s.status !== 'open') location.reload();
        else setTimeout(poll, 2000);
      }, function () { setTimeout(poll, 4000); });
    };
    setTimeout(poll, 1500);
  }
})();

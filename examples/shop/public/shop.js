// Order page: polls the shop's own status endpoint (the webhook decides), and shows the widget's
// events as hints only: checkstand-success never marks an order paid.
(function () {
  'use strict';
  var status = document.getElementById('order-status');
  var hint = document.getElementById('order-hint');
  if (!status) return;
  var show = function (text) {
    hint.textContent = text;
    hint.hidden = !text;
  };
  var poll = function () {
    fetch(status.getAttribute('data-status-url'), { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (o) {
        if (o.status !== status.getAttribute('data-status')) {
          status.setAttribute('data-status', o.status);
          status.textContent = o.status_text;
        }
        if (o.status === 'pending') setTimeout(poll, 2000);
        else {
          show('');
          var pay = document.querySelector('.pay');
          if (pay) pay.remove();
        }
      }, function () { setTimeout(poll, 4000); });
  };
  if (status.getAttribute('data-status') === 'pending') setTimeout(poll, 2000);
  document.addEventListener('checkstand-success', function () {
    show('The cashier reports the payment; confirming with the payment gateway…');
  });
  document.addEventListener('checkstand-error', function (e) {
    show('Payment problem: ' + e.detail.message);
  });
})();

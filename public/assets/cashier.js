// Cashier behaviour: countdown, live status (SSE, polling fallback), QR renewal, and the
// postMessage link to the embedding widget. Every flow also works without this script.
(function () {
  'use strict';
  var main = document.getElementById('main');
  var parentOrigin = main && main.getAttribute('data-parent-origin');
  var paymentId = main && main.getAttribute('data-payment-id');
  var embedded = Boolean(parentOrigin) && window.parent !== window;

  // Messages go only to the registered origin the widget runs on, never "*".
  function tell(message) {
    if (!embedded) return;
    message.source = 'checkstand';
    if (paymentId) message.paymentId = paymentId;
    window.parent.postMessage(message, parentOrigin);
  }
  window.addEventListener('message', function (event) {
    if (!embedded || event.origin !== parentOrigin || event.source !== window.parent) return;
    var data = event.data;
    if (!data || data.source !== 'checkstand-widget') return;
    if (data.type === 'hello') tell({ type: 'ready' });
  });
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') tell({ type: 'close' });
  });
  tell({ type: 'ready' });

  var times = document.querySelectorAll('time[data-expires-at]');
  var qr = document.querySelector('[data-qr-expires-at]');
  // The format of formatCountdown in server/checkout/i18n.ts: m:ss, h:mm:ss, "{n}d h:mm:ss".
  function countdown(left, daysTemplate) {
    var days = Math.floor(left / 86400);
    var h = Math.floor((left % 86400) / 3600);
    var m = Math.floor((left % 3600) / 60);
    var ss = String(left % 60).padStart(2, '0');
    var clock = days || h ? h + ':' + String(m).padStart(2, '0') + ':' + ss : m + ':' + ss;
    return days ? (daysTemplate || '{n}d').replace('{n}', String(days)) + ' ' + clock : clock;
  }
  function tick() {
    var now = Math.floor(Date.now() / 1000);
    times.forEach(function (el) {
      var left = Math.max(0, Number(el.getAttribute('data-expires-at')) - now);
      el.textContent = countdown(left, el.getAttribute('data-days'));
      if (left === 0) location.reload();
    });
    // An expired QR code is renewed with a new channel order by reloading its page.
    if (qr && Number(qr.getAttribute('data-qr-expires-at')) <= now) location.reload();
  }
  if (times.length || qr) {
    tick();
    setInterval(tick, 1000);
  }

  var form = document.querySelector('form[data-autosubmit]');
  if (form) form.submit();

  // Apple Pay is offered only where this browser can pay with it: the server offers it on Apple's
  // browsers, hidden; it shows once ApplePaySession says the device can make payments.
  var applePay = document.querySelectorAll('[data-needs-apple-pay]');
  if (applePay.length) {
    var canPay = false;
    try {
      canPay = Boolean(window.ApplePaySession && window.ApplePaySession.canMakePayments());
    } catch (e) {
      canPay = false; // canMakePayments throws in insecure contexts and some frames
    }
    if (canPay) applePay.forEach(function (el) { el.hidden = false; });
  }

  // Inside WeChat: the payment sheet opens through WeixinJSBridge with the signed parameters.
  var inapp = document.getElementById('inapp-params');
  if (inapp) {
    var params = JSON.parse(inapp.textContent || '{}');
    var payButton = document.querySelector('[data-inapp-pay]');
    var retry = document.querySelector('[data-inapp-retry]');
    var section = document.querySelector('[data-inapp]');
    var openSheet = function () {
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (answer) {
        // The answer is a UI hint only; the status comes from the gateway.
        var said = answer && answer.err_msg;
        if (said === 'get_brand_wcpay_request:ok') return;
        if (said === 'get_brand_wcpay_request:cancel') {
          // The order is still payable: the sheet can open again, or the payer chooses another way.
          var line = document.querySelector('[data-status]');
          if (line) line.textContent = section.getAttribute('data-cancelled-text');
          if (retry) retry.hidden = false;
          return;
        }
        // A failed sheet: the return page asks WeChat, then goes on or offers the choice again.
        location.href = section.getAttribute('data-confirm-url');
      });
    };
    var ready = function () {
      if (payButton) payButton.addEventListener('click', openSheet);
      openSheet();
    };
    if (window.WeixinJSBridge) ready();
    else document.addEventListener('WeixinJSBridgeReady', ready);
  }

  var result = document.querySelector('[data-result="succeeded"]');
  if (result) tell({ type: 'success', status: 'succeeded', returnUrl: result.getAttribute('data-return-url') || undefined });

  var watched = document.querySelector('[data-status-url]');
  if (!watched) return;
  var statusUrl = watched.getAttribute('data-status-url');
  var eventsUrl = watched.getAttribute('data-events-url');
  var resultUrl = watched.getAttribute('data-result-url') || location.href;
  // Where a page waiting on one attempt goes once that attempt ended unpaid: the channel choice.
  var choiceUrl = watched.getAttribute('data-choice-url');
  var finished = false;
  function onStatus(s) {
    if (finished || !s) return;
    if (s.status === 'open') {
      if (s.attempt_status !== 'failed' || !choiceUrl) return;
      finished = true;
      location.replace(choiceUrl);
      return;
    }
    finished = true;
    if (s.status === 'succeeded') {
      tell({ type: 'success', status: 'succeeded', returnUrl: s.return_url || undefined });
      if (!embedded && s.return_url) {
        location.href = s.return_url;
        return;
      }
    } else {
      tell({ type: 'status', status: s.status });
    }
    location.href = resultUrl;
  }
  function poll() {
    fetch(statusUrl, { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) {
      onStatus(s);
      if (!finished) setTimeout(poll, 2000);
    }, function () { setTimeout(poll, 4000); });
  }
  // Server-Sent Events where the WebView has them; plain polling where it does not.
  if (window.EventSource && eventsUrl) {
    var source = new EventSource(eventsUrl);
    source.addEventListener('status', function (e) {
      var s = JSON.parse(e.data);
      if (s.status !== 'open' || (s.attempt_status && s.attempt_status !== 'pending')) source.close();
      onStatus(s);
    });
    source.onerror = function () {
      if (finished) return;
      source.close();
      setTimeout(poll, 1000);
    };
  } else {
    setTimeout(poll, 1500);
  }
})();

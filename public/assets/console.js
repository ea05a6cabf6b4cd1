// Merchant console: progressive enhancements only; every page works without this script.
// Loaded as an external file because the CSP allows no inline handlers.
(function () {
  'use strict';
  // Forms that move money or delete things ask once more (data-confirm holds the question).
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // The one-time webhook secret is selected on focus, ready to copy.
  var secret = document.querySelector('[data-secret]');
  if (secret) secret.addEventListener('focus', function () { secret.select(); });
})();

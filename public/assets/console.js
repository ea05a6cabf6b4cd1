// Merchant console: progressive enhancements only; every page works without this script.
// Loaded as an external file because the CSP allows no inline handlers.
(function () {
  'use strict';
  // Forms that move money or delete things ask once more (data-confirm holds the question).
  // A form whose amount may be typed names it: data-confirm-amount is the field's name and
  // data-confirm-partial the question with {amount}, asked when that field is not empty.
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute('data-confirm');
    var amountName = form.getAttribute('data-confirm-amount');
    var partial = form.getAttribute('data-confirm-partial');
    var field = amountName ? form.elements.namedItem(amountName) : null;
    var typed = field && typeof field.value === 'string' ? field.value.trim() : '';
    if (typed && partial) question = partial.split('{amount}').join(typed);
    if (question && !window.confirm(question)) event.preventDefault();
  });
  // The one-time webhook secret is selected on focus, ready to copy.
  var secret = document.querySelector('[data-secret]');
  if (secret) secret.addEventListener('focus', function () { secret.select(); });
})();

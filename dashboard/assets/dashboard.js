// keyward dashboard: progressive enhancement. Every page works without it.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The copy button of the one-time reveal. Without JavaScript it stays
  // hidden and the key is selected for manual copying.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    if (!input) {
      return;
    }
    button.hidden = false;
    function done(ok) {
      button.textContent = ok ? "Copied" : "Copy";
      if (status) {
        status.textContent = ok ? "Copied to the clipboard." : "Select the key and press Ctrl+C (⌘C on a Mac) to copy it.";
      }
    }
    function fallback() {
      input.focus();
      input.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (e) {
        ok = false;
      }
      done(ok);
    }
    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () { done(true); }, fallback);
      } else {
        fallback();
      }
    });
  });

  // Select the whole key when its field is focused.
  document.querySelectorAll("input[readonly]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });

  // The list's filters apply only when the operator presses Filter: a
  // change of a select never submits the form (WCAG 3.2.2, On Input).
})();

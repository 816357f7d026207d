// Broadcaster's only script besides htmx: small behaviours that have no server side.
(function () {
  "use strict";
  // Flash messages fade after a while; errors stay until the next action.
  function dismissLater(root) {
    root.querySelectorAll(".flash--success, .flash--info").forEach(function (el) {
      if (el.dataset.timer) return;
      el.dataset.timer = "1";
      setTimeout(function () { el.classList.add("flash--gone"); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { dismissLater(document); });
  document.addEventListener("htmx:afterSwap", function (evt) { dismissLater(evt.target); });
})();

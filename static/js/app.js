// Broadcaster's only script besides htmx: small behaviours that have no server side.
(function () {
  "use strict";
  // Flash messages fade after a while; errors stay until the next action.
  function dismissLater(root) {
    root.querySelectorAll(".flash--success, .flash--info").forEach(function (el) {
      if (el.dataset.timer) return;
      el.dataset.timer = "1";
      setTimeout(function () {
        el.classList.add("flash--gone");
        // Gone for good once faded: an invisible message would leave a blank band above the title.
        setTimeout(function () { el.remove(); }, 450);
      }, 6000);
    });
  }

  // On a narrow screen the main menu is a strip that scrolls sideways: keep the current page's
  // entry in view, and fade whichever edge hides more entries so people see there is more.
  function setUpMenu() {
    var nav = document.querySelector(".app-nav");
    var list = nav && nav.querySelector("ul");
    if (!list) return;
    function markClipped() {
      var more = list.scrollWidth - list.clientWidth;
      nav.classList.toggle("is-clipped-start", more > 1 && list.scrollLeft > 1);
      nav.classList.toggle("is-clipped-end", more > 1 && list.scrollLeft < more - 1);
    }
    function revealCurrent() {
      var current = list.querySelector('[aria-current="page"]');
      if (!current || list.scrollWidth <= list.clientWidth) return;
      var box = current.getBoundingClientRect();
      var edge = list.getBoundingClientRect();
      var fade = 40; // the width of the faded edge in app.css (2.5rem), so never under it
      var more = list.scrollWidth - list.clientWidth;
      var left = edge.left + (list.scrollLeft > 1 ? fade : 0);
      var right = edge.right - (list.scrollLeft < more - 1 ? fade : 0);
      if (box.left >= left && box.right <= right) return;
      var start = box.left - edge.left + list.scrollLeft;
      list.scrollLeft = start - (list.clientWidth - box.width) / 2;
    }
    revealCurrent();
    markClipped();
    list.addEventListener("scroll", markClipped, { passive: true });
    window.addEventListener("resize", function () {
      revealCurrent();
      markClipped();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    dismissLater(document);
    setUpMenu();
  });
  document.addEventListener("htmx:afterSwap", function (evt) { dismissLater(evt.target); });
})();

// Broadcasts: the segment shares' total follows the inputs as people type (the server checks
// it again on each save, and marks the input at fault), and "Cancel"/"Close" in a
// confirmation panel empties it.
(function () {
  "use strict";
  function showTotal(form) {
    var total = 0;
    var valid = true;
    form.querySelectorAll("[data-ratio]").forEach(function (el) {
      var text = el.value.trim();
      if (text === "") return;
      if (!/^\d+$/.test(text)) { valid = false; return; }
      total += parseInt(text, 10);
    });
    var out = form.querySelector("[data-ratio-sum]");
    if (out) out.textContent = valid ? String(total) : "?";
    var line = form.querySelector("[data-ratio-total]");
    if (line) line.classList.toggle("ratio-sum--over", valid && total > 100);
  }
  function markFault(form, feedback) {
    var fault = feedback.getAttribute("data-invalid");
    form.querySelectorAll("input[data-ratio], select").forEach(function (el) {
      var bad = fault && (fault === "segments" ? el.matches("[data-ratio]") : el.name === fault);
      if (bad) {
        el.setAttribute("aria-invalid", "true");
        el.setAttribute("aria-describedby", "broadcasts-segments-error");
      } else {
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
      }
    });
  }
  document.addEventListener("input", function (evt) {
    var input = evt.target;
    if (!input.matches || !input.matches("[data-ratio]")) return;
    var form = input.closest("[data-ratios]");
    if (form) showTotal(form);
  });
  // A save answered after more typing: the total shown is still that of the inputs.
  document.addEventListener("htmx:afterSwap", function () {
    var feedback = document.getElementById("broadcasts-segments-feedback");
    var form = feedback && feedback.closest("[data-ratios]");
    if (!form) return;
    showTotal(form);
    markFault(form, feedback);
  });
})();

// Confirmations. A panel marked data-dismissable that htmx swaps in (send now, cancel sending,
// the campaign review) takes the focus, so a keyboard or screen-reader user lands on the
// question; its Cancel/Close button, or Escape, removes it and puts the focus back on the control
// that opened it. An inline <details> confirmation (delete a campaign) does the same.
(function () {
  "use strict";
  var openers = new WeakMap(); // panel's container -> the control that asked for the panel
  function focusPanel(panel) {
    if (!panel.hasAttribute("tabindex")) panel.setAttribute("tabindex", "-1");
    panel.focus({ preventScroll: true });
    panel.scrollIntoView({ block: "nearest" });
  }
  function close(panel) {
    var container = panel.parentElement;
    var opener = container && openers.get(container);
    panel.remove();
    if (opener && opener.isConnected) opener.focus();
  }
  document.addEventListener("htmx:afterSwap", function (evt) {
    var container = evt.detail.target;
    if (!container || !container.querySelector) return;
    var panel = container.matches("[data-dismissable]") ? container : container.querySelector("[data-dismissable]");
    if (!panel) return;
    var elt = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    var host = panel.parentElement;
    // Asked from outside (the opener), not by a button of the panel it replaced.
    if (elt && elt.isConnected && !host.contains(elt)) openers.set(host, elt);
    focusPanel(panel);
  });
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-dismiss]");
    if (!button) return;
    var panel = button.closest("[data-dismissable]");
    if (panel) close(panel);
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape" || !evt.target.closest) return;
    var panel = evt.target.closest("[data-dismissable]");
    if (panel) {
      evt.preventDefault();
      close(panel);
      return;
    }
    var details = evt.target.closest("details.confirm-inline[open]");
    if (details) {
      evt.preventDefault();
      details.open = false;
      details.querySelector("summary").focus();
    }
  });
  document.addEventListener("toggle", function (evt) {
    var details = evt.target;
    if (!details.matches || !details.matches("details.confirm-inline") || !details.open) return;
    var first = details.querySelector("form button, form input:not([type=hidden])");
    if (first) first.focus();
  }, true);
})();

// Campaigns form: a merge field button puts `{column}` in the message at the cursor; a
// confirmation goes away once the form changes (it would no longer be what gets scheduled);
// a successful review clears the marks of errors fixed since.
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-insert]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-insert-into"));
    if (!field) return;
    var text = button.getAttribute("data-insert");
    var start = field.selectionStart == null ? field.value.length : field.selectionStart;
    var end = field.selectionEnd == null ? start : field.selectionEnd;
    field.value = field.value.slice(0, start) + text + field.value.slice(end);
    field.focus();
    field.setSelectionRange(start + text.length, start + text.length);
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });
  function dropReview(evt) {
    var form = evt.target.closest && evt.target.closest("#campaigns-form");
    var preview = document.getElementById("campaigns-preview");
    if (!form || !preview || preview.contains(evt.target)) return;
    preview.innerHTML = "";
  }
  document.addEventListener("input", dropReview);
  document.addEventListener("change", dropReview);
  // A refused form (or file) comes back marked: put the cursor in the first field to fix.
  document.addEventListener("htmx:afterSettle", function (evt) {
    if (!evt.detail.xhr || evt.detail.xhr.status !== 422) return;
    var form = document.getElementById("campaigns-form");
    if (!form) return;
    var field = form.querySelector('input[aria-invalid="true"], select[aria-invalid="true"], textarea[aria-invalid="true"]');
    if (field) field.focus({ preventScroll: true });
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.target.id !== "campaigns-preview" || !evt.detail.xhr || evt.detail.xhr.status !== 200) return;
    var form = document.getElementById("campaigns-form");
    form.querySelectorAll("[data-field-error], #campaigns-form-errors").forEach(function (el) { el.remove(); });
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) {
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
    });
  });
})();

// Live regions that htmx replaces whole (a polled progress line swapped outerHTML, the flash
// swapped out of band) are new elements to a screen reader, which announces only changes to a
// region it already knows. So the text of each replaced region[aria-live][id] that changed is
// repeated in one hidden polite region that stays. Regions that stayed in place announce
// themselves; alerts announce themselves when inserted.
(function () {
  "use strict";
  var before = new Map(); // id -> { el, text } of the live regions just before a swap
  var announcer;
  function textOf(el) { return (el.textContent || "").replace(/\s+/g, " ").trim(); }
  document.addEventListener("DOMContentLoaded", function () {
    announcer = document.createElement("div");
    announcer.id = "live-announcer";
    announcer.className = "visually-hidden";
    announcer.setAttribute("aria-live", "polite");
    announcer.setAttribute("aria-atomic", "true");
    document.body.appendChild(announcer);
  });
  document.addEventListener("htmx:beforeSwap", function () {
    before.clear();
    document.querySelectorAll("[aria-live][id]").forEach(function (el) {
      if (el !== announcer) before.set(el.id, { el: el, text: textOf(el) });
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!announcer) return;
    var said = [];
    before.forEach(function (old, id) {
      if (old.el.isConnected) return;
      var now = document.getElementById(id);
      if (!now || now.querySelector('[role="alert"]')) return;
      var text = textOf(now);
      if (text && text !== old.text) said.push(text);
    });
    before.clear();
    if (said.length) announcer.textContent = said.join(" ");
  });
})();

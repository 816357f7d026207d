// The Missive sidebar's script: links that leave the sidebar open in a new tab (the dashboard
// refuses to be framed), and the conversation panel follows the conversation selected in Missive
// through Missive's JavaScript API (Missive.on / Missive.fetchConversations).
(function () {
  "use strict";

  // A link to a dashboard page inside the frame would show a refused (blank) frame: it opens
  // outside, through Missive (a browser tab on desktop), or a new tab without Missive.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    var url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname.indexOf("/sidebar/") === 0) return;
    if (url.pathname === window.location.pathname && url.hash) return; // an anchor on this page
    if (window.Missive && window.Missive.openURL) {
      event.preventDefault();
      window.Missive.openURL(url.href);
      return;
    }
    link.target = "_blank";
    link.rel = "noopener";
  });

  // How long the Contact panel waits for Missive to say which conversation is selected before
  // it says that it needs Missive's sidebar (and offers the look-up by number).
  var MISSIVE_WAIT_MS = 5000;

  function phonesOf(conversation) {
    // An SMS conversation's numbers: its authors' phone_number (Missive's Conversation object),
    // and its messages' from and to fields (messages, latest_message).
    var messages = (conversation.messages || []).slice();
    if (conversation.latest_message) messages.push(conversation.latest_message);
    var phones = [];
    function add(field) {
      if (field && typeof field.phone_number === "string" && field.phone_number &&
          phones.indexOf(field.phone_number) < 0) {
        phones.push(field.phone_number);
      }
    }
    (conversation.authors || []).forEach(add);
    messages.forEach(function (message) {
      if (!message) return;
      add(message.from_field);
      (message.to_fields || []).forEach(add);
    });
    return phones;
  }

  function say(panel, id, text) {
    // Text only: nothing Missive sends is ever read as HTML.
    panel.innerHTML = "";
    var note = document.createElement("p");
    note.className = "empty";
    note.id = id;
    note.textContent = text;
    panel.appendChild(note);
  }

  function setUpConversation(panel) {
    var base = panel.getAttribute("data-panel-url");
    var outside = document.getElementById("sidebar-conversation-outside");
    var shown = null;
    var heard = false;
    function showOutside() {
      if (heard || !outside) return;
      outside.hidden = false;
      var waiting = document.getElementById("sidebar-conversation-waiting");
      if (waiting) waiting.remove();
    }
    function load(params) {
      heard = true;
      if (outside) outside.hidden = true;
      var query = new URLSearchParams(params).toString();
      if (query === shown) return;
      shown = query;
      htmx.ajax("GET", base + "?" + query, { target: "#sidebar-conversation", swap: "innerHTML" });
    }
    if (typeof window.Missive === "undefined" || typeof window.Missive.on !== "function") {
      showOutside(); // missive.js did not load: this page is not in Missive's sidebar
      return;
    }
    window.setTimeout(showOutside, MISSIVE_WAIT_MS);
    // retroactive: told at once which conversation is selected now, not only at the next change.
    window.Missive.on("change:conversations", function (ids) {
      ids = Array.isArray(ids) ? ids : [];
      if (ids.length !== 1) {
        load([["selected", ids.length ? "many" : "0"]]);
        return;
      }
      heard = true;
      if (outside) outside.hidden = true;
      Promise.resolve(window.Missive.fetchConversations(ids)).then(function (conversations) {
        var conversation = conversations && conversations[0];
        if (!conversation) {
          load([["selected", "0"]]);
          return;
        }
        var params = [["selected", "1"], ["conversation", String(conversation.id || ids[0])]];
        phonesOf(conversation).forEach(function (phone) { params.push(["phone", phone]); });
        load(params);
      }, function () {
        shown = null;
        say(panel, "sidebar-conversation-failed",
          "Missive did not return the selected conversation. Select it again, or reload the sidebar.");
      });
    }, { retroactive: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("sidebar-conversation");
    if (panel) setUpConversation(panel);
  });
})();

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

  function phonesOf(conversation) {
    // An SMS conversation's numbers are in its messages' from and to fields.
    var messages = (conversation.messages || []).slice();
    if (conversation.latest_message) messages.push(conversation.latest_message);
    var phones = [];
    function add(field) {
      if (field && field.phone_number && phones.indexOf(field.phone_number) < 0) {
        phones.push(field.phone_number);
      }
    }
    messages.forEach(function (message) {
      add(message.from_field);
      (message.to_fields || []).forEach(add);
    });
    return phones;
  }

  function setUpConversation(panel) {
    var base = panel.getAttribute("data-panel-url");
    var shown = null;
    function load(params) {
      var query = new URLSearchParams(params).toString();
      if (query === shown) return;
      shown = query;
      htmx.ajax("GET", base + "?" + query, { target: "#sidebar-conversation", swap: "innerHTML" });
    }
    if (typeof window.Missive === "undefined") {
      panel.innerHTML = "";
      var note = document.createElement("p");
      note.className = "empty";
      note.id = "sidebar-conversation-outside";
      note.textContent = "Open this panel inside Missive: it shows the contact of the conversation selected there.";
      panel.appendChild(note);
      return;
    }
    // retroactive: told at once which conversation is selected now, not only at the next change.
    window.Missive.on("change:conversations", function (ids) {
      ids = ids || [];
      if (ids.length !== 1) {
        load([["selected", ids.length ? "many" : "0"]]);
        return;
      }
      window.Missive.fetchConversations(ids).then(function (conversations) {
        var conversation = conversations && conversations[0];
        if (!conversation) {
          load([["selected", "0"]]);
          return;
        }
        var params = [["selected", "1"], ["conversation", conversation.id]];
        phonesOf(conversation).forEach(function (phone) { params.push(["phone", phone]); });
        load(params);
      });
    }, { retroactive: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("sidebar-conversation");
    if (panel) setUpConversation(panel);
  });
})();

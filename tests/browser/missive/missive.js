// A stand-in for Missive's iframe API (integrations.missiveapp.com/missive.js), served by the
// browser tests: the calls the sidebar uses, talking to the host page (host.html, playing
// Missive) through postMessage as a cross-site frame would.
(function () {
  "use strict";
  var handlers = {};
  var pending = {};
  var next = 0;
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    var data = event.data || {};
    if (data.missive === "change:conversations") {
      (handlers["change:conversations"] || []).forEach(function (fn) { fn(data.ids); });
    } else if (data.missive === "conversations" && pending[data.requestId]) {
      pending[data.requestId](data.conversations);
      delete pending[data.requestId];
    }
  });
  window.Missive = {
    on: function (name, fn, options) {
      (handlers[name] = handlers[name] || []).push(fn);
      // retroactive: Missive calls the new listener at once with what happened before.
      if (options && options.retroactive) {
        window.parent.postMessage({ missive: "listening", name: name }, "*");
      }
    },
    openURL: function (url) {
      window.parent.postMessage({ missive: "openURL", url: url }, "*");
    },
    fetchConversations: function (ids) {
      return new Promise(function (resolve) {
        next += 1;
        pending[next] = resolve;
        window.parent.postMessage({ missive: "fetchConversations", ids: ids, requestId: next }, "*");
      });
    },
  };
})();

// Live updates without reload: listen to the console's server-sent events and re-fetch the
// page's live fragment (server-rendered HTML) when something happens. No build step.
(function () {
  "use strict";
  function fmtTimes(root) {
    root.querySelectorAll(".ts[data-ms]").forEach(function (el) {
      var ms = parseInt(el.dataset.ms, 10);
      if (ms) { el.textContent = new Date(ms).toLocaleString(); el.title = new Date(ms).toISOString(); }
    });
  }
  fmtTimes(document);
  var root = document.getElementById("live-root");
  var status = document.getElementById("live-status");
  if (!root || !window.EventSource) { return; }
  var model = root.dataset.liveModel;
  var pending = null;
  function refresh() {
    pending = null;
    fetch(root.dataset.liveFragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        root.innerHTML = html;
        fmtTimes(root);
        document.body.dataset.refreshes = String(parseInt(document.body.dataset.refreshes || "0", 10) + 1);
      });
  }
  function describe(d) {
    var e = d.data || {};
    if (d.kind === "drift") { return "drift on " + d.model + ": " + e.detector + " (" + e.signal + ")"; }
    if (d.kind === "update") { return "update requested for " + d.model + " by " + e.requested_by; }
    if (d.kind === "candidate") { return "candidate " + (e.version != null ? "v" + e.version + " " : "") + e.outcome + " for " + d.model; }
    if (d.kind === "deployment") { return d.model + " v" + e.version + " " + e.action + " by " + e.actor; }
    return null;
  }
  var source = new EventSource("/api/v1/events" + (model ? "?model=" + encodeURIComponent(model) : ""));
  source.addEventListener("hello", function () {
    // Catch up with whatever happened between rendering the page and (re)connecting: the
    // subscription is live before "hello" is sent, so nothing falls between the two.
    refresh();
    document.body.dataset.live = "connected";
    if (status) { status.className = "on"; }
  });
  source.onerror = function () {
    document.body.dataset.live = "reconnecting";
    if (status) { status.className = "off"; }
  };
  ["drift", "update", "candidate", "deployment", "accuracy"].forEach(function (kind) {
    source.addEventListener(kind, function (ev) {
      var d = JSON.parse(ev.data);
      var text = describe(d);
      if (text) {
        var last = document.getElementById("last-event");
        if (last) { last.textContent = new Date().toLocaleTimeString() + " · " + text; }
      }
      if (!pending) { pending = setTimeout(refresh, 200); }
    });
  });
})();

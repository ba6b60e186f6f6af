// registrar status page: refreshes the live part of the page by fetching
// the same URL again, and filters the rows shown. The page works without
// this script; it only adds to it.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms"), 10) || 2000;
  var live = document.getElementById("live");
  var status = document.getElementById("refresh-status");
  var quick = document.getElementById("quick");
  var refreshes = 0;

  function applyQuick() {
    var text = quick ? quick.value.trim().toLowerCase() : "";
    var rows = live.querySelectorAll("#nodes tbody tr[data-id]");
    var shown = 0;
    rows.forEach(function (tr) {
      var match = text === "" || tr.textContent.toLowerCase().indexOf(text) >= 0;
      tr.hidden = !match;
      if (match) { shown++; }
    });
    var label = document.getElementById("shown");
    if (label && text !== "") { label.textContent = shown + " of " + rows.length + " shown, matching \u201c" + quick.value.trim() + "\u201d"; }
  }

  function stamp() {
    return new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function refresh() {
    fetch(window.location.pathname + window.location.search, {
      headers: { "X-Registrar-Partial": "1" }, cache: "no-store", credentials: "same-origin"
    }).then(function (resp) {
      return resp.text().then(function (html) {
        // An error answer still renders the live part, with its message.
        live.innerHTML = html;
        applyQuick();
        refreshes++;
        body.setAttribute("data-refreshes", String(refreshes));
        status.classList.toggle("stale", !resp.ok);
        status.textContent = (resp.ok ? "live, updated " : "refresh answered " + resp.status + " at ") + stamp();
      });
    }).catch(function () {
      status.classList.add("stale");
      status.textContent = "refresh failed at " + stamp() + "; retrying";
    }).finally(function () {
      window.setTimeout(refresh, every);
    });
  }

  if (quick) {
    quick.closest("label").hidden = false;
    quick.addEventListener("input", applyQuick);
  }
  window.setTimeout(refresh, every);
})();

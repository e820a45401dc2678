// Remembers which columns of the runs table are hidden (localStorage), and refreshes the live
// section of a deployment's page; nothing else.
"use strict";
(function () {
  var KEY = "modelpilot.hiddenColumns";
  var toggles = document.querySelectorAll("input[data-toggle]");
  if (!toggles.length) return;
  var hidden;
  try { hidden = JSON.parse(localStorage.getItem(KEY) || "[]"); } catch (e) { hidden = []; }
  function apply() {
    document.querySelectorAll("[data-col]").forEach(function (cell) {
      cell.hidden = hidden.indexOf(cell.getAttribute("data-col")) >= 0;
    });
  }
  toggles.forEach(function (box) {
    var column = box.getAttribute("data-toggle");
    box.checked = hidden.indexOf(column) < 0;
    box.addEventListener("change", function () {
      hidden = hidden.filter(function (c) { return c !== column; });
      if (!box.checked) hidden.push(column);
      localStorage.setItem(KEY, JSON.stringify(hidden));
      apply();
    });
  });
  apply();
})();

// Partial updates: an element with data-live-src (a deployment's live guard metrics) fetches
// that fragment of this server every data-live-every-s seconds and swaps it in. htmx does this
// declaratively, but it cannot be vendored here (this project was built with no network to
// fetch it from), and these lines need nothing beyond the page's CSP (default-src 'self': a
// fetch to this server, no inline script, no eval).
(function () {
  var box = document.querySelector("[data-live-src]");
  if (!box) return;
  var everyMs = 1000 * (Number(box.getAttribute("data-live-every-s")) || 10);
  function later() { window.setTimeout(refresh, everyMs); }
  function refresh() {
    if (document.hidden) { later(); return; }  // a background tab asks nothing
    box.setAttribute("aria-busy", "true");
    fetch(box.getAttribute("data-live-src"), { credentials: "same-origin", cache: "no-store" })
      .then(function (reply) {
        if (reply.redirected) {  // the session ended: the server sent the login form
          window.location.assign(window.location.href);
          return null;
        }
        if (!reply.ok) throw new Error("HTTP " + reply.status);
        return reply.text();
      })
      .then(function (html) {
        if (html === null) return;
        box.innerHTML = html;
        box.setAttribute("data-refreshed", String(Date.now()));
        box.removeAttribute("aria-busy");
        later();
      })
      .catch(function (error) {
        box.removeAttribute("aria-busy");
        box.setAttribute("data-refresh-failed", String(error));
        later();  // the server may be restarting; the page keeps what it showed
      });
  }
  later();
})();

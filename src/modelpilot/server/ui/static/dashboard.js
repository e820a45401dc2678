// Remembers which columns of the runs table are hidden (localStorage), and nothing else.
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

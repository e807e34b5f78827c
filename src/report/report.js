// Progressive enhancement only: the page is complete without it. Adds a filter and
// sortable columns to the site table, and opens every <details> before printing.
(function () {
  "use strict";
  var table = document.getElementById("site-table");
  if (table && table.tBodies.length) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var tools = document.getElementById("site-tools");
    var text = document.getElementById("site-filter");
    var outcome = document.getElementById("outcome-filter");
    var count = document.getElementById("site-count");
    var apply = function () {
      var wanted = text.value.trim().toLowerCase();
      var only = outcome.value;
      var shown = 0;
      rows.forEach(function (row) {
        var visible = (!wanted || row.textContent.toLowerCase().indexOf(wanted) >= 0) &&
          (!only || row.getAttribute("data-outcome") === only);
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      count.textContent = shown + " of " + rows.length + " sites shown";
    };
    apply();
    text.addEventListener("input", apply);
    outcome.addEventListener("change", apply);
    tools.hidden = false;
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = header.textContent;
      header.textContent = "";
      header.appendChild(button);
      button.addEventListener("click", function () {
        var ascending = header.getAttribute("aria-sort") !== "ascending";
        var numeric = header.hasAttribute("data-numeric");
        Array.prototype.forEach.call(headers, function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var key = function (row) {
          var cell = row.cells[column];
          return cell.getAttribute("data-sort") || cell.textContent;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var order = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (details) {
      details.open = true;
    });
  });
})();

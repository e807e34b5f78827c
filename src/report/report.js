// Progressive enhancement only: without it the page shows the site table's first page
// (summary.csv has every site). Renders the site table in pages from the page's data block
// (#site-data), with a filter and sortable columns, and opens every <details> before printing.
// Rows are built with DOM calls and textContent only: nothing from the data becomes markup.
(function () {
  "use strict";
  var table = document.getElementById("site-table");
  var source = document.getElementById("site-data");
  if (table && source && table.tBodies.length) {
    var data = JSON.parse(source.textContent);
    var sites = data.sites;
    var outcomes = data.outcomes;
    var body = table.tBodies[0];
    var text = document.getElementById("site-filter");
    var outcome = document.getElementById("outcome-filter");
    var count = document.getElementById("site-count");
    var pager = document.getElementById("site-pager");
    var previous = document.getElementById("page-prev");
    var next = document.getElementById("page-next");
    var label = document.getElementById("page-label");
    var more = document.getElementById("site-more");
    // Fields of a site (see site_table.rs): 0 site, 1 shard, 2 product, 3 outcome, 4 stage,
    // 5 failed, 6 warned, 7 milliseconds, 8 duration, 9 message, 10 job, 11 task.
    var haystacks = [];
    var haystack = function (index) {
      if (haystacks[index] === undefined) {
        var s = sites[index];
        haystacks[index] = [s[0], s[1], s[2], outcomes[s[3]][0], s[4], data.messages[s[9]],
          s[10], s[11]].join("\n").toLowerCase();
      }
      return haystacks[index];
    };
    // Sort keys per column, in header order.
    var keys = [function (s) { return s[0]; }];
    if (data.sharded) { keys.push(function (s) { return s[1]; }); }
    keys.push(
      function (s) { return s[2]; },
      function (s) { return outcomes[s[3]][2]; },
      function (s) { return s[4]; },
      function (s) { return s[5]; },
      function (s) { return s[6]; },
      function (s) { return s[7]; },
      function (s) { return data.messages[s[9]]; },
      function (s) { return s[10] + " " + s[11]; }
    );
    var order = sites.map(function (_, index) { return index; });
    var shown = order;
    var page = 0;
    var add = function (parent, tag, className, content) {
      var node = document.createElement(tag);
      if (className) { node.className = className; }
      if (content !== undefined) { node.textContent = content; }
      parent.appendChild(node);
      return node;
    };
    var number = function (tr, value) {
      add(tr, "td", value === 0 ? "num zero" : "num", String(value));
    };
    // The same markup as site_table.rs's `row`.
    var row = function (s) {
      var tr = document.createElement("tr");
      var word = outcomes[s[3]];
      tr.setAttribute("data-outcome", word[0]);
      var th = add(tr, "th");
      th.setAttribute("scope", "row");
      add(th, "a", "", s[0]).setAttribute("href", "sites/" + s[0] + ".json");
      if (data.sharded) { add(tr, "td", "", s[1]); }
      add(tr, "td", "", s[2]);
      add(add(tr, "td"), "span", "badge " + word[1], word[0]);
      add(tr, "td", "", s[4]);
      number(tr, s[5]);
      number(tr, s[6]);
      add(tr, "td", "num", s[8]);
      add(tr, "td", "msg", data.messages[s[9]]);
      var ids = add(tr, "td", "ids");
      [["job", s[10]], ["task", s[11]]].forEach(function (id) {
        if (!id[1]) { return; }
        if (ids.firstChild) { add(ids, "br"); }
        add(ids, "b", "", id[0]);
        ids.appendChild(document.createTextNode(" "));
        add(ids, "code", "", id[1]).setAttribute("title", id[1]);
      });
      return tr;
    };
    var pages = function () { return Math.max(1, Math.ceil(shown.length / data.page)); };
    var render = function () {
      page = Math.min(page, pages() - 1);
      var rows = document.createDocumentFragment();
      shown.slice(page * data.page, (page + 1) * data.page).forEach(function (index) {
        rows.appendChild(row(sites[index]));
      });
      body.textContent = "";
      body.appendChild(rows);
      count.textContent = shown.length + " of " + sites.length + " sites shown";
      pager.hidden = pages() < 2;
      var first = shown.length ? page * data.page + 1 : 0;
      var last = Math.min(shown.length, (page + 1) * data.page);
      label.textContent = "Page " + (page + 1) + " of " + pages() + " (" + first + "–" + last + ")";
      previous.disabled = page === 0;
      next.disabled = page >= pages() - 1;
    };
    var apply = function () {
      var wanted = text.value.trim().toLowerCase();
      var only = outcome.value;
      shown = order.filter(function (index) {
        return (!only || outcomes[sites[index][3]][0] === only) &&
          (!wanted || haystack(index).indexOf(wanted) >= 0);
      });
      page = 0;
      render();
    };
    text.addEventListener("input", apply);
    outcome.addEventListener("change", apply);
    previous.addEventListener("click", function () { page -= 1; render(); });
    next.addEventListener("click", function () { page += 1; render(); });
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
        var key = keys[column];
        order = order.slice().sort(function (a, b) {
          var x = key(sites[a]), y = key(sites[b]);
          var by = numeric ? x - y : String(x).localeCompare(String(y));
          return ascending ? by : -by;
        });
        apply();
      });
    });
    if (more) { more.hidden = true; }
    document.getElementById("site-tools").hidden = false;
    apply();
  }
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (details) {
      details.open = true;
    });
  });
})();

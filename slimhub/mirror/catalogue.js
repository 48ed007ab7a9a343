// The catalogue pages' behaviour, inlined into every page so that they work
// from file:// as well as served, without fetching anything.
(function () {
  "use strict";

  // index.html: filter box and sortable columns.
  var table = document.getElementById("modules");
  if (table) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var filter = document.getElementById("filter");
    var count = document.getElementById("count");
    var show = function () {
      var terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row) {
        var text = row.textContent.toLowerCase();
        var match = terms.every(function (term) {
          return text.indexOf(term) !== -1;
        });
        row.hidden = !match;
        shown += match ? 1 : 0;
      });
      count.textContent = shown + " of " + rows.length + " modules";
    };
    var sortKey = function (row, index, numeric) {
      var cell = row.cells[index];
      var value = cell.getAttribute("data-value") || cell.textContent;
      return numeric ? parseFloat(value) : value.toLowerCase();
    };
    var sortBy = function (header, index) {
      var numeric = header.getAttribute("data-type") === "number";
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(header.parentNode.cells, function (cell) {
        cell.removeAttribute("aria-sort");
      });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = sortKey(a, index, numeric), y = sortKey(b, index, numeric);
        var order = x < y ? -1 : (x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    };
    Array.prototype.forEach.call(table.tHead.rows[0].cells,
                                 function (header, index) {
      header.querySelector("button").addEventListener("click", function () {
        sortBy(header, index);
      });
    });
    filter.addEventListener("input", show);
    show();
  }

  // Module pages: the hub.load line names the server the page came from,
  // unless slimhub-mirror was told the mirror's URL.
  var line = document.getElementById("mirror-line");
  if (line && !line.hasAttribute("data-fixed") &&
      /^https?:$/.test(window.location.protocol)) {
    var root = new URL(line.getAttribute("data-root"), window.location.href);
    line.textContent = 'hub.load("' + root.href +
        line.getAttribute("data-path") + '")';
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"),
                               function (button) {
    button.addEventListener("click", function () {
      var code = document.getElementById(button.getAttribute("data-for"));
      var select = function () {
        window.getSelection().selectAllChildren(code);
        button.textContent = "Selected: press Ctrl+C";
      };
      if (!navigator.clipboard) {
        select();
        return;
      }
      navigator.clipboard.writeText(code.textContent).then(function () {
        button.textContent = "Copied";
      }, select);
    });
  });
})();

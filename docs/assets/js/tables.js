// Sortable and filterable tables: <table class="snn-sortable"> and <input class="snn-filter" data-table="ID">.
function snnTables() {
  document.querySelectorAll("table.snn-sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      th.style.cursor = "pointer";
      th.title = "Sort by this column";
      th.onclick = function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.dataset.order !== "asc";
        table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
        th.dataset.order = asc ? "asc" : "desc";
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
          var nx = parseFloat(x), ny = parseFloat(y);
          var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      };
    });
  });
  document.querySelectorAll("input.snn-filter").forEach(function (input) {
    var table = document.getElementById(input.dataset.table);
    if (!table) return;
    input.oninput = function () {
      var q = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var t = r.textContent.toLowerCase();
        r.style.display = q.every(function (w) { return t.indexOf(w) >= 0; }) ? "" : "none";
      });
    };
  });
}
if (typeof document$ !== "undefined") { document$.subscribe(snnTables); }
else { document.addEventListener("DOMContentLoaded", snnTables); }

// dirsync status page: refreshes the figures from /api/pairs and posts the
// buttons' actions. Text from the server is only ever set as textContent.
"use strict";
(function () {
  var note = document.getElementById("note");
  function cell(row, f) { return row.querySelector('[data-f="' + f + '"]'); }
  function set(row, f, text) { var c = cell(row, f); if (c) { c.textContent = text; } }
  function render(data) {
    var rows = document.querySelectorAll("tr.pair");
    var details = document.querySelectorAll("tr.detail");
    if (rows.length !== data.pairs.length) { location.reload(); return; }
    data.pairs.forEach(function (p, i) {
      var row = rows[i];
      if (row.getAttribute("data-pair") !== p.name) { location.reload(); return; }
      var st = cell(row, "state");
      st.textContent = p.state;
      st.className = "state st-" + p.state;
      set(row, "last_sync", p.last_sync || "never");
      set(row, "last_success", p.last_success || "never");
      set(row, "lag_ms", p.lag_ms + " ms");
      ["queue", "files", "bytes", "errors", "conflicts"].forEach(function (f) { set(row, f, String(p[f])); });
      set(details[i], "error", p.error || "");
      details[i].hidden = !p.error && !(p.recent_conflicts || []).length;
      var ul = cell(details[i], "recent_conflicts");
      while (ul.firstChild) { ul.removeChild(ul.firstChild); }
      (p.recent_conflicts || []).forEach(function (c) {
        var li = document.createElement("li");
        li.textContent = "conflict at " + c.at + ": " + c.path + " (source " + c.sides[0].size +
          " bytes, " + (c.sides[0].mtime || "never") + "; destination " + c.sides[1].size +
          " bytes, " + (c.sides[1].mtime || "never") + "), other version kept as " + c.copy;
        ul.appendChild(li);
      });
    });
  }
  function refresh() {
    return fetch("/api/pairs", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(render)
      .catch(function (e) { note.textContent = "refresh failed: " + e.message; });
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) { return; }
    var name = b.getAttribute("data-pair"), action = b.getAttribute("data-action");
    b.disabled = true;
    note.textContent = action + " " + name + "...";
    fetch("/api/pairs/" + encodeURIComponent(name) + "/" + action,
      { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return [r, j]; }); })
      .then(function (rj) {
        var r = rj[0], j = rj[1];
        note.textContent = r.ok ? action + " " + name + ": done" + ("exit" in j ? " (exit " + j.exit + ")" : "")
          : action + " " + name + ": " + (j.error || ("HTTP " + r.status));
      })
      .catch(function (e) { note.textContent = action + " " + name + ": " + e.message; })
      .then(function () { b.disabled = false; return refresh(); });
  });
  setInterval(refresh, 2000);
})();

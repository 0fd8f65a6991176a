"""The report's stylesheet and script, written to ``assets/`` of every report.

Kept as Python strings so they travel with the package however it is installed. The script only
ever sets text with ``textContent`` and attributes with properties: no ``innerHTML`` anywhere, so
a key like ``<script>alert(1)</script>.jpg`` stays text on the index too.
"""

from __future__ import annotations

CSS = """
:root { --ok: #1b7f3b; --partial: #b26a00; --failed: #b3261e; --ink: #1d1d1f; --muted: #5f6368; --line: #dadce0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0;
       padding: 0 24px 40px; max-width: 1200px; }
h1 { font-size: 22px; margin: 16px 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; color: var(--muted); }
code { font-size: 12px; word-break: break-all; }
.meta { color: var(--muted); margin: 4px 0; }
.synthetic-banner { background: #fff4ce; border: 1px solid #e0b400; padding: 8px 12px; margin: 0 -24px 8px;
                    font-weight: 500; }
.counts { display: flex; gap: 12px; flex-wrap: wrap; }
.count { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.count-n { font-size: 22px; font-weight: 600; display: block; }
.status { font-weight: 600; font-size: 12px; padding: 1px 6px; border-radius: 4px; background: #eee;
          white-space: nowrap; }
.status-SUCCEEDED { color: var(--ok); } .status-PARTIAL { color: var(--partial); } .status-FAILED { color: var(--failed); }
.filters { display: flex; gap: 8px; margin: 8px 0; align-items: center; flex-wrap: wrap; }
.filters input { width: 320px; padding: 6px 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: 5px 8px; vertical-align: top; }
td { word-break: break-word; } td.num { white-space: nowrap; text-align: right; }
.pager { margin: 8px 0; display: flex; gap: 8px; align-items: center; }
.frame { position: relative; display: block; margin: 8px 0; line-height: 0; width: 640px; max-width: 100%; }
.frame img { display: block; width: 100%; height: auto; image-rendering: auto; }
.frame .blank { width: 100%; aspect-ratio: 4 / 3; background: repeating-linear-gradient(45deg,
                #f1f3f4, #f1f3f4 10px, #e8eaed 10px, #e8eaed 20px); }
.box { position: absolute; border: 2px solid #1a73e8; line-height: 1.2; }
.box-label { position: absolute; left: -2px; top: -18px; background: #1a73e8; color: #fff; font-size: 11px;
             padding: 1px 4px; white-space: nowrap; }
.kind-face { border-color: #e8710a; } .kind-face .box-label { background: #e8710a; }
.kind-text { border-color: #9334e6; } .kind-text .box-label { background: #9334e6; }
.kind-celebrity { border-color: #d01884; } .kind-celebrity .box-label { background: #d01884; }
.kind-ppe, .kind-person { border-color: #188038; } .kind-ppe .box-label, .kind-person .box-label { background: #188038; }
.frame.hide-face .kind-face, .frame.hide-label .kind-label, .frame.hide-text .kind-text,
.frame.hide-celebrity .kind-celebrity, .frame.hide-ppe .kind-ppe, .frame.hide-person .kind-person,
.frame.hide-face_search .kind-face_search, .frame.hide-custom .kind-custom { display: none; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; } .legend-item { border: 0; }
.timeline { position: relative; margin-top: 8px; }
.axis { position: relative; height: 18px; margin-left: 220px; border-bottom: 1px solid var(--line); }
.tick { position: absolute; font-size: 10px; color: var(--muted); transform: translateX(-50%); }
.track { display: flex; align-items: center; height: 20px; }
.track.hidden { display: none; }
.track-name { width: 220px; flex: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
              padding-right: 8px; font-size: 12px; }
.track-bars { position: relative; flex: 1; height: 12px; background: #f1f3f4; }
.bar { position: absolute; top: 0; bottom: 0; background: #1a73e8; min-width: 2px; }
.track-group[data-group="Moderation"] .bar { background: var(--failed); }
.track-group[data-group="Segments"] .bar { background: #188038; border-right: 1px solid #fff; }
.track-group[data-group="Text"] .bar { background: #9334e6; }
.track-group[data-group="Faces"] .bar, .track-group[data-group="People"] .bar { background: #e8710a; }
.count-series { display: flex; align-items: flex-end; margin: 6px 0; }
.histogram { flex: 1; display: flex; align-items: flex-end; height: 48px; gap: 1px; background: #f8f9fa; }
.bin { flex: 1; background: #e8710a; min-height: 0; }
.crumbs { margin-top: 12px; }
"""

JS = r"""
(function () {
  "use strict";
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function pager(nav, page, pages, total, onGo) {
    nav.replaceChildren();
    var prev = el("button", "Previous"); prev.type = "button"; prev.disabled = page <= 0;
    prev.onclick = function () { onGo(page - 1); };
    var next = el("button", "Next"); next.type = "button"; next.disabled = page >= pages - 1;
    next.onclick = function () { onGo(page + 1); };
    nav.append(prev, el("span", "Page " + (pages ? page + 1 : 0) + " of " + pages + " (" + total + ")", "page-of"),
               next);
  }
  function href(id) { return "objects/" + id.slice(0, 2) + "/" + id + ".html"; }
  function link(row, q) {
    var a = el("a", row[1]); a.className = "object-link";
    a.href = href(row[0]) + (q && row[3] === "v" ? "#label=" + encodeURIComponent(q) : "");
    return a;
  }

  function index(data) {
    var labels = data.labels, lower = labels.map(function (l) { return l.toLowerCase(); });
    var rows = data.objects, size = Number(document.getElementById("pager").dataset.pageSize) || 100;
    var search = document.getElementById("search"), status = document.getElementById("status-filter");
    var media = document.getElementById("media-filter"), tbody = document.getElementById("objects");
    var state = { page: 0, attention: 0 };
    var attention = rows.filter(function (r) { return r[4] === "FAILED" || r[4] === "PARTIAL"; });
    function matches(row, q) {
      if (status.value && row[4] !== status.value) return false;
      if (media.value && row[3] !== media.value.charAt(0)) return false;
      if (!q) return true;
      if (row[1].toLowerCase().indexOf(q) >= 0) return true;
      for (var i = 0; i < row[5].length; i++) if (lower[row[5][i]].indexOf(q) >= 0) return true;
      return false;
    }
    function render() {
      var q = search.value.trim().toLowerCase();
      var found = rows.filter(function (r) { return matches(r, q); });
      var pages = Math.ceil(found.length / size);
      state.page = Math.max(0, Math.min(state.page, pages - 1));
      var shown = found.slice(state.page * size, (state.page + 1) * size);
      tbody.replaceChildren.apply(tbody, shown.map(function (r) {
        var tr = el("tr"); tr.className = "object-row"; tr.dataset.status = r[4];
        var key = el("td"); key.append(link(r, q));
        if (r[7]) key.append(el("span", " · version " + r[7], "meta"));  // only where a key has several versions
        var st = el("td"); st.append(el("span", r[4], "status status-" + r[4]));
        tr.append(key, el("td", r[3] === "v" ? "video" : "image"), st,
                  el("td", r[5].slice(0, 8).map(function (i) { return labels[i]; }).join(", "), "labels"),
                  el("td", r[6], "error"));
        return tr;
      }));
      document.getElementById("matches").textContent = found.length + " of " + rows.length + " objects";
      pager(document.getElementById("pager"), state.page, pages, found.length,
            function (p) { state.page = p; render(); });
    }
    function renderAttention() {
      var body = document.getElementById("attention-rows"), pageSize = 50;
      var pages = Math.ceil(attention.length / pageSize);
      var shown = attention.slice(state.attention * pageSize, (state.attention + 1) * pageSize);
      if (!attention.length) {
        var tr = el("tr"); var td = el("td", "None: every object succeeded."); td.colSpan = 3; tr.append(td);
        body.replaceChildren(tr);
      } else {
        body.replaceChildren.apply(body, shown.map(function (r) {
          var tr = el("tr"); tr.className = "attention-row";
          var key = el("td"); key.append(link(r));
          var st = el("td"); st.append(el("span", r[4], "status status-" + r[4]));
          tr.append(key, st, el("td", r[6], "error"));
          return tr;
        }));
      }
      pager(document.getElementById("attention-pager"), state.attention, pages, attention.length,
            function (p) { state.attention = p; renderAttention(); });
    }
    // The search lives in the URL's fragment (index.html#q=dog&status=FAILED), so a view can be shared or bookmarked.
    var wanted = new URLSearchParams(location.hash.slice(1));
    search.value = wanted.get("q") || "";
    status.value = wanted.get("status") || "";
    media.value = wanted.get("media") || "";
    function remember() {
      var params = new URLSearchParams();
      if (search.value) params.set("q", search.value);
      if (status.value) params.set("status", status.value);
      if (media.value) params.set("media", media.value);
      try { location.replace("#" + params.toString()); } catch (e) { /* a sandboxed frame: keep going */ }
    }
    var timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer); timer = setTimeout(function () { state.page = 0; remember(); render(); }, 120);
    });
    status.addEventListener("change", function () { state.page = 0; remember(); render(); });
    media.addEventListener("change", function () { state.page = 0; remember(); render(); });
    Array.prototype.forEach.call(document.querySelectorAll(".count[data-status]"), function (node) {
      node.addEventListener("click", function () {
        status.value = node.dataset.status; state.page = 0; remember(); render();
      });
    });
    render(); renderAttention();
    // Milliseconds from navigation until the first page of rows is drawn (read by bench/html_report.py).
    document.body.dataset.readyMs = String(Math.round(performance.now()));
  }

  function objectPage() {
    var frame = document.getElementById("frame");
    Array.prototype.forEach.call(document.querySelectorAll("[data-toggle-kind]"), function (box) {
      box.addEventListener("change", function () { frame.classList.toggle("hide-" + box.dataset.toggleKind, !box.checked); });
    });
    var filter = document.getElementById("label-filter");
    if (filter) {
      var tracks = document.querySelectorAll(".track");
      var apply = function () {
        var q = filter.value.trim().toLowerCase(), shown = 0;
        Array.prototype.forEach.call(tracks, function (t) {
          var hit = !q || t.dataset.name.toLowerCase().indexOf(q) >= 0;
          t.classList.toggle("hidden", !hit); if (hit) shown++;
        });
        document.getElementById("filter-matches").textContent = q ? shown + " of " + tracks.length + " rows" : "";
      };
      filter.addEventListener("input", apply);
      // A search on the index opens a video filtered on it (objects/..html#label=dog).
      filter.value = new URLSearchParams(location.hash.slice(1)).get("label") || "";
      if (filter.value) apply();
    }
    document.body.dataset.readyMs = String(Math.round(performance.now()));
  }

  if (window.REKPIPE_INDEX && document.getElementById("objects")) index(window.REKPIPE_INDEX);
  else objectPage();
})();
"""

__all__ = ["CSS", "JS"]

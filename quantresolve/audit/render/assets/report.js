/* quantresolve audit report: filters, sorting and a virtualised module table over the embedded data.
 * No network, no dependencies. The view state lives in the URL hash (#q=..&kind=..&scheme=..&rule=..
 * &finding=..&sort=..), so a filtered view can be linked; see quantresolve/audit/render/html.py. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("qr-data").textContent);
  var M = D.m, DICT = D.d, GROUPS = D.g, N = M.p.length;
  var ROW_H = 24, OVERSCAN = 12;
  var SEV = { error: 0, warning: 1, info: 2 };
  var SYMBOL = { error: "\u2716", warning: "\u25B2", info: "\u2139" };

  // ---- names (front-coded) and per-row findings ----
  var names = new Array(N), lower = null, prev = "";
  for (var i = 0; i < N; i++) { prev = prev.slice(0, M.p[i]) + M.s[i]; names[i] = prev; }
  var rowGroups = new Array(N);
  GROUPS.forEach(function (g, gi) {
    g.u.forEach(function (r) { (rowGroups[r] || (rowGroups[r] = [])).push(gi); });
  });
  function worst(r) {
    var gs = rowGroups[r]; if (!gs) return 3;
    var w = 3; gs.forEach(function (gi) { w = Math.min(w, SEV[GROUPS[gi].s]); }); return w;
  }

  // ---- pattern expansion (the grammar of quantresolve/audit/pattern.py) ----
  var RANGE = /(0|[1-9][0-9]*)\.\.(0|[1-9][0-9]*)(?=[,}])/y;
  function expand(p) {
    var pos = 0;
    function seq(stops) {
      var out = [""], lit = "";
      while (pos < p.length && stops.indexOf(p[pos]) < 0) {
        var c = p[pos];
        if (c === "\\") { lit += p[pos + 1]; pos += 2; }
        else if (c === "{") {
          var head = lit; lit = ""; pos++;
          var g = group(), next = [];
          out.forEach(function (o) { g.forEach(function (x) { next.push(o + head + x); }); });
          out = next;
        } else { lit += c; pos++; }
      }
      return out.map(function (o) { return o + lit; });
    }
    function group() {
      var out = [];
      for (;;) {
        RANGE.lastIndex = pos;
        var m = RANGE.exec(p);
        if (m) {
          for (var k = +m[1]; k <= +m[2]; k++) out.push(String(k));
          pos = RANGE.lastIndex;
        } else { seq(",}").forEach(function (x) { out.push(x); }); }
        var c = p[pos]; pos++;
        if (c === "}") return out;
        if (c !== ",") throw new Error("malformed pattern");
      }
    }
    return seq("");
  }
  var INT = /^(0|[1-9][0-9]{0,17})$/;
  function naturalCompare(a, b) {
    var x = a.split("."), y = b.split(".");
    for (var k = 0; k < Math.min(x.length, y.length); k++) {
      var xi = INT.test(x[k]), yi = INT.test(y[k]);
      if (xi !== yi) return xi ? -1 : 1;
      if (xi && x[k].length !== y[k].length) return x[k].length - y[k].length;
      if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
    }
    return x.length - y.length;
  }

  // ---- formatting ----
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function humanCount(n) {
    if (n === null || n === undefined) return "?";
    if (n >= 1e9) return (n / 1e9).toFixed(1) + "B";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return String(n);
  }
  function humanBytes(n) {
    if (n === null || n === undefined) return "?";
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], v = n;
    for (var k = 0; k < units.length; k++) {
      if (v < 1024 || k === units.length - 1) return k === 0 ? v.toFixed(0) + " B" : v.toFixed(1) + " " + units[k];
      v /= 1024;
    }
  }
  var COLOURS = JSON.parse(document.getElementById("qr-colours").textContent);
  function swatch(label) {
    var c = COLOURS[label] || ["#9e9e9e", "#000"];
    return '<i class="sw" style="background:' + c[0] + '"></i>';
  }

  // ---- columns of the module table ----
  function dictRank(table) {
    var order = table.map(function (s, k) { return k; }).sort(function (a, b) {
      return table[a] < table[b] ? -1 : table[a] > table[b] ? 1 : 0;
    });
    var rank = new Array(table.length); order.forEach(function (k, pos) { rank[k] = pos; }); return rank;
  }
  function textCol(col, table) {
    var rank = null;
    return { key: function (r) { return (rank || (rank = dictRank(table)))[col[r]]; },
             text: function (r) { return table[col[r]]; } };
  }
  var COLS = {
    name: { key: function (r) { return r; } },
    kind: textCol(M.k, DICT.kind), scheme: textCol(M.a, DICT.label), rule: textCol(M.r, DICT.rule),
    source: textCol(M.c, DICT.source), format: textCol(M.f, DICT.format),
    params: { key: function (r) { return M.n[r] === null ? -1 : M.n[r]; } },
    bytes: { key: function (r) { return M.b[r] === null ? -1 : M.b[r]; } },
    findings: { key: function (r) { return worst(r) * 1e6 - (rowGroups[r] ? rowGroups[r].length : 0); } }
  };

  // ---- state <-> URL hash ----
  var KEYS = ["q", "kind", "scheme", "rule", "finding", "sort"];
  var state = {};
  function readHash() {
    var s = {}; KEYS.forEach(function (k) { s[k] = ""; });
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var at = kv.indexOf("="); if (at < 0) return;
      var k = decodeURIComponent(kv.slice(0, at)), v = decodeURIComponent(kv.slice(at + 1));
      if (KEYS.indexOf(k) >= 0) s[k] = v;
    });
    return s;
  }
  function writeHash() {
    var parts = [];
    KEYS.forEach(function (k) { if (state[k]) parts.push(k + "=" + encodeURIComponent(state[k])); });
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
  }

  // ---- filtering and sorting ----
  function matcher(q) {
    q = q.trim();
    if (!q) return null;
    if (q.charAt(0) === "=") { var exact = q.slice(1); return function (r) { return names[r] === exact; }; }
    var rx;
    if (q.slice(0, 3) === "re:") {
      try { rx = new RegExp(q.slice(3)); } catch (e) { return function () { return false; }; }
      return function (r) { return rx.test(names[r]); };
    }
    if (/[*?]/.test(q)) {
      rx = new RegExp("^" + q.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
      return function (r) { return rx.test(names[r]); };
    }
    var l = q.toLowerCase();
    if (!lower) lower = names.map(function (s) { return s.toLowerCase(); });
    return function (r) { return lower[r].indexOf(l) >= 0; };
  }
  function dictFilter(col, table, value) {
    if (!value) return null;
    var k = table.indexOf(value);
    return function (r) { return col[r] === k; };
  }
  function findingFilter(value) {
    if (!value) return null;
    if (value === "any") return function (r) { return !!rowGroups[r]; };
    if (value === "none") return function (r) { return !rowGroups[r]; };
    if (value in SEV) {
      return function (r) { return (rowGroups[r] || []).some(function (gi) { return GROUPS[gi].s === value; }); };
    }
    var gi = +value.slice(1), rows = {};
    (GROUPS[gi] ? GROUPS[gi].u : []).forEach(function (r) { rows[r] = true; });
    return function (r) { return rows[r] === true; };
  }
  var view = [];
  function computeView() {
    var tests = [matcher(state.q), dictFilter(M.k, DICT.kind, state.kind), dictFilter(M.a, DICT.label, state.scheme),
                 dictFilter(M.r, DICT.rule, state.rule), findingFilter(state.finding)].filter(Boolean);
    view = [];
    for (var r = 0; r < N; r++) {
      var ok = true;
      for (var t = 0; t < tests.length && ok; t++) ok = tests[t](r);
      if (ok) view.push(r);
    }
    var sort = state.sort || "name", desc = sort.charAt(0) === "-", col = COLS[sort.replace(/^-/, "")] || COLS.name;
    if (col !== COLS.name || desc) {
      var keys = new Map(); view.forEach(function (r) { keys.set(r, col.key(r)); });
      view.sort(function (a, b) { var d = keys.get(a) - keys.get(b); return (desc ? -d : d) || a - b; });
    }
  }

  // ---- rendering ----
  var wrap = document.getElementById("m-wrap"), body = document.getElementById("m-body");
  var table = document.getElementById("m-table"), status = document.getElementById("m-status");
  function cellFindings(r) {
    var gs = rowGroups[r]; if (!gs) return "";
    var count = { error: 0, warning: 0, info: 0 }, codes = [];
    gs.forEach(function (gi) { count[GROUPS[gi].s]++; codes.push(GROUPS[gi].c); });
    var parts = [];
    ["error", "warning", "info"].forEach(function (s) {
      if (count[s]) parts.push('<span class="sev-' + s + '">' + SYMBOL[s] + " " + count[s] + " " + s + "</span>");
    });
    return '<button type="button" class="row-findings" data-group="' + gs[0] + '" title="' + esc(codes.join(", ")) +
      '">' + parts.join(" ") + "</button>";
  }
  function rowHtml(r, pos) {
    var label = DICT.label[M.a[r]], scheme = DICT.scheme[M.x[r]];
    return '<tr aria-rowindex="' + (pos + 2) + '"><th scope="row" class="name" title="' + esc(names[r]) + '">' +
      esc(names[r]) + "</th><td>" + esc(DICT.kind[M.k[r]]) + '</td><td title="' + esc(scheme) + '">' + swatch(label) +
      esc(label) + "</td><td>" + esc(DICT.rule[M.r[r]]) + '</td><td class="src" title="' + esc(DICT.source[M.c[r]]) +
      '">' + esc(DICT.source[M.c[r]]) + "</td><td>" + esc(DICT.format[M.f[r]]) + '</td><td class="num">' +
      humanCount(M.n[r]) + '</td><td class="num">' + humanBytes(M.b[r]) + "</td><td>" + cellFindings(r) + "</td></tr>";
  }
  var drawn = [-1, -1, -1];
  function renderRows(force) {
    var top = wrap.scrollTop, height = wrap.clientHeight || 600;
    var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    var last = Math.min(view.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    if (!force && drawn[0] === first && drawn[1] === last && drawn[2] === view.length) return;
    drawn = [first, last, view.length];
    var html = ['<tr class="spacer" aria-hidden="true"><td colspan="9" style="height:' + first * ROW_H + 'px"></td></tr>'];
    for (var pos = first; pos < last; pos++) html.push(rowHtml(view[pos], pos));
    html.push('<tr class="spacer" aria-hidden="true"><td colspan="9" style="height:' + (view.length - last) * ROW_H +
      'px"></td></tr>');
    body.innerHTML = html.join("");
  }
  function renderHeaders() {
    var sort = state.sort || "name", desc = sort.charAt(0) === "-", id = sort.replace(/^-/, "");
    table.querySelectorAll("thead th[data-col]").forEach(function (th) {
      th.setAttribute("aria-sort", th.dataset.col === id ? (desc ? "descending" : "ascending") : "none");
    });
  }
  function fitHeight() {  // the scroll box: 70% of the window at most, no taller than its rows
    var head = table.tHead.offsetHeight || 30;
    wrap.style.height = Math.max(head + 2 * ROW_H, Math.min(window.innerHeight * 0.7, head + view.length * ROW_H + 2)) + "px";
  }
  function update(push) {
    computeView();
    fitHeight();
    table.setAttribute("aria-rowcount", String(view.length + 1));
    status.textContent = "showing " + view.length + " of " + N + " modules";
    renderHeaders();
    renderRows(true);
    if (push) writeHash();
  }

  // ---- controls ----
  var controls = { q: "f-q", kind: "f-kind", scheme: "f-scheme", rule: "f-rule", finding: "f-finding" };
  function fillSelect(id, values, labels) {
    var el = document.getElementById(id);
    values.forEach(function (v, k) {
      var o = document.createElement("option"); o.value = v; o.textContent = labels ? labels[k] : v; el.appendChild(o);
    });
  }
  function sortedValues(table) { return table.filter(function (s) { return s !== ""; }).sort(); }
  fillSelect("f-kind", sortedValues(DICT.kind));
  fillSelect("f-scheme", sortedValues(DICT.label));
  fillSelect("f-rule", sortedValues(DICT.rule));
  fillSelect("f-finding", ["any", "none", "error", "warning", "info"].concat(GROUPS.map(function (g, gi) { return "g" + gi; })),
    ["any finding", "no finding", SYMBOL.error + " any error", SYMBOL.warning + " any warning", SYMBOL.info + " any info"]
      .concat(GROUPS.map(function (g) {
        return SYMBOL[g.s] + " " + g.s + " \u00B7 " + g.c + (g.p ? " \u00B7 " + g.p : "") + " (" + g.n + ")";
      })));
  function syncControls() {
    Object.keys(controls).forEach(function (k) { document.getElementById(controls[k]).value = state[k] || ""; });
  }
  function setState(changes, scroll) {
    Object.keys(changes).forEach(function (k) { state[k] = changes[k]; });
    syncControls();
    update(true);
    if (scroll) {
      document.getElementById("modules").scrollIntoView();
      wrap.scrollTop = 0; renderRows(true); wrap.focus();
    }
  }
  var pending = null;
  Object.keys(controls).forEach(function (k) {
    var el = document.getElementById(controls[k]);
    el.addEventListener(k === "q" ? "input" : "change", function () {
      var change = {}; change[k] = el.value;
      if (k === "q") { clearTimeout(pending); pending = setTimeout(function () { setState(change); }, 120); }
      else setState(change);
    });
  });
  document.getElementById("f-clear").addEventListener("click", function () {
    setState({ q: "", kind: "", scheme: "", rule: "", finding: "" });
  });
  table.querySelectorAll("thead th[data-col] button").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var id = btn.parentNode.dataset.col, sort = state.sort || "name";
      setState({ sort: sort === id ? "-" + id : id });
    });
  });
  var ticking = false;
  wrap.addEventListener("scroll", function () {
    if (ticking) return; ticking = true;
    requestAnimationFrame(function () { ticking = false; renderRows(false); });
  });
  function showGroup(gi) {
    setState({ q: "", kind: "", scheme: "", rule: "", finding: "g" + gi }, true);
  }
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("button") : null;
    if (!t) return;
    if (t.classList.contains("show-group")) showGroup(+t.dataset.group);
    else if (t.classList.contains("row-findings")) {
      var row = document.getElementById("f-" + t.dataset.group);
      if (row) { row.scrollIntoView(); row.focus(); }
    } else if (t.classList.contains("cell")) setState({ q: t.dataset.q, kind: "", scheme: "", rule: "", finding: "" }, true);
    else if (t.classList.contains("all-members")) fillMembers(t.closest("details"), Infinity);
  });

  // ---- finding members, expanded from their pattern on demand ----
  var SHOWN = 500;
  function fillMembers(details, limit) {
    var list = details.querySelector("ol"), all = expand(details.dataset.pattern).sort(naturalCompare);
    var shown = all.slice(0, limit);
    list.innerHTML = shown.map(function (n) { return "<li><code>" + esc(n) + "</code></li>"; }).join("") +
      (all.length > shown.length ? '<li><button type="button" class="all-members">show all ' + all.length +
        "</button></li>" : "");
    details.dataset.filled = String(shown.length);
  }
  document.querySelectorAll("details.members").forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open && !d.dataset.filled) fillMembers(d, SHOWN); });
  });

  // ---- static tables (coverage, findings): sortable by their header buttons ----
  document.querySelectorAll("table.sortable").forEach(function (t) {
    t.querySelectorAll("thead th button").forEach(function (btn, col) {
      btn.addEventListener("click", function () {
        var th = btn.parentNode, asc = th.getAttribute("aria-sort") !== "ascending";
        t.querySelectorAll("thead th").forEach(function (h) { if (h.hasAttribute("aria-sort")) h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(t.tBodies[0].rows);
        function key(row) { var c = row.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; }
        var numeric = th.dataset.type === "num";
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), d = numeric ? +x - +y : (x < y ? -1 : x > y ? 1 : 0);
          return asc ? d : -d;
        });
        rows.forEach(function (row) { t.tBodies[0].appendChild(row); });
      });
    });
  });

  // ---- go ----
  state = readHash();
  syncControls();
  update(false);
  window.addEventListener("resize", function () { fitHeight(); renderRows(true); });
  window.addEventListener("hashchange", function () { state = readHash(); syncControls(); update(false); });
  document.body.dataset.renderMs = performance.now().toFixed(1);
  document.body.dataset.ready = "1";
  requestAnimationFrame(function () {
    setTimeout(function () { document.body.dataset.paintMs = performance.now().toFixed(1); }, 0);
  });
  window.quantresolveReport = { expand: expand, view: function () { return view.map(function (r) { return names[r]; }); } };
})();

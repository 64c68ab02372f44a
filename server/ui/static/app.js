// The scoreboard's few interactions: picking runs to compare, choosing columns, and the
// value read-out on charts. Pages work without it; it only adds to them.
(function () {
  "use strict";

  // Runs table: the Compare link follows the checked runs (2 to 10).
  function setupPicking() {
    var compare = document.getElementById("compare");
    if (!compare) return;
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input.pick"));
    function update() {
      var ids = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      var ok = ids.length >= 2 && ids.length <= 10;
      compare.setAttribute("aria-disabled", ok ? "false" : "true");
      compare.href = "/ui/compare?runs=" + ids.map(encodeURIComponent).join(",");
      compare.textContent = ids.length ? "Compare " + ids.length + " selected" : "Compare selected";
      compare.title = ok ? "" : "select 2 to 10 runs";
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    var all = document.getElementById("all");
    if (all) all.addEventListener("change", function () {
      boxes.forEach(function (b, i) { b.checked = all.checked && i < 10; });
      update();
    });
    update();
  }

  // Column chips: toggle a column in the Columns field and search again.
  function setupColumns() {
    var holder = document.querySelector(".chips");
    var input = document.getElementById("cols");
    if (!holder || !input) return;
    var current = (input.value || holder.getAttribute("data-current") || "").split(",")
      .map(function (s) { return s.trim(); }).filter(Boolean);
    holder.querySelectorAll(".chip").forEach(function (chip) {
      var col = chip.getAttribute("data-col");
      if (current.indexOf(col) >= 0) chip.classList.add("on");
      chip.addEventListener("click", function () {
        var i = current.indexOf(col);
        if (i >= 0) current.splice(i, 1); else current.push(col);
        input.value = current.join(",");
        document.getElementById("search").submit();
      });
    });
  }

  // Charts: a guide line and the values of each series at the nearest step.
  function nearest(points, x) {
    var lo = 0, hi = points.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (points[mid][0] < x) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(points[lo - 1][0] - x) <= Math.abs(points[lo][0] - x)) lo--;
    return points[lo];
  }
  function fmt(v) {
    if (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-4 && v !== 0)) return v.toExponential(4);
    return String(Math.round(v * 1e6) / 1e6);
  }
  function setupCharts() {
    document.querySelectorAll("svg.plot[data-series]").forEach(function (svg) {
      var series = JSON.parse(svg.getAttribute("data-series"));
      var d = function (k) { return parseFloat(svg.getAttribute("data-" + k)); };
      var x0 = d("x0"), x1 = d("x1"), pl = d("pl"), pr = d("pr"), pt = d("pt"), pb = d("pb");
      var vb = svg.viewBox.baseVal;
      var ns = "http://www.w3.org/2000/svg";
      var guide = document.createElementNS(ns, "line");
      guide.setAttribute("class", "guide");
      guide.setAttribute("y1", pt);
      guide.setAttribute("y2", vb.height - pb);
      guide.style.display = "none";
      svg.appendChild(guide);
      var tip = document.createElement("div");
      tip.className = "tip";
      tip.style.display = "none";
      svg.parentNode.appendChild(tip);
      svg.addEventListener("mousemove", function (ev) {
        var rect = svg.getBoundingClientRect();
        var vx = (ev.clientX - rect.left) / rect.width * vb.width;
        if (vx < pl || vx > vb.width - pr) { guide.style.display = tip.style.display = "none"; return; }
        var x = x0 + (vx - pl) / (vb.width - pl - pr) * (x1 - x0);
        var lines = [], at = null;
        series.forEach(function (s) {
          if (!s.p || !s.p.length) return;
          var p = nearest(s.p, x);
          if (at === null) at = p[0];
          lines.push(s.n + ": " + fmt(p[1]));
        });
        if (at === null) return;
        var gx = pl + (at - x0) / (x1 - x0) * (vb.width - pl - pr);
        guide.setAttribute("x1", gx);
        guide.setAttribute("x2", gx);
        guide.style.display = "";
        tip.textContent = "";
        [fmt(at)].concat(lines).forEach(function (t, i) {
          var div = document.createElement("div");
          div.textContent = i === 0 ? "x = " + t : t;
          tip.appendChild(div);
        });
        tip.style.display = "";
        tip.style.left = (ev.clientX - svg.parentNode.getBoundingClientRect().left + 12) + "px";
        tip.style.top = (ev.clientY - svg.parentNode.getBoundingClientRect().top + 12) + "px";
      });
      svg.addEventListener("mouseleave", function () { guide.style.display = tip.style.display = "none"; });
    });
  }

  // Compare page: hide the params every run shares.
  function setupDiff() {
    var box = document.getElementById("only-diff");
    if (!box) return;
    box.addEventListener("change", function () { document.body.classList.toggle("only-diff", box.checked); });
  }

  function init() {
    setupPicking();
    setupColumns();
    setupCharts();
    setupDiff();
    document.documentElement.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();

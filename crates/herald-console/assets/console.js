// herald console: the little the pages need beyond forms and htmx. No inline script or style
// is allowed (Content-Security-Policy: default-src 'self'), so everything hooks on data-*
// attributes here.
(function () {
  "use strict";

  // Forms with data-confirm ask before they are sent (cancel, recall).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  // A textarea with data-json="ID" is checked as JSON while it is typed; ID shows the problem.
  function checkJson(area) {
    var out = document.getElementById(area.getAttribute("data-json"));
    var text = area.value.trim();
    var problem = "";
    if (text !== "") {
      try { JSON.parse(text); } catch (err) { problem = "Not valid JSON: " + err.message; }
    }
    if (out) { out.textContent = problem; }
    if (problem) { area.setAttribute("aria-invalid", "true"); } else { area.removeAttribute("aria-invalid"); }
  }

  // Previews: a platform's own text when given, else the default one.
  function value(name) {
    var field = document.querySelector('[data-preview-source="' + name + '"]');
    return field ? field.value.trim() : "";
  }
  function updatePreviews() {
    ["ios", "android"].forEach(function (os) {
      ["title", "body"].forEach(function (part) {
        var target = document.querySelector('[data-preview="' + os + "-" + part + '"]');
        if (target) { target.textContent = value(os + "-" + part) || value(part); }
      });
    });
  }

  document.addEventListener("input", function (event) {
    var el = event.target;
    if (el.hasAttribute("data-json")) { checkJson(el); }
    if (el.hasAttribute("data-preview-source")) { updatePreviews(); }
  });

  // Charts: data-chart holds uPlot's data, [[unix seconds...], [series...]...].
  var charts = [];
  function drawCharts(root) {
    if (typeof window.uPlot === "undefined") { return; }
    charts = charts.filter(function (c) { return document.body.contains(c.root); });
    root.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var data;
      try { data = JSON.parse(el.getAttribute("data-chart")); } catch (err) { return; }
      var names = (el.getAttribute("data-series") || "").split(",");
      var colors = ["#2463eb", "#d97706", "#059669"];
      var series = [{}].concat(names.map(function (name, i) {
        return { label: name, stroke: colors[i % colors.length], width: 2 };
      }));
      el.textContent = "";
      var width = Math.max(240, el.clientWidth || 600);
      // One point (a push's first minute) would stretch the axis over years: pad it.
      var pad = el.getAttribute("data-unit") === "day" ? 86400 : 60;
      var range = function (u, min, max) { return min === max ? [min - pad, max + pad] : [min, max]; };
      var options = { width: width, height: 220, series: series, scales: { x: { time: true, range: range } } };
      var chart = new window.uPlot(options, data, el);
      charts.push(chart);
    });
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      var width = Math.max(240, c.root.parentNode ? c.root.parentNode.clientWidth : 600);
      c.setSize({ width: width, height: 220 });
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-json]").forEach(checkJson);
    updatePreviews();
    drawCharts(document);
  });
  // The report's live part is replaced every few seconds: draw its chart again.
  document.addEventListener("htmx:afterSettle", function (event) {
    drawCharts(event.target);
  });
})();

// Draws the overview's charts with the vendored ECharts from the same numbers as the tables.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  var charts = [];
  function draw(name, option) {
    var el = document.querySelector('[data-chart="' + name + '"]');
    if (!el || !data[name]) { return; }
    el.textContent = "";
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option(data[name]));
    charts.push(chart);
  }
  draw("growth", function (d) {
    return {
      tooltip: { trigger: "axis" }, legend: { top: 0 }, grid: { left: 40, right: 10, top: 30, bottom: 30 },
      xAxis: { type: "category", data: d.days }, yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: d.labels[0], type: "bar", data: d.adds },
        { name: d.labels[1], type: "bar", data: d.deletions },
        { name: d.labels[2], type: "line", data: d.net }
      ]
    };
  });
  draw("funnel", function (d) {
    return { tooltip: {}, series: [{ type: "funnel", sort: "none", left: "10%", width: "80%",
      label: { formatter: "{b}: {c}" }, data: d }] };
  });
  draw("layers", function (d) {
    return { tooltip: {}, series: [{ type: "pie", radius: ["35%", "70%"],
      label: { formatter: "{b}: {c}" }, data: d }] };
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();

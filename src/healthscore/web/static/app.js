// Draws every <canvas data-chart="..."> with the vendored Chart.js, on load and after htmx swaps.
(function () {
  var COLORS = ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a"];
  function draw(root) {
    if (!window.Chart) { return; }
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      canvas.dataset.drawn = "1";
      var spec = JSON.parse(canvas.dataset.chart);
      var datasets = spec.series.map(function (s, i) {
        return { label: s.label, data: s.data, borderColor: COLORS[i % 4], backgroundColor: COLORS[i % 4] + "99",
                 tension: 0.2, spanGaps: true, pointRadius: 2 };
      });
      var scales = { y: { beginAtZero: true } };
      if (spec.min !== undefined) { scales.y.min = spec.min; scales.y.max = spec.max; }
      new window.Chart(canvas, { type: spec.type, data: { labels: spec.labels, datasets: datasets },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales,
                   plugins: { legend: { display: datasets.length > 1 } } } });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
// A checkbox with data-select-all="NAME" ticks or clears every checkbox named NAME.
document.addEventListener("change", function (e) {
  var all = e.target.closest && e.target.closest("input[data-select-all]");
  if (!all) { return; }
  document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]').forEach(function (box) {
    box.checked = all.checked;
  });
});
// After a form inside a [data-focus-flash] block acted in place, focus goes to the field in
// error, else to the block's message, when the control that had it is gone (htmx keeps the
// focus of a field with an id).
document.addEventListener("htmx:afterSettle", function () {
  var block = document.querySelector("[data-focus-flash]");
  if (!block || (document.activeElement && document.activeElement !== document.body)) { return; }
  var flash = block.querySelector("[autofocus]") || block.querySelector(".flash") || block.querySelector("h1");
  if (!flash) { return; }
  if (!flash.matches("input, textarea, select")) { flash.setAttribute("tabindex", "-1"); }
  flash.focus({ preventScroll: true });
});
// A [data-expands] button loads its region (aria-controls) in place: once the region is
// swapped in, the button says it is expanded and focus goes to the region's focusable block.
document.addEventListener("htmx:afterSettle", function (e) {
  var region = e.target && e.target.closest && e.target.closest("[id]");
  var button = region && document.querySelector('[data-expands][aria-controls="' + region.id + '"]');
  if (!button) { return; }
  button.setAttribute("aria-expanded", "true");
  var block = region.querySelector("[tabindex='-1']");
  if (block) { block.focus({ preventScroll: true }); }
});
// Forms inside a [data-in-place] block (with an id) act in place: htmx swaps that block only,
// taken from the page the form's answer is, and keeps the scroll position; links in it still
// swap the whole page.
function actInPlace(root) {
  (root || document).querySelectorAll("[data-in-place] form").forEach(function (form) {
    if (form.hasAttribute("hx-target")) { return; }
    var id = "#" + form.closest("[data-in-place]").id;
    form.setAttribute("hx-target", id);
    form.setAttribute("hx-select", id);
    form.setAttribute("hx-swap", "outerHTML show:none");
  });
}
document.addEventListener("DOMContentLoaded", function () { actInPlace(document); });
document.addEventListener("htmx:load", function (e) { actInPlace(e.detail && e.detail.elt ? e.detail.elt.parentNode || document : document); });

// The admin web's one script (templates/web/admin/static/): the live preview of a bulletin's
// Markdown, and a bulletin's progress while it goes out. Every page works without it.
(function () {
  "use strict";

  function livePreview() {
    var source = document.getElementById("body");
    var shown = document.getElementById("live-preview");
    if (!source || !shown) { return; }
    var csrf = source.form.elements.csrf.value;
    var timer = null;
    function refresh() {
      fetch(shown.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams({ csrf: csrf, body: source.value }),
      }).then(function (answer) {
        return answer.ok ? answer.text() : Promise.reject(answer.status);
      }).then(function (html) {
        shown.innerHTML = html;  // markdown-it's output with raw HTML off (workers/markdown_html.py)
        shown.dataset.shown = source.value.length;
      }).catch(function () { /* the Preview button still works */ });
    }
    source.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    if (source.value) { refresh(); }
  }

  function progress() {
    var panel = document.getElementById("figures");
    if (!panel || panel.dataset.done === "true") { return; }
    var bar = document.getElementById("progress");
    var started = Date.now();
    function poll() {
      fetch(panel.dataset.url, { credentials: "same-origin" }).then(function (answer) {
        return answer.ok ? answer.json() : Promise.reject(answer.status);
      }).then(function (figures) {
        Object.keys(figures).forEach(function (name) {
          var cell = panel.querySelector('[data-figure="' + name + '"]');
          if (cell) { cell.textContent = figures[name] === null ? "" : figures[name]; }
          if (cell && name === "state") { cell.className = "state " + figures.state; }
        });
        if (bar) { bar.max = Math.max(1, figures.audience); bar.value = figures.written; }
        var done = figures.state === "published" && figures.waiting === 0;
        if (!done && Date.now() - started < 30 * 60 * 1000) { setTimeout(poll, 1000); }
      }).catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () { livePreview(); progress(); });
})();

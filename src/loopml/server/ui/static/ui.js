// loopml web UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // 1. Remember the browser's time zone, so the server writes times in it from the next
  //    page on; rewrite the times of this page now.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && document.cookie.indexOf("loopml_tz=" + encodeURIComponent(tz)) < 0) {
      document.cookie = "loopml_tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=strict";
    }
    var fmt = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", timeZoneName: "short"
    });
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = fmt.format(d); }
    });
    document.querySelectorAll("footer .tz").forEach(function (el) { el.textContent = tz; });
  } catch (e) { /* old browser: the server's UTC times stay */ }

  // 2. "Select all" boxes for the run tables, and enable Compare with two or more runs.
  document.querySelectorAll("form[data-compare]").forEach(function (form) {
    var boxes = form.querySelectorAll("input[type=checkbox][name=run]");
    var button = form.querySelector("button[type=submit]");
    function update() {
      var n = 0;
      boxes.forEach(function (b) { if (b.checked) { n += 1; } });
      if (button) {
        button.disabled = n < 2;
        button.textContent = n < 2 ? "Compare (select 2+)" : "Compare " + n + " runs";
      }
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  });
})();

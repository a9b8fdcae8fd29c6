// Times in the viewer's zone. Every time the server writes is a <time datetime="ISO"
// data-fmt="..."> element (the `when` filter); this rewrites its text in the viewer's
// zone: the agent's stored zone (body[data-tz]), else the browser's own. Pushed frames
// are rendered once for everyone, so they are rewritten here as they arrive.
// On an agent's first visit the browser's zone is stored on their profile.
(function () {
  "use strict";

  const MONTHS_SHORT = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const formatters = {};

  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }

  function zone() { return (document.body && document.body.dataset.tz) || browserZone() || "UTC"; }

  function parts(date, tz) {
    let f = formatters[tz];
    if (!f) {
      try {
        f = new Intl.DateTimeFormat("en-US", {
          timeZone: tz, year: "numeric", month: "numeric", day: "numeric",
          hour: "numeric", minute: "numeric", hourCycle: "h23",
        });
      } catch (e) {
        f = new Intl.DateTimeFormat("en-US", {
          timeZone: "UTC", year: "numeric", month: "numeric", day: "numeric",
          hour: "numeric", minute: "numeric", hourCycle: "h23",
        });
      }
      formatters[tz] = f;
    }
    const out = {};
    f.formatToParts(date).forEach(function (p) { out[p.type] = p.value; });
    const hour = Number(out.hour) % 24;  // some engines say 24 for midnight
    return {
      y: out.year, m: Number(out.month), d: Number(out.day),
      H: String(hour).padStart(2, "0"), i: String(out.minute).padStart(2, "0"),
    };
  }

  // The same strings as the server's formats (templatetags/console.py WHEN_FORMATS).
  function format(date, fmt, tz) {
    const p = parts(date, tz);
    if (fmt === "datetime") return MONTHS_SHORT[p.m - 1] + " " + p.d + ", " + p.H + ":" + p.i;
    if (fmt === "date") return p.d + " " + MONTHS[p.m - 1] + " " + p.y;
    if (fmt === "full") return p.y + "-" + String(p.m).padStart(2, "0") + "-" + String(p.d).padStart(2, "0") + " " + p.H + ":" + p.i;
    return p.H + ":" + p.i;
  }

  function localize(root) {
    const tz = zone();
    const scope = root && root.querySelectorAll ? root : document;
    const found = Array.from(scope.querySelectorAll("time[datetime][data-fmt]"));
    if (scope.matches && scope.matches("time[datetime][data-fmt]")) found.push(scope);
    found.forEach(function (el) {
      if (el.dataset.tz === tz) return;
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.textContent = format(date, el.dataset.fmt, tz);
      el.dataset.tz = tz;
      el.title = tz.replace(/_/g, " ");
    });
  }

  function storeDetectedZone() {
    const body = document.body;
    if (!body.dataset.tzUrl || body.dataset.tz) return;
    const tz = browserZone();
    if (!tz) return;
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    const data = new URLSearchParams({ time_zone: tz, detected: "1" });
    fetch(body.dataset.tzUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", "HX-Request": "true" },
    }).then(function (response) {
      if (response.status !== 204) return;
      body.dataset.tz = tz;
      const label = document.getElementById("tz-label");
      if (label) label.textContent = "(" + tz + ")";
      localize(document);
    }).catch(function () { /* tried again on the next page */ });
  }

  window.handoffTime = { zone: zone, format: format, localize: localize };

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    const shown = document.getElementById("browser-zone");
    if (shown) shown.textContent = browserZone() || "no zone";
    storeDetectedZone();
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        r.addedNodes.forEach(function (node) { if (node.nodeType === 1) localize(node); });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });
})();

// The agent's inbox on every console page: the unread badge in the navigation, the tab
// title count, alerts (sound, desktop notification, screen-reader announcement) for a
// customer message in a conversation the agent isn't looking at, read marks, and the
// keyboard shortcuts with their help dialog.
//
// Everything shown is server-rendered and autoescaped: the badge (#nav-unread) arrives
// as an out-of-band swap over the page's socket and carries the alert in data-
// attributes; this file reads them and only sets textContent.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  const alerted = new Set();  // "handoff:seq" already alerted on this page
  let queueCount = null;       // set by console.js on the queue page
  let baseTitle = null;

  // ---------------------------------------------------------------- the title
  function unreadCount() {
    const badge = $("#nav-unread");
    return badge ? Number(badge.dataset.count || 0) : 0;
  }

  function renderTitle() {
    if (baseTitle === null) baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
    const unread = unreadCount();
    let title;
    if (queueCount !== null) {  // the queue page: its waiting count, and the unread
      if (unread) {
        title = "(" + unread + ") Queue" + (queueCount ? " · " + queueCount + " waiting" : "") + " · Handoff console";
      } else {
        title = (queueCount ? "(" + queueCount + ") " : "") + "Queue · Handoff console";
      }
    } else {
      title = (unread ? "(" + unread + ") " : "") + baseTitle;
    }
    if (document.title !== title) document.title = title;
  }

  window.handoffAnnounce = function (text) { announce(text); };

  window.handoffTitle = {
    setQueue: function (n) { queueCount = n; renderTitle(); },
    render: renderTitle,
  };

  // ---------------------------------------------------------------- read marks
  function pageHandoff() {
    const page = $("[data-page=conversation][data-handoff]");
    return page && page.dataset.live === "1" ? page.dataset.handoff : null;
  }

  function lookingAt(handoffId) {
    return pageHandoff() === String(handoffId) && document.visibilityState === "visible";
  }

  function lastSeq() {
    const msgs = $all("#messages > .msg[data-seq]");
    return msgs.length ? Math.max.apply(null, msgs.map(function (m) { return Number(m.dataset.seq); })) : 0;
  }

  let readSent = 0;
  function markRead() {
    const handoff = pageHandoff();
    if (!handoff || document.visibilityState !== "visible") return;
    const seq = lastSeq();
    if (!seq || seq <= readSent) return;
    readSent = seq;
    const token = $("[name=csrfmiddlewaretoken]");
    fetch("/conversations/" + handoff + "/read", {
      method: "POST", credentials: "same-origin",
      body: new URLSearchParams({ seq: String(seq) }),
      headers: { "X-CSRFToken": token ? token.value : "", "HX-Request": "true" },
    }).catch(function () { readSent = 0; });
  }

  // ---------------------------------------------------------------- alerts
  function announce(text) {
    const region = $("#announcer");
    if (!region) return;
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 50);
  }

  function alertFor(badge) {
    const handoff = badge.dataset.alertHandoff;
    if (!handoff) return;
    const key = handoff + ":" + badge.dataset.alertSeq;
    if (alerted.has(key)) return;
    alerted.add(key);
    if (lookingAt(handoff)) { markRead(); return; }
    const who = badge.dataset.alertCustomer || "A customer";
    const text = badge.dataset.alertPreview || "";
    announce("New message from " + who + ": " + text);
    const alerts = window.handoffAlerts;
    if (!alerts || !alerts.enabled()) return;
    if (alerts.beep) alerts.beep();
    if (alerts.permission() === "granted") {
      try {
        const note = new Notification(who + " wrote", { body: text, tag: "conversation-" + handoff });
        note.onclick = function () { window.focus(); window.location.href = badge.dataset.alertUrl; };
      } catch (e) { /* notifications unavailable in this context */ }
    }
  }

  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    const text = evt.detail.message || "";
    if (text.indexOf('id="nav-unread"') >= 0) {
      const badge = $("#nav-unread");
      if (badge) alertFor(badge);
      renderTitle();
    }
    if (text.indexOf('id="inbox-rows"') >= 0) {
      const rows = $("#inbox-rows"), count = $("#inbox-count");
      if (rows && count) count.textContent = count.textContent.replace(/^\d+/, rows.dataset.count);
    }
    if (pageHandoff() && text.indexOf("msg-customer") >= 0) markRead();
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") markRead();
  });

  // ---------------------------------------------------------------- keyboard
  function typingIn(target) {
    if (!target || !target.closest) return false;
    return !!target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]");
  }

  function go(url) { window.location.href = url; }

  function step(delta) {
    const badge = $("#nav-unread");
    const order = badge && badge.dataset.order ? badge.dataset.order.split(" ") : [];
    if (!order.length) { go("/conversations/"); return; }
    const current = $("[data-page=conversation][data-handoff]");
    const here = current ? order.indexOf(current.dataset.handoff) : -1;
    let next = here < 0 ? (delta > 0 ? 0 : order.length - 1) : here + delta;
    next = (next + order.length) % order.length;
    go("/conversations/" + order[next] + "/");
  }

  function openHelp() {
    const dialog = $("#keys-help");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.defaultPrevented) return;
    if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey)) {
      const form = $("#composer");
      if (form) { evt.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typingIn(evt.target)) return;
    const dialog = $("#keys-help");
    if (dialog && dialog.open) return;
    let handled = true;
    switch (evt.key) {
      case "?": openHelp(); break;
      case "j": step(1); break;
      case "k": step(-1); break;
      case "i": go("/conversations/"); break;
      case "q": go("/"); break;
      case "r": {
        const box = $("#message-body");
        if (box) box.focus(); else handled = false;
        break;
      }
      case "l": {
        const list = $("#messages");
        if (list) list.focus(); else handled = false;
        break;
      }
      case "e": {
        const action = $("#ending-action");
        if (action) { action.focus(); } else handled = false;
        break;
      }
      default: handled = false;
    }
    if (handled) evt.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    const open = $("#keys-help-open");
    if (open) open.addEventListener("click", openHelp);
    renderTitle();
    markRead();
  });
})();

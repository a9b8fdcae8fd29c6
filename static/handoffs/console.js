// The console's small client: live indicator, queue ordering, timers and alerts.
// Everything shown comes from server-rendered, autoescaped HTML; this file only moves
// nodes and sets textContent.
(function () {
  "use strict";

  const RECONNECTING_CODES = [1006, 1011, 1012, 1013];
  let knownRows = null; // Set of row ids after the last message; null before the first
  let connectedOnce = false;
  let audio = null;

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  function setLive(state, text) {
    const el = $("#live");
    if (!el) return;
    el.className = "live " + state;
    el.textContent = text;
  }

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function tick() {
    const now = Date.now();
    $all(".timer[data-since]").forEach(function (el) {
      const since = Number(el.dataset.since);
      const waited = (now - since) / 1000;
      el.textContent = fmt(waited);
      const row = el.closest("[data-warn]");
      if (row) {
        const warn = Number(row.dataset.warn), breach = Number(row.dataset.breach);
        row.classList.toggle("is-warn", waited >= warn && waited < breach);
        row.classList.toggle("is-breach", waited >= breach);
      }
    });
  }

  function sortQueue(list) {
    const rows = $all(":scope > .qrow", list);
    const seen = new Set();
    rows.forEach(function (row) {            // a row delivered twice keeps its latest copy
      if (seen.has(row.id)) { row.remove(); } else { seen.add(row.id); }
    });
    const live = $all(":scope > .qrow", list);
    live.sort(function (a, b) {
      return (Number(b.dataset.urgency) - Number(a.dataset.urgency)) ||
             (Number(b.dataset.importance) - Number(a.dataset.importance)) ||
             (Number(a.dataset.created) - Number(b.dataset.created));
    });
    live.forEach(function (row) { list.appendChild(row); });
    return live;
  }

  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.type = "sine"; osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* audio blocked until the agent interacts; the title still counts */ }
  }

  function notify(row) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const excerpt = $(".excerpt", row);
    new Notification("New escalation: " + (row.dataset.customer || ""), {
      body: excerpt ? excerpt.textContent : "", tag: row.id,
    });
  }

  function refreshQueue(isSnapshot) {
    const list = $("#queue-rows");
    if (!list) return;
    const rows = sortQueue(list);
    const ids = new Set(rows.map(function (r) { return r.id; }));
    const count = $("#queue-count");
    if (count) count.textContent = String(rows.length);
    const empty = $("#queue-empty");
    if (empty) empty.hidden = rows.length > 0;
    document.title = (rows.length ? "(" + rows.length + ") " : "") + "Queue · Handoff console";
    if (knownRows !== null) {
      const added = rows.filter(function (r) { return !knownRows.has(r.id); });
      const gone = Array.from(knownRows).filter(function (id) { return !ids.has(id); });
      if (isSnapshot) {
        const note = $("#resync-note");
        if (note && (added.length || gone.length)) {
          note.textContent = "Back online. While you were disconnected: " + added.length +
            " new escalation" + (added.length === 1 ? "" : "s") + ", " + gone.length +
            " taken or closed.";
          note.hidden = false;
        }
      }
      added.forEach(function (row) { row.classList.add("is-new"); notify(row); });
      if (added.length) beep();
    }
    knownRows = ids;
    tick();
  }

  document.addEventListener("htmx:wsConnecting", function () {
    setLive("connecting", connectedOnce ? "Reconnecting…" : "Connecting…");
  });
  document.addEventListener("htmx:wsOpen", function () {
    setLive("online", "Live");
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    const code = evt.detail.event.code;
    if (code === 4401) { window.location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname); return; }
    if (code === 4403) {  // refused, or a right ended: the reason was pushed just before
      setLive("offline", "Access ended");
      // What only the owner may use goes (the customer link too: it reads and writes the chat).
      $all("#composer, .endings, #handoff-status form, .customer-link").forEach(function (el) { el.remove(); });
      return;
    }
    if (code === 4410) { setLive("offline", "Ended"); return; }  // closed: don't reconnect
    setLive("offline", "Reconnecting…");
    if (RECONNECTING_CODES.indexOf(code) < 0) {
      // The extension only retries abnormal closes; a clean server-side close (a restart,
      // Daphne's socket time limit) must come back too.
      const wrapper = evt.detail.socketWrapper;
      setTimeout(function () { if (wrapper && wrapper.reconnect) wrapper.reconnect(); }, 1000);
    }
  });
  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    const isSnapshot = evt.detail.message.indexOf('id="queue-rows"') >= 0;
    if ($("#queue-rows")) refreshQueue(isSnapshot);
    if (isSnapshot) connectedOnce = true;
    tick();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if ($("#queue-rows")) { refreshQueue(false); }
    const button = $("#enable-alerts");
    if (button) {
      button.addEventListener("click", function () {
        beep();
        if ("Notification" in window && Notification.permission === "default") {
          Notification.requestPermission();
        }
        button.textContent = "Alerts on";
        button.disabled = true;
      });
    }
    tick();
    setInterval(tick, 1000);
  });
})();

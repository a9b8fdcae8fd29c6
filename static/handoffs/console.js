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
      if (el.closest(".wait-since")) return;  // the customer's whole wait; SLA is per hop
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
    rows.reverse().forEach(function (row) {  // a row delivered twice keeps its latest copy
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

  // ---- alerts: the agent's stored preference (data-pref, saved with a POST), the
  // browser's real notification permission, and an audio context unlocked by the first
  // click or key press on every page once the agent has opted in.
  function alertsButton() { return $("#alerts-toggle"); }
  function alertsOn() { const b = alertsButton(); return !!b && b.dataset.pref === "on"; }
  function permission() { return ("Notification" in window) ? Notification.permission : "unsupported"; }

  function showAlerts() {
    const button = alertsButton();
    if (!button) return;
    const perm = permission();
    button.dataset.permission = perm;
    button.setAttribute("aria-pressed", alertsOn() ? "true" : "false");
    if (!alertsOn()) {
      button.textContent = "Alerts off";
      button.title = "Turn on sound and desktop alerts for new escalations and customer messages";
    } else if (perm === "granted") {
      button.textContent = "Alerts on: sound + desktop";
      button.title = "Click to turn alerts off";
    } else if (perm === "denied" || perm === "unsupported") {
      button.textContent = "Alerts on: sound only";
      button.title = "Desktop notifications are blocked by this browser (site settings); sound still plays. Click to turn alerts off.";
    } else {
      // Not answered yet (a dismissed prompt leaves it so): the browser asks again the
      // next time alerts are turned on. A click here still turns them off.
      button.textContent = "Alerts on: sound · desktop not allowed yet";
      button.title = "Desktop notifications: the browser asks when you turn alerts on. Click to turn alerts off.";
    }
  }

  function unlockAudio() {
    if (!alertsOn()) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
    } catch (e) { /* no audio on this device */ }
  }

  function saveAlerts(on) {
    const button = alertsButton();
    const body = new URLSearchParams({ enabled: on ? "1" : "0" });
    const token = document.querySelector("[name=csrfmiddlewaretoken]");
    // keepalive: a click followed at once by a reload or a link still saves the choice.
    return fetch(button.dataset.url, {
      method: "POST", body: body, credentials: "same-origin", keepalive: true,
      headers: { "X-CSRFToken": token ? token.value : "" },
    });
  }

  function setupAlerts() {
    const button = alertsButton();
    if (!button) return;
    showAlerts();
    button.addEventListener("click", function () {
      // One click, one toggle: turning alerts on asks the browser about desktop
      // notifications (if it hasn't been answered); a click never does anything else, so
      // an agent who dismissed that prompt can still turn alerts off.
      const perm = permission();
      const on = !alertsOn();
      button.dataset.pref = on ? "on" : "off";
      saveAlerts(on);
      if (on) {
        unlockAudio();
        beep();
        if (perm === "default") Notification.requestPermission().then(showAlerts, showAlerts);
      }
      showAlerts();
    });
    ["pointerdown", "keydown"].forEach(function (type) {
      document.addEventListener(type, unlockAudio, { capture: true });
    });
    window.handoffAlerts = {
      audioState: function () { return audio ? audio.state : "none"; },
      enabled: alertsOn,
      permission: permission,
      beep: beep,
    };
  }

  function beep() {
    if (!alertsOn()) return;
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
    if (!alertsOn() || permission() !== "granted") return;
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
    if (window.handoffTitle) {  // inbox.js: the unread count shares the title
      window.handoffTitle.setQueue(rows.length);
    } else {
      document.title = (rows.length ? "(" + rows.length + ") " : "") + "Queue · Handoff console";
    }
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
      if (added.length && window.handoffAnnounce) {  // for screen readers (#announcer)
        window.handoffAnnounce(added.length === 1
          ? "New escalation: " + (added[0].dataset.customer || "a customer")
          : added.length + " new escalations");
      }
      if (added.length) beep();
    }
    knownRows = ids;
    tick();
  }

  // The side sockets are not the page's live connection: the badge-only inbox socket
  // (pages without a socket of their own) and the desk socket (offers, on every agent
  // page). The live indicator and the owner's controls follow the page's socket only.
  function sideSocket(evt) {
    const el = evt.target;
    return !!(el && (el.id === "inbox-socket" || (el.closest && el.closest("#desk"))));
  }

  document.addEventListener("htmx:wsConnecting", function (evt) {
    if (sideSocket(evt)) return;
    setLive("connecting", connectedOnce ? "Reconnecting…" : "Connecting…");
  });
  document.addEventListener("htmx:wsOpen", function (evt) {
    if (sideSocket(evt)) return;
    setLive("online", "Live");
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    const code = evt.detail.event.code;
    if (code === 4401) { window.location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname); return; }
    if (sideSocket(evt)) {
      if (RECONNECTING_CODES.indexOf(code) < 0 && code !== 4403 && code !== 4410) {
        const wrapper = evt.detail.socketWrapper;
        setTimeout(function () { if (wrapper && wrapper.reconnect) wrapper.reconnect(); }, 1000);
      }
      return;
    }
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
      // With jittered back-off (reconnect.js): 4013 is a refusal while Redis is down.
      const wait = window.HandoffReconnect ? window.HandoffReconnect.nextDelay() : 1000;
      setTimeout(function () { if (wrapper && wrapper.reconnect) wrapper.reconnect(); }, wait);
    }
  });
  // The endings form: show the fields the chosen action uses, name the button after it.
  // Without JS every field shows and the server ignores the ones an action doesn't use.
  const ENDING_LABELS = {
    resolve: "Resolve…", transfer: "Transfer", release: "Release to the queue", handback: "Hand back",
  };
  function setupEndings() {
    const form = $(".ending-form");
    if (!form) return;
    const select = $("#ending-action", form);
    function show() {
      const action = select.value;
      $all("[data-for-action]", form).forEach(function (el) {
        el.hidden = el.dataset.forAction.split(" ").indexOf(action) < 0;
      });
      const button = $("#ending-submit", form);
      if (button) button.textContent = ENDING_LABELS[action] || "Close";
    }
    select.addEventListener("change", show);
    show();
    // Back with an error or the Resolve confirmation: bring the form into view.
    const attention = $(".field-error, #ending-errors, #resolve-confirm", form);
    if (attention) attention.scrollIntoView({ block: "center" });
  }

  // Rows and status lines pushed over a socket are rendered for everyone: say "you"
  // where the assignee is the person looking.
  function markAssignedToMe() {
    const me = document.body.dataset.userId;
    if (!me) return;
    $all(".assigned[data-assigned-user]").forEach(function (el) {
      if (el.dataset.assignedUser === me && !el.classList.contains("assigned-me")) {
        el.classList.add("assigned-me");
        el.textContent = "Assigned to you";
      }
    });
  }

  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    markAssignedToMe();
    const isSnapshot = evt.detail.message.indexOf('id="queue-rows"') >= 0;
    if ($("#queue-rows")) refreshQueue(isSnapshot);
    if (isSnapshot) connectedOnce = true;
    tick();
  });

  document.addEventListener("DOMContentLoaded", function () {
    if ($("#queue-rows")) { refreshQueue(false); }
    setupAlerts();
    markAssignedToMe();
    setupEndings();
    tick();
    setInterval(tick, 1000);
  });
})();

// Chat pages (agent and customer): durable sending, ordering, typing.
//
// A message gets a client-generated id before it is sent and stays in a local outbox
// (localStorage) until the server acknowledges it; sends are retried in order with
// backoff, and the server de-duplicates by client id, so a message typed while the
// connection is down is delivered exactly once when it comes back.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.from((root || document).querySelectorAll(sel)); }

  let socket = null;
  let typingHide = null;
  let lastTypingSent = 0;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function scrollToEnd() {
    const list = $("#messages");
    if (list) list.scrollTop = list.scrollHeight;
    window.scrollTo(0, document.body.scrollHeight);
  }

  function orderMessages() {
    const list = $("#messages");
    if (!list) return;
    const seen = new Set();
    $all(":scope > .msg", list).forEach(function (el) {
      if (seen.has(el.id)) el.remove(); else seen.add(el.id);
    });
    const msgs = $all(":scope > .msg", list);
    msgs.sort(function (a, b) { return Number(a.dataset.seq) - Number(b.dataset.seq); });
    msgs.forEach(function (el) { list.appendChild(el); });
    // A pending bubble whose message the server has stored is no longer pending.
    const stored = new Set(msgs.map(function (el) { return el.dataset.clientId; }));
    $all("#pending > .msg").forEach(function (el) {
      if (stored.has(el.dataset.clientId)) el.remove();
    });
  }

  function Outbox(form) {
    this.form = form;
    this.key = "outbox:" + form.dataset.durableKey;
    this.sending = false;
    this.delay = 500;
  }
  Outbox.prototype.load = function () {
    try { return JSON.parse(localStorage.getItem(this.key) || "[]"); } catch (e) { return []; }
  };
  Outbox.prototype.save = function (items) { localStorage.setItem(this.key, JSON.stringify(items)); };
  Outbox.prototype.add = function (item) {
    const items = this.load(); items.push(item); this.save(items);
    this.renderPending(); this.flush();
  };
  Outbox.prototype.renderPending = function () {
    const box = $("#pending");
    if (!box) return;
    const stored = new Set($all("#messages > .msg").map(function (el) { return el.dataset.clientId; }));
    box.textContent = "";
    this.load().forEach(function (item) {
      if (stored.has(item.client_id)) return;
      const el = document.createElement("div");
      el.className = "msg mine msg-pending";
      el.dataset.clientId = item.client_id;
      const meta = document.createElement("p"); meta.className = "msg-meta"; meta.textContent = "Sending…";
      const body = document.createElement("p"); body.className = "msg-body"; body.textContent = item.body;
      el.appendChild(meta); el.appendChild(body); box.appendChild(el);
    });
  };
  Outbox.prototype.flush = function () {
    if (this.sending) return;
    const items = this.load();
    if (!items.length) return;
    const item = items[0];
    const self = this;
    const data = new URLSearchParams();
    data.set("body", item.body); data.set("client_id", item.client_id);
    if (item.note) data.set("note", "1");
    const token = $("input[name=csrfmiddlewaretoken]", this.form);
    this.sending = true;
    fetch(this.form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", "HX-Request": "true" },
    }).then(function (response) {
      return response.text().then(function (html) { return { response: response, html: html }; });
    }).then(function (r) {
      self.sending = false;
      if (r.response.status >= 500) { throw new Error("server " + r.response.status); }
      const rest = self.load().filter(function (i) { return i.client_id !== item.client_id; });
      self.save(rest);
      if (r.response.ok) {
        const list = $("#messages");
        if (list) { list.insertAdjacentHTML("beforeend", r.html); orderMessages(); }
      } else {
        const flash = $("#flash") || $("#pending");
        if (flash) flash.insertAdjacentHTML("beforeend", r.html);
      }
      self.delay = 500;
      self.renderPending(); scrollToEnd();
      self.flush();
    }).catch(function () {
      self.sending = false;
      self.delay = Math.min(self.delay * 2, 8000);
      setTimeout(function () { self.flush(); }, self.delay);
    });
  };

  document.addEventListener("htmx:wsOpen", function (evt) {
    if (evt.target.closest && evt.target.closest("#desk")) return;  // offers, not the chat
    socket = evt.detail.socketWrapper;
    if (window.chatOutbox) window.chatOutbox.flush();
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    if (evt.detail.event.code === 4410 && document.querySelector("[data-page=customer]")) {
      // Resolved: the page now shows the transcript read-only, with the rating form.
      window.location.reload();
      return;
    }
    if (evt.detail.event.code === 4410) {
      const form = $("#composer");
      if (form) form.remove();
      const note = document.createElement("p");
      note.className = "empty"; note.textContent = "This conversation has ended.";
      const chat = $(".customer-chat") || document.body;
      chat.appendChild(note);
    }
  });
  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    if (!$("#messages")) return;
    // In the widget's frame: tell the host page a message from the other side arrived
    // (it shows the unread dot while the chat is closed). Nothing but the fact is sent.
    const text = evt.detail.message;
    if (window.parent !== window &&
        text.trim().indexOf('<div hx-swap-oob="beforeend:#messages"') === 0 &&
        text.indexOf(" mine") < 0) {
      window.parent.postMessage({ source: "handoff-chat", type: "message" }, "*");
    }
    orderMessages();
    if (window.chatOutbox) window.chatOutbox.renderPending();
    const typing = $("#typing-indicator");
    if (evt.detail.message.indexOf('id="typing-indicator"') >= 0 && typing) {
      typing.hidden = false;
      clearTimeout(typingHide);
      typingHide = setTimeout(function () { typing.hidden = true; }, 4000);
    } else if (evt.detail.message.indexOf("msg-") >= 0 && typing) {
      typing.hidden = true;  // the message the other side was typing has arrived
    }
    scrollToEnd();
  });

  // In the widget's frame, Escape closes the widget (keys don't reach the host page).
  if (window.parent !== window) {
    document.addEventListener("keydown", function (evt) {
      if (evt.key === "Escape") window.parent.postMessage({ source: "handoff-chat", type: "close" }, "*");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = $("#composer");
    if (!form || !form.dataset.durableKey) return;
    const outbox = new Outbox(form);
    window.chatOutbox = outbox;
    const textarea = $("textarea[name=body]", form);
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      const body = textarea.value.trim();
      if (!body) return;
      const note = $("input[name=note]", form);
      outbox.add({ client_id: newId(), body: body, note: !!(note && note.checked) });
      textarea.value = "";
      if (note) note.checked = false;
    });
    textarea.addEventListener("keydown", function (evt) {
      if (evt.key === "Enter" && !evt.shiftKey) { evt.preventDefault(); form.requestSubmit(); }
    });
    textarea.addEventListener("input", function () {
      const now = Date.now();
      if (socket && now - lastTypingSent > 1500) {
        lastTypingSent = now;
        try { socket.sendImmediately(JSON.stringify({ typing: true })); } catch (e) { /* offline */ }
      }
    });
    orderMessages();
    outbox.renderPending();
    outbox.flush();
    scrollToEnd();
  });
})();

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

  // The agent's conversation page scrolls the message list inside itself and never the
  // window: it opens at the latest message, follows new ones only while the agent is at
  // the bottom, and otherwise offers a "new messages" pill. The customer's page (one
  // column, the window is the list) follows the window as before.
  let stuck = true;  // the agent was at the bottom of the list before the last change

  function inPlace() { return !!$("[data-page=conversation] #messages"); }

  function atBottom(list) { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }

  function pill() { return $("#new-messages"); }

  function scrollToEnd() {
    const list = $("#messages");
    if (!list) return;
    if (!inPlace()) {
      list.scrollTop = list.scrollHeight;
      window.scrollTo(0, document.body.scrollHeight);
      return;
    }
    list.scrollTop = list.scrollHeight;
    stuck = true;
    const p = pill();
    if (p) p.hidden = true;
  }

  function follow(grew) {
    // After new content: to the end if the agent was there, else say there's more.
    const list = $("#messages");
    if (!list) return;
    if (!inPlace() || stuck) { scrollToEnd(); return; }
    const p = pill();
    if (p && grew) p.hidden = false;
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
    // Only the text bubbles are this outbox's: uploads in flight (composer.js) stay.
    $all(":scope > .msg:not(.upload-pending)", box).forEach(function (el) { el.remove(); });
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
    if (item.saved_reply) data.set("saved_reply", item.saved_reply);
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
      } else if (window.chatComposer) {
        // Refused (too long, closed, a variable left unfilled): the text goes back into
        // the composer, never thrown away, and the reason shows beside it.
        window.chatComposer.refused(item, r.html);
      } else {
        const flash = $("#flash") || $("#pending");
        if (flash) flash.insertAdjacentHTML("beforeend", r.html);
      }
      self.delay = 500;
      self.renderPending(); scrollToEnd();  // the sender's own message: always shown
      self.flush();
    }).catch(function () {
      self.sending = false;
      self.delay = Math.min(self.delay * 2, 8000);
      setTimeout(function () { self.flush(); }, self.delay);
    });
  };

  document.addEventListener("htmx:wsBeforeMessage", function () {
    const list = $("#messages");
    if (list && inPlace()) stuck = atBottom(list);
  });
  window.chatOrderMessages = orderMessages;
  window.chatNewId = newId;

  document.addEventListener("htmx:wsOpen", function (evt) {
    if (evt.target && evt.target.id === "inbox-socket") return;
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
    follow(text.indexOf("msg-") >= 0);
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
      outbox.add({
        client_id: newId(), body: body, note: !!(note && note.checked),
        saved_reply: form.dataset.savedReply || "",
      });
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
  });

  document.addEventListener("DOMContentLoaded", function () {
    const list = $("#messages");
    if (!list) return;
    scrollToEnd();
    // A thumbnail grows the list when it loads, after the list was scrolled to its end
    // (on opening, or when its message arrived): keep the end in view if the reader was
    // there. Load events don't bubble: listen in the capture phase.
    list.addEventListener("load", function (evt) {
      if (!evt.target || evt.target.tagName !== "IMG") return;
      if (inPlace()) { if (stuck) scrollToEnd(); return; }
      const below = document.documentElement.scrollHeight - window.scrollY - window.innerHeight;
      if (below < evt.target.offsetHeight + 80) scrollToEnd();
    }, true);
    if (!inPlace()) return;
    list.addEventListener("scroll", function () {
      stuck = atBottom(list);
      const p = pill();
      if (p && stuck) p.hidden = true;
    });
    const p = pill();
    if (p) p.addEventListener("click", function () { scrollToEnd(); list.focus({ preventScroll: true }); });
    // After accepting (the conversation page opens with ?accepted=1, or from the card),
    // the cursor is in the composer: the agent can type at once.
    const box = $("#message-body");
    if (box && document.querySelector("[data-page=conversation][data-focus-composer]")) {
      box.focus({ preventScroll: true });
      box.setSelectionRange(box.value.length, box.value.length);
    }
  });
})();

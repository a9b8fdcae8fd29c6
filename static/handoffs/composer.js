// The composer (agent and customer): drafts, the character counter, attachments and
// (agents) saved replies. chat.js sends the text; this file only helps write it.
//
// - Nothing typed is lost: the text is kept per conversation in localStorage
//   ("draft:<key>") on every keystroke and restored after a reload; it is cleared once
//   chat.js has taken it into its durable outbox. A message over the limit is refused
//   here with the text kept; one the server refuses comes back into the composer.
// - Attachments (picker, drag and drop, paste) upload one at a time with a progress
//   bar and a client id; a failed connection or a 5xx is retried with the same id (the
//   server stores the file once), a refusal (type, size) is shown and not retried.
// - Saved replies: "/" + shortcut opens suggestions (arrow keys, Enter or Tab, Escape);
//   the "Saved replies" button opens a searchable picker. The server fills the variables;
//   any it could not fill stay as {{ ... }}, are listed, and block sending.
// Everything is built with textContent and DOM nodes: no HTML from users is parsed.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function bytes(n) {
    if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " bytes";
  }
  const PLACEHOLDER = /\{\{\s*[^{}]*?\s*\}\}/g;

  function Composer(form) {
    this.form = form;
    this.textarea = $("textarea[name=body]", form);
    this.max = Number(form.dataset.maxChars || 10000);
    this.maxBytes = Number(form.dataset.maxBytes || 10485760);
    this.key = "draft:" + form.dataset.durableKey;
    this.counter = $("#char-count", form);
    this.error = $("#composer-error", form);
    this.flags = $("#composer-flags", form);
    this.uploads = [];
    this.uploading = false;
    this.delay = 1000;
  }

  // ---------------------------------------------------------------- drafts, counter
  Composer.prototype.saveDraft = function () {
    try {
      if (this.textarea.value) {
        localStorage.setItem(this.key, JSON.stringify({
          text: this.textarea.value, saved_reply: this.form.dataset.savedReply || "",
        }));
      } else {
        localStorage.removeItem(this.key);
      }
    } catch (e) { /* storage full or blocked: the text stays in the box */ }
  };
  Composer.prototype.restoreDraft = function () {
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(this.key) || "null"); } catch (e) { draft = null; }
    if (draft && draft.text) {
      this.textarea.value = draft.text;
      if (draft.saved_reply) this.form.dataset.savedReply = draft.saved_reply;
    }
  };
  Composer.prototype.count = function () {
    const n = this.textarea.value.length;
    const over = n - this.max;
    if (!this.counter) return over;
    this.counter.hidden = n < this.max * 0.8;
    this.counter.classList.toggle("over", over > 0);
    this.counter.textContent = fmt(n) + " / " + fmt(this.max) +
      (over > 0 ? " (" + fmt(over) + " over the limit)" : "");
    return over;
  };
  Composer.prototype.say = function (text) {
    if (!this.error) return;
    this.error.textContent = text || "";
    this.error.hidden = !text;
  };
  Composer.prototype.showFlags = function () {
    if (!this.flags) return [];
    const left = this.textarea.value.match(PLACEHOLDER) || [];
    this.flags.textContent = "";
    this.flags.hidden = !left.length;
    if (left.length) {
      this.flags.appendChild(el("strong", "", "Fill in before sending: "));
      Array.from(new Set(left)).forEach(function (p) { this.flags.appendChild(el("code", "flag-var", p)); }, this);
      (this.problems || []).forEach(function (p) {
        this.flags.appendChild(el("span", "flag-why", " " + p.message));
      }, this);
    }
    return left;
  };
  // Called by chat.js when the server refused a queued message: put it back.
  Composer.prototype.refused = function (item, html) {
    const holder = document.createElement("template");
    holder.innerHTML = html;  // the server's own escaped flash fragment
    const reason = holder.content.textContent.trim() || "The message was not sent.";
    const now = this.textarea.value;
    this.textarea.value = now ? now + "\n\n" + item.body : item.body;
    if (item.saved_reply) this.form.dataset.savedReply = item.saved_reply;
    this.saveDraft(); this.count(); this.showFlags();
    this.say(reason + " Your text is back in the box.");
  };
  Composer.prototype.onSubmit = function (evt) {
    const over = this.count();
    if (over > 0) {
      evt.preventDefault(); evt.stopImmediatePropagation();
      this.say("Your message is " + fmt(over) + (over === 1 ? " character" : " characters") +
        " over the limit of " + fmt(this.max) +
        ". Shorten it or send it in parts; nothing was sent and your text is kept.");
      return;
    }
    if (this.showFlags().length) {
      evt.preventDefault(); evt.stopImmediatePropagation();
      this.say("A saved reply's variable has no value here: replace the {{ … }} before sending.");
      return;
    }
    this.say("");
  };
  Composer.prototype.afterSubmit = function () {
    // chat.js has moved the text into its durable outbox (and emptied the box).
    if (!this.textarea.value) {
      delete this.form.dataset.savedReply;
      this.problems = [];
      this.saveDraft(); this.count(); this.showFlags();
    }
  };

  // ---------------------------------------------------------------- attachments
  // Files waiting to be sent are kept in IndexedDB (localStorage can't hold them), so an
  // upload survives a reload or a closed tab as a text message does in chat.js's outbox.
  const Stored = {
    open: function () {
      if (!this.db) {
        this.db = new Promise(function (resolve) {
          if (!window.indexedDB) { resolve(null); return; }
          let req;
          try { req = indexedDB.open("handoff-uploads", 1); } catch (e) { resolve(null); return; }
          req.onupgradeneeded = function () {
            req.result.createObjectStore("uploads", { keyPath: "client_id" });
          };
          req.onsuccess = function () { resolve(req.result); };
          req.onerror = function () { resolve(null); };
        });
      }
      return this.db;
    },
    run: function (mode, fn) {
      return this.open().then(function (db) {
        if (!db) return null;
        return new Promise(function (resolve) {
          const tx = db.transaction("uploads", mode);
          const req = fn(tx.objectStore("uploads"));
          tx.oncomplete = function () { resolve(req.result); };
          tx.onerror = tx.onabort = function () { resolve(null); };
        });
      });
    },
    put: function (record) { return this.run("readwrite", function (s) { return s.put(record); }); },
    remove: function (id) { return this.run("readwrite", function (s) { return s.delete(id); }); },
    all: function () { return this.run("readonly", function (s) { return s.getAll(); }); },
  };

  Composer.prototype.addFiles = function (files) {
    Array.from(files || []).forEach(function (file) {
      if (file.size > this.maxBytes) {
        this.say(file.name + " is " + bytes(file.size) + "; the largest file accepted is " +
          bytes(this.maxBytes) + ".");
        return;
      }
      const note = $("input[name=note]", this.form);
      const item = {
        client_id: window.chatNewId(), file: file, name: file.name || "pasted-image.png",
        note: !!(note && note.checked), key: this.form.dataset.durableKey, added: Date.now(),
      };
      Stored.put({
        client_id: item.client_id, file: file, name: item.name, note: item.note,
        key: item.key, added: item.added,
      });
      this.queue(item);
    }, this);
    this.nextUpload();
  };
  Composer.prototype.queue = function (item) {
    item.row = this.pendingRow(item);
    this.uploads.push(item);
  };
  // After a reload: the files this conversation still had to send, in the order added.
  Composer.prototype.resumeUploads = function () {
    const self = this, key = this.form.dataset.durableKey;
    Stored.all().then(function (records) {
      (records || []).filter(function (r) { return r.key === key; })
        .sort(function (a, b) { return a.added - b.added; })
        .forEach(function (r) {
          self.queue({ client_id: r.client_id, file: r.file, name: r.name, note: r.note, key: key });
        });
      self.nextUpload();
    });
  };
  Composer.prototype.pendingRow = function (item) {
    const row = el("div", "msg mine msg-pending upload-pending");
    row.dataset.clientId = item.client_id;
    const meta = el("p", "msg-meta", "Uploading " + (item.name) + " (" + bytes(item.file.size) + ")…");
    const bar = el("progress", "upload-progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + (item.name));
    row.appendChild(meta); row.appendChild(bar);
    const box = $("#pending");
    if (box) box.appendChild(row);
    item.meta = meta; item.bar = bar;
    return row;
  };
  Composer.prototype.nextUpload = function () {
    if (this.uploading || !this.uploads.length) return;
    const item = this.uploads[0];
    const self = this;
    const data = new FormData();
    data.append("file", item.file, item.name);
    data.append("client_id", item.client_id);
    if (item.note) data.append("note", "1");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", this.form.dataset.uploadUrl);
    const token = $("input[name=csrfmiddlewaretoken]", this.form);
    if (token) xhr.setRequestHeader("X-CSRFToken", token.value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        item.bar.value = Math.round(e.loaded / e.total * 100);
        item.meta.textContent = "Uploading " + item.name + ": " + item.bar.value + "%";
      }
    };
    function retry(reason) {
      self.uploading = false;
      self.delay = Math.min(self.delay * 2, 8000);
      item.meta.textContent = "Waiting to send " + item.name + " (" + reason + "), retrying…";
      setTimeout(function () { self.nextUpload(); }, self.delay);
    }
    xhr.onerror = function () { retry("connection lost"); };
    xhr.ontimeout = function () { retry("timed out"); };
    xhr.onload = function () {
      if (xhr.status >= 500 || xhr.status === 0) { retry("server unavailable"); return; }
      self.uploading = false;
      self.delay = 1000;
      self.uploads.shift();
      item.row.remove();
      Stored.remove(item.client_id);  // stored (or refused for good): nothing to resend
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      if (xhr.status >= 200 && xhr.status < 300 && body.html) {
        const list = $("#messages");
        if (list) { list.insertAdjacentHTML("beforeend", body.html); window.chatOrderMessages(); }
        self.say("");
      } else {
        self.say(item.name + " was not sent: " +
          (body.error || "the server refused it (" + xhr.status + ")."));
      }
      self.nextUpload();
    };
    this.uploading = true;
    xhr.send(data);
  };

  // ---------------------------------------------------------------- saved replies
  Composer.prototype.replies = function () {
    const self = this;
    if (this.loaded) return Promise.resolve(this.loaded);
    if (!this.loading) {  // one request at a time, however fast the typing
      this.loading = fetch(this.form.dataset.savedRepliesUrl, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { replies: [] }; })
        .then(function (data) { self.loaded = data.replies || []; self.loading = null; return self.loaded; })
        .catch(function () { self.loading = null; return []; });
    }
    return this.loading;
  };
  function matches(reply, query) {
    query = query.toLowerCase();
    return !query || reply.shortcut.indexOf(query) === 0 ||
      reply.title.toLowerCase().indexOf(query) >= 0 || reply.preview.toLowerCase().indexOf(query) >= 0;
  }
  Composer.prototype.slashQuery = function () {
    const caret = this.textarea.selectionStart;
    const before = this.textarea.value.slice(0, caret);
    const m = before.match(/(^|\s)\/([a-z0-9_-]*)$/);
    return m ? { query: m[2], start: caret - m[2].length - 1, end: caret } : null;
  };
  Composer.prototype.renderList = function (list, replies, onChoose) {
    list.textContent = "";
    this.active = 0;
    this.choices = replies;
    this.onChoose = onChoose;
    if (!replies.length) { list.appendChild(el("li", "empty-choice", "No saved reply matches.")); return; }
    replies.forEach(function (reply, i) {
      const li = el("li", "choice");
      li.id = list.id + "-" + reply.id;
      li.setAttribute("role", "option");
      li.dataset.index = String(i);
      li.appendChild(el("code", "", "/" + reply.shortcut));
      li.appendChild(el("span", "choice-title", " " + reply.title));
      li.appendChild(el("span", "choice-scope muted", reply.team ? " · " + reply.team : " · personal"));
      li.appendChild(el("span", "choice-preview muted", reply.preview));
      li.addEventListener("mousedown", function (e) { e.preventDefault(); onChoose(reply); });
      list.appendChild(li);
    });
    this.highlight(list);
  };
  Composer.prototype.highlight = function (list) {
    Array.from(list.children).forEach(function (li, i) {
      const on = i === this.active;
      li.classList.toggle("active", on);
      li.setAttribute("aria-selected", on ? "true" : "false");
      if (on && li.id) {
        list.setAttribute("aria-activedescendant", li.id);
        this.textarea.setAttribute("aria-activedescendant", li.id);
        if (li.scrollIntoView) li.scrollIntoView({ block: "nearest" });
      }
    }, this);
  };
  Composer.prototype.suggest = function () {
    const popup = $("#slash-popup", this.form);
    if (!popup || !this.form.dataset.savedRepliesUrl) return;
    const q = this.slashQuery();
    if (!q) { this.closePopup(); return; }
    const self = this;
    const generation = this.generation = (this.generation || 0) + 1;
    this.replies().then(function (all) {
      if (generation !== self.generation) return;  // typed on, chose or closed meanwhile
      const now = self.slashQuery();
      if (!now) { self.closePopup(); return; }
      const found = all.filter(function (r) { return matches(r, now.query); }).slice(0, 8);
      self.renderList(popup, found, function (reply) { self.insert(reply, self.slashQuery()); });
      popup.hidden = false;
    });
  };
  Composer.prototype.closePopup = function () {
    this.generation = (this.generation || 0) + 1;
    const popup = $("#slash-popup", this.form);
    if (popup && !popup.hidden) this.loaded = null;  // read the list afresh next time
    if (popup) popup.hidden = true;
    this.textarea.removeAttribute("aria-activedescendant");
  };
  Composer.prototype.insert = function (reply, range) {
    const self = this;
    const url = this.form.dataset.fillUrl.replace("/0/fill", "/" + reply.id + "/fill");
    const token = $("input[name=csrfmiddlewaretoken]", this.form);
    this.closePopup(); this.closePicker();
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "" },
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (r) {
        if (!r.ok) { self.say(r.body.error || "That saved reply is not available."); return; }
        const value = self.textarea.value;
        const start = range ? range.start : self.textarea.selectionStart;
        const end = range ? range.end : self.textarea.selectionEnd;
        // Inserted beside text already typed, it gets a space on the side that touches a
        // word ("…5 days. Thanks Frank", never "…5 days.Thanks Frank").
        const before = value.slice(0, start), after = value.slice(end);
        const text = (before && !/\s$/.test(before) ? " " : "") + r.body.text +
          (after && !/^\s/.test(after) ? " " : "");
        self.textarea.value = before + text + after;
        const caret = start + text.length;
        self.textarea.focus();
        self.textarea.setSelectionRange(caret, caret);
        self.form.dataset.savedReply = String(r.body.id);
        self.problems = r.body.problems || [];
        self.closePopup();
        self.saveDraft(); self.count(); self.showFlags(); self.say("");
      }).catch(function () { self.say("Could not load that saved reply; try again."); });
  };
  Composer.prototype.openPicker = function () {
    const panel = $("#reply-picker", this.form);
    if (!panel) return;
    const search = $("#reply-search", panel), list = $("#reply-list", panel);
    const self = this;
    const range = { start: this.textarea.selectionStart, end: this.textarea.selectionEnd };
    // Until this opening's list is drawn, Enter chooses nothing: the choices of an earlier
    // opening (or the slash popup) carry that opening's caret, not this one's.
    this.choices = []; this.onChoose = null;
    list.textContent = "";  // never the last opening's list while this one loads
    list.appendChild(el("li", "empty-choice", "Loading saved replies…"));
    let drawn = 0;
    function show() {
      const mine = ++drawn;
      self.replies().then(function (all) {
        if (mine !== drawn || panel.hidden) return;  // typed on or closed meanwhile
        self.renderList(list, all.filter(function (r) { return matches(r, search.value.trim()); }),
          function (reply) { self.insert(reply, range); });
      });
    }
    search.oninput = show;
    search.onkeydown = function (e) {
      if (self.listKeys(e, list, function () { self.closePicker(); })) return;
      if (e.key === "Enter") e.preventDefault();  // list still loading or empty: never submit
    };
    panel.hidden = false;
    search.value = "";
    show();
    search.focus();
  };
  Composer.prototype.closePicker = function () {
    const panel = $("#reply-picker", this.form);
    if (panel && !panel.hidden) { panel.hidden = true; this.loaded = null; }
    this.choices = []; this.onChoose = null;
  };
  // Arrow keys, Enter / Tab and Escape in a list of choices; true if handled.
  Composer.prototype.listKeys = function (evt, list, close) {
    const n = (this.choices || []).length;
    if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
      if (!n) return true;
      this.active = (this.active + (evt.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.highlight(list);
    } else if ((evt.key === "Enter" || evt.key === "Tab") && n) {
      this.onChoose(this.choices[this.active]);
    } else if (evt.key === "Escape") {
      close();
      this.textarea.focus();
    } else {
      return false;
    }
    evt.preventDefault(); evt.stopImmediatePropagation();
    return true;
  };

  // ---------------------------------------------------------------- wiring
  function setup() {
    const form = $("#composer");
    if (!form || !form.dataset.durableKey) return;
    const c = new Composer(form);
    window.chatComposer = c;
    c.restoreDraft(); c.count(); c.showFlags();
    if (form.dataset.uploadUrl) c.resumeUploads();

    document.addEventListener("submit", function (evt) {
      if (evt.target === form) c.onSubmit(evt);
    }, true);
    form.addEventListener("submit", function () { setTimeout(function () { c.afterSubmit(); }, 0); });
    c.textarea.addEventListener("input", function () {
      c.saveDraft(); c.count(); c.suggest();
      if (c.flags && !c.flags.hidden) c.showFlags();
    });
    // Keys for the suggestions run before chat.js's Enter-to-send.
    document.addEventListener("keydown", function (evt) {
      if (evt.target !== c.textarea) return;
      const popup = $("#slash-popup", form);
      if (popup && !popup.hidden) c.listKeys(evt, popup, function () { c.closePopup(); });
    }, true);
    c.textarea.addEventListener("blur", function () { setTimeout(function () { c.closePopup(); }, 150); });

    // Attachments: picker, drop, paste.
    const input = $("#attach-input", form);
    if (input) {
      input.addEventListener("change", function () { c.addFiles(input.files); input.value = ""; });
    }
    if (form.dataset.uploadUrl) {
      form.addEventListener("dragover", function (e) {
        if (e.dataTransfer && Array.from(e.dataTransfer.types || []).indexOf("Files") >= 0) {
          e.preventDefault(); form.classList.add("dropping");
        }
      });
      form.addEventListener("dragleave", function () { form.classList.remove("dropping"); });
      form.addEventListener("drop", function (e) {
        form.classList.remove("dropping");
        if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) {
          e.preventDefault(); c.addFiles(e.dataTransfer.files);
        }
      });
      c.textarea.addEventListener("paste", function (e) {
        const files = e.clipboardData ? Array.from(e.clipboardData.files || []) : [];
        if (files.length) { e.preventDefault(); c.addFiles(files); }
        // Text pastes go into the box as usual, however long: the counter says the rest.
      });
    }
    const pick = $("#reply-picker-open", form);
    if (pick) pick.addEventListener("click", function () { c.openPicker(); });
    const closer = $("#reply-picker-close", form);
    if (closer) closer.addEventListener("click", function () { c.closePicker(); c.textarea.focus(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();

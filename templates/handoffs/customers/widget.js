/* The handoff console's chat widget: a launcher bubble and the chat in a frame.
 *
 *   <script src="https://console.example.com/widget.js" defer></script>
 *   <script>HandoffChat.open("https://console.example.com/c/<token>/");</script>
 *
 * HandoffChat.open(url) shows the conversation link a bot handed out; the bubble then
 * toggles it. The link is remembered for the tab (sessionStorage), so the bubble comes
 * back on the next page of the site. While the chat is closed a new message shows a dot.
 * Full screen on phones, Escape closes it, focus moves into it and back to the bubble.
 * No third-party assets; styles are set through the CSSOM (fine under a strict CSP).
 * The console only lets origins configured for the bot frame the chat.
 */
(function () {
  "use strict";
  if (window.HandoffChat && window.HandoffChat.version) return;

  var STORE = "handoff-chat:url";
  var PHONE = window.matchMedia ? window.matchMedia("(max-width: 600px)") : null;
  var launcher, dot, panel, frame, closeButton, url = null, isOpen = false;

  function css(el, styles) { for (var k in styles) el.style[k] = styles[k]; return el; }

  function validUrl(value) {
    try {
      var parsed = new URL(value, window.location.href);
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
      if (!/^\/c\/[^/]+\/$/.test(parsed.pathname)) return null;
      return parsed.href;
    } catch (e) { return null; }
  }

  function layout() {
    if (!panel) return;
    if (PHONE && PHONE.matches) {
      css(panel, { top: "0", left: "0", right: "0", bottom: "0", width: "100%", height: "100%",
                   borderRadius: "0" });
    } else {
      css(panel, { top: "auto", left: "auto", right: "20px", bottom: "92px", width: "380px",
                   height: "min(640px, calc(100vh - 120px))", borderRadius: "12px" });
    }
  }

  function build() {
    if (launcher) return;
    launcher = css(document.createElement("button"), {
      position: "fixed", right: "20px", bottom: "20px", width: "60px", height: "60px",
      borderRadius: "50%", border: "0", background: "#1f5fbf", color: "#fff",
      boxShadow: "0 4px 14px rgba(0,0,0,.25)", cursor: "pointer", zIndex: "2147483000",
      font: "600 26px/60px system-ui, sans-serif", padding: "0",
    });
    launcher.type = "button";
    launcher.id = "handoff-chat-launcher";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "handoff-chat-panel");
    launcher.appendChild(document.createTextNode("\u{1F4AC}"));
    dot = css(document.createElement("span"), {
      position: "absolute", top: "6px", right: "6px", width: "14px", height: "14px",
      borderRadius: "50%", background: "#d93025", border: "2px solid #fff", display: "none",
    });
    dot.id = "handoff-chat-unread";
    dot.setAttribute("aria-hidden", "true");
    launcher.appendChild(dot);
    launcher.addEventListener("click", function () { isOpen ? close() : show(); });

    panel = css(document.createElement("div"), {
      position: "fixed", zIndex: "2147483001", background: "#fff", overflow: "hidden",
      boxShadow: "0 8px 30px rgba(0,0,0,.3)", display: "none",
    });
    panel.id = "handoff-chat-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Chat with support");
    // A slim bar above the frame holds the close button, clear of the chat's own header.
    var bar = css(document.createElement("div"), {
      display: "flex", justifyContent: "flex-end", alignItems: "center", height: "44px",
      padding: "0 6px", background: "#1f5fbf", boxSizing: "border-box",
    });
    closeButton = css(document.createElement("button"), {
      width: "36px", height: "36px", borderRadius: "50%", border: "0", background: "transparent",
      color: "#fff", font: "600 24px/1 system-ui, sans-serif", cursor: "pointer",
    });
    closeButton.type = "button";
    closeButton.setAttribute("aria-label", "Close the chat");
    closeButton.appendChild(document.createTextNode("\u00D7"));
    closeButton.addEventListener("click", close);
    bar.appendChild(closeButton);
    frame = css(document.createElement("iframe"), {
      width: "100%", height: "calc(100% - 44px)", border: "0", display: "block",
    });
    frame.id = "handoff-chat-frame";
    frame.title = "Chat with support";
    panel.appendChild(bar);
    panel.appendChild(frame);
    panel.addEventListener("keydown", function (evt) { if (evt.key === "Escape") close(); });
    document.body.appendChild(panel);
    document.body.appendChild(launcher);
    if (PHONE && PHONE.addEventListener) PHONE.addEventListener("change", layout);
    layout();
    label();
  }

  function label() {
    var unread = dot.style.display !== "none";
    launcher.setAttribute("aria-label", (isOpen ? "Close the chat" : "Open the chat") +
      (unread ? " (new message)" : ""));
  }

  function show() {
    if (!url) return;
    build();
    if (frame.getAttribute("src") !== url) frame.setAttribute("src", url);
    panel.style.display = "block";
    isOpen = true;
    dot.style.display = "none";
    launcher.setAttribute("aria-expanded", "true");
    if (PHONE && PHONE.matches) launcher.style.display = "none";
    label();
    frame.focus();
  }

  function close() {
    if (!panel) return;
    panel.style.display = "none";
    isOpen = false;
    launcher.style.display = "block";
    launcher.setAttribute("aria-expanded", "false");
    label();
    launcher.focus();
  }

  window.addEventListener("message", function (evt) {
    if (!frame || evt.source !== frame.contentWindow) return;
    var data = evt.data || {};
    if (data.source !== "handoff-chat") return;
    if (data.type === "message" && !isOpen) {
      dot.style.display = "block";
      label();
    } else if (data.type === "close" && isOpen) {
      close();
    }
  });

  function ready(fn) {
    if (document.body) fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  window.HandoffChat = {
    version: 1,
    /** Show the conversation behind ``link`` (the customer_url a bot handed out). */
    open: function (link) {
      var checked = validUrl(link);
      if (!checked) throw new Error("HandoffChat.open: not a conversation link: " + link);
      url = checked;
      try { sessionStorage.setItem(STORE, url); } catch (e) { /* storage off */ }
      ready(show);
    },
    close: function () { ready(close); },
    isOpen: function () { return isOpen; },
  };

  // The bubble comes back on the next page of the site, closed.
  try { url = validUrl(sessionStorage.getItem(STORE) || ""); } catch (e) { url = null; }
  if (url) ready(function () { build(); frame.setAttribute("src", url); });
})();

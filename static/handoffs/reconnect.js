// How the console's sockets come back after a drop, without a stampede:
// - full-jitter exponential back-off (a random delay in [0, min(10 s, 0.5 s × 2^n)]),
//   for the htmx ws extension's own retries (abnormal closes) and for the clean closes
//   console.js retries (a restart, 4013 "try again later" while Redis is down);
// - each reconnect resumes from what the page has: the queue's last change number
//   (#queue-seq) or the conversation's last message (data-seq), as ?after=N, so the
//   server sends only what was missed (handoffs/desk/snapshots.py).
(function () {
  "use strict";

  const BASE_MS = 500;
  const CAP_MS = 10000;
  let failures = 0;  // consecutive closes since the last message received

  function delay(retryCount) {
    const n = Math.max(retryCount, failures);
    return Math.random() * Math.min(CAP_MS, BASE_MS * Math.pow(2, n));
  }

  function lastSeq(url) {
    if (url.indexOf("/ws/queue/") >= 0) {
      const marker = document.getElementById("queue-seq");
      return marker && marker.dataset.seq ? Number(marker.dataset.seq) : null;
    }
    if (url.indexOf("/ws/conversations/") >= 0) {
      // The last message before the first gap: messages can arrive out of order (a
      // message this page posted is shown from its answer before earlier ones arrive by
      // the socket), and resuming after the highest would skip the ones in between.
      const seqs = [];
      document.querySelectorAll("#messages > .msg[data-seq]").forEach(function (el) {
        const seq = Number(el.dataset.seq);
        if (!isNaN(seq)) seqs.push(seq);
      });
      if (!seqs.length) return null;
      seqs.sort(function (a, b) { return a - b; });
      let last = seqs[0];
      for (let i = 1; i < seqs.length && seqs[i] <= last + 1; i++) last = Math.max(last, seqs[i]);
      return last;
    }
    return null;
  }

  function withAfter(url) {
    const seq = lastSeq(url);
    if (seq === null || isNaN(seq)) return url;
    const clean = url.replace(/([?&])after=\d+(&|$)/, "$1").replace(/[?&]$/, "");
    return clean + (clean.indexOf("?") >= 0 ? "&" : "?") + "after=" + seq;
  }

  window.HandoffReconnect = {
    nextDelay: function () { failures += 1; return delay(failures); },
    delay: delay,
    withAfter: withAfter,
  };

  if (window.htmx) {
    htmx.config.wsReconnectDelay = function (retryCount) { failures += 1; return delay(retryCount); };
    htmx.createWebSocket = function (url) {
      const socket = new WebSocket(withAfter(url), []);
      socket.binaryType = htmx.config.wsBinaryType || "blob";
      return socket;
    };
  }
  // The back-off starts over once the server has sent something: a socket refused with
  // 4013 (Redis down) opens and closes at once, and must keep backing off.
  document.addEventListener("htmx:wsAfterMessage", function () { failures = 0; });
})();

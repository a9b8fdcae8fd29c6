// Offers on every console page: the countdown of each offer pushed over the desk
// socket (/ws/desk/), and a sound/desktop alert when a new one arrives. The server
// ends an offer (timeout, decline, another router): this file only counts down and
// sets textContent; the panel itself is always server-rendered.
(function () {
  "use strict";

  const seen = new Set();

  function countdown() {
    const now = Date.now();
    document.querySelectorAll(".offer .countdown[data-until]").forEach(function (el) {
      const left = Math.max(0, Math.round((Number(el.dataset.until) - now) / 1000));
      el.textContent = left + "s";
      const offer = el.closest(".offer");
      if (!offer) return;
      offer.classList.toggle("is-expiring", left <= 10);
      if (left === 0) {
        const accept = offer.querySelector("button.accept");
        if (accept) accept.disabled = true;
        el.textContent = "timed out";
      }
    });
  }

  function announce() {
    document.querySelectorAll(".offer[data-offer]").forEach(function (offer) {
      if (seen.has(offer.dataset.offer)) return;
      seen.add(offer.dataset.offer);
      const alerts = window.handoffAlerts;
      if (alerts && alerts.enabled() && alerts.permission() === "granted") {
        const title = offer.querySelector("h2");
        new Notification(title ? title.textContent : "New offer", { tag: "offer-" + offer.dataset.offer });
      }
    });
  }

  document.addEventListener("htmx:wsAfterMessage", function () { announce(); countdown(); });
  document.addEventListener("DOMContentLoaded", function () {
    countdown();
    setInterval(countdown, 1000);
  });
})();

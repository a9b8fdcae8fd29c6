// The widget's demo page (/demo/widget/): open a chat link in the widget. A file, not an
// inline script: the Content-Security-Policy allows none.
document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("open-link").addEventListener("submit", function (evt) {
    evt.preventDefault();
    window.HandoffChat.open(document.getElementById("chat-link").value);
  });
  document.querySelectorAll(".open-chat").forEach(function (button) {
    button.addEventListener("click", function () { window.HandoffChat.open(button.dataset.link); });
  });
});

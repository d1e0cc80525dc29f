// claimsmith dashboard, import page: a form with data-progress="ID" is sent
// with XMLHttpRequest so the upload shows its progress in #ID (a
// <progress>, and a status line for screen readers); the answer (the
// preview, or the page with a message) replaces the page. Without script
// the form posts normally. Loaded as a file (the CSP allows no inline
// script).
"use strict";
(function () {
  function wire(form) {
    var box = document.getElementById(form.getAttribute("data-progress"));
    if (!box || !window.FormData || !window.XMLHttpRequest) { return; }
    var bar = box.querySelector("progress");
    var text = box.querySelector("[role=status]");
    form.addEventListener("submit", function (ev) {
      if (ev.defaultPrevented) { return; }
      ev.preventDefault();
      var data = new FormData(form);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      var csrf = form.querySelector("input[name=csrf]");
      if (csrf) { xhr.setRequestHeader("X-CSRF-Token", csrf.value); }
      box.hidden = false;
      bar.value = 0;
      text.textContent = "Sending…";
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var pct = Math.round(100 * e.loaded / e.total);
          bar.value = pct;
          text.textContent = "Sent " + pct + "% (" + Math.round(e.loaded / 1024) + " of " + Math.round(e.total / 1024) + " KiB)";
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.removeAttribute("value"); // indeterminate while the server works
        text.textContent = "Sent; the server is checking the document…";
      });
      xhr.addEventListener("load", function () {
        var url = xhr.responseURL || form.action;
        if (xhr.status === 401) { window.location.reload(); return; }
        // The answer is a whole page: show it, and its address.
        document.open();
        document.write(xhr.responseText);
        document.close();
        if (url !== window.location.href) { history.pushState(null, "", url); }
      });
      xhr.addEventListener("error", function () {
        text.textContent = "Sending failed: is the server reachable? Nothing was changed.";
        form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      });
      xhr.send(data);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-progress]").forEach(wire);
  });
})();

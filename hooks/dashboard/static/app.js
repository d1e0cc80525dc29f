// claimsmith dashboard: a little progressive behaviour on server-rendered
// pages. Everything works without it; it only adds search-as-you-type and
// confirmations. Loaded as a file (the CSP allows no inline script).
"use strict";
(function () {
  // Search as you type: an <input data-search="URL" data-target="ID">
  // fetches URL?q=…&fragment=1 (debounced) and puts the returned rows into
  // the element #ID. The server escapes everything it renders.
  function wireSearch(input) {
    var target = document.getElementById(input.getAttribute("data-target"));
    var status = document.getElementById(input.getAttribute("data-status") || "");
    if (!target) { return; }
    var timer = null, seq = 0;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var mine = ++seq;
        var form = input.form;
        var params = new URLSearchParams(form ? new FormData(form) : undefined);
        params.set(input.name, input.value);
        params.delete("page");
        params.set("fragment", "1");
        fetch(input.getAttribute("data-search") + "?" + params.toString(), {
          credentials: "same-origin",
          headers: { "X-Requested-With": "fetch" }
        }).then(function (res) {
          if (res.status === 401) { window.location.reload(); return null; }
          return res.text().then(function (t) { return { ok: res.ok, text: t }; });
        }).then(function (r) {
          if (!r || mine !== seq) { return; }
          if (!r.ok) { if (status) { status.textContent = r.text; } return; }
          target.innerHTML = r.text;
          params.delete("fragment");
          history.replaceState(null, "", window.location.pathname + "?" + params.toString());
          var count = target.querySelector("[data-count]");
          if (status && count) { status.textContent = count.getAttribute("data-count"); }
        }).catch(function () {
          if (status) { status.textContent = "Search failed: is the server reachable?"; }
        });
      }, 200);
    });
  }

  // Forms with data-confirm ask before a destructive submit.
  function wireConfirm(form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-search]").forEach(wireSearch);
    document.querySelectorAll("form[data-confirm]").forEach(wireConfirm);
    // Move focus to the first error so keyboard and screen-reader users
    // land on what needs fixing.
    var err = document.querySelector("[aria-invalid=true]") || document.querySelector(".error[role=alert]");
    if (err) { if (!err.hasAttribute("tabindex") && err.tagName !== "INPUT" && err.tagName !== "TEXTAREA") { err.setAttribute("tabindex", "-1"); } err.focus(); }
  });
})();

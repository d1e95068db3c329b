// Keeps the health page current and sends its actions (pause, resume, restart) as POSTs that
// carry the page's CSRF token. No library: the page must work offline.
(function () {
  "use strict";
  const root = document.body.dataset.root || "";
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const live = document.getElementById("live");
  const note = document.getElementById("refresh-note");
  const flash = document.getElementById("flash");
  const REFRESH_MS = 5000;

  function say(text, isError) {
    flash.textContent = text;
    flash.className = isError ? "error" : "";
  }

  async function refresh() {
    try {
      const answer = await fetch(root + "/live", { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) { throw new Error("HTTP " + answer.status); }
      live.innerHTML = await answer.text();
      note.textContent = "updated " + new Date().toLocaleTimeString();
      note.className = "muted";
    } catch (error) {
      note.textContent = "refresh failed (" + error.message + ")";
      note.className = "stale";
    }
  }

  async function act(button) {
    const question = button.dataset.confirm;
    if (question && !window.confirm(question)) { return; }
    button.disabled = true;
    try {
      const answer = await fetch(root + "/" + button.dataset.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": token },
      });
      const body = await answer.json();
      if (!answer.ok) { throw new Error(body.error || "HTTP " + answer.status); }
      say(body.action + (body.queues.length ? ": " + body.queues.join(", ") : ""), false);
    } catch (error) {
      say("Action failed: " + error.message, true);
    }
    await refresh();
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (button) { event.preventDefault(); act(button); }
  });
  window.setInterval(refresh, REFRESH_MS);
})();

// belfry's dashboard: live updates without a reload. An element with `data-live` is fetched
// again every `data-every` seconds (with the `X-Belfry-Live` header, the server sends only
// its part) and replaced, unless someone is using it (focus inside) or the tab is hidden.
// Without this script every page still works; it only saves the reload.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live || !live.dataset.live) return;
  const every = Math.max(2, Number(live.dataset.every) || 5) * 1000;
  let stopped = false;
  async function refresh() {
    if (stopped || document.hidden || live.contains(document.activeElement)) return;
    try {
      const r = await fetch(live.dataset.live, {
        headers: { "X-Belfry-Live": "1" },
        credentials: "same-origin",
        redirect: "error",
      });
      if (r.status === 401) {
        stopped = true;
        const p = document.createElement("p");
        p.className = "problem";
        p.setAttribute("role", "alert");
        p.textContent = "Your session has ended: reload the page to log in again.";
        live.prepend(p);
        return;
      }
      if (!r.ok) return;
      const html = await r.text();
      if (!live.contains(document.activeElement)) live.innerHTML = html;
      live.dataset.updated = String(Date.now());
    } catch (_) {
      // The server is restarting or the network is down: try again at the next tick.
    }
  }
  setInterval(refresh, every);
})();

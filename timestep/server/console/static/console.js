// Timestep console: live events over SSE and live refresh of server-rendered parts. No build.
"use strict";

function refresh(el, every) {
  // Replace el's content with the fragment at data-refresh, every `every` ms, until the
  // fragment says the run finished (the live part of a run page) or the page is left.
  const url = el.dataset.refresh;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected || !response.ok) return;
      const html = await response.text();
      if (html !== el.dataset.last) {
        // Never pull a form from under the user: not while a control of this part has the
        // focus, nor once something was typed in it.
        if (busyWithForm(el)) return;
        el.innerHTML = html;
        el.dataset.last = html;
      }
      const status = el.querySelector("#run-status");
      if (status && !["PENDING", "ENQUEUED"].includes(status.textContent.trim())) clearInterval(timer);
    } finally {
      busy = false;
    }
  }, every);
}

function busyWithForm(el) {
  const active = document.activeElement;
  if (active && el.contains(active) && ["INPUT", "BUTTON", "SELECT", "TEXTAREA"].includes(active.tagName)) return true;
  return Array.from(el.querySelectorAll("input:not([type=hidden])")).some((i) => i.value !== i.defaultValue);
}

function describe(event) {
  if (event.type === "run_item_stream_event") {
    const raw = event.raw_item || {};
    const what = raw.name ? ` ${raw.name}` : "";
    return `${event.name}${what}${event.agent ? " (" + event.agent + ")" : ""}`;
  }
  if (event.type === "agent_updated_stream_event") return `agent: ${event.agent && event.agent.name || event.agent}`;
  if (event.type === "raw_response_event" || (event.type || "").startsWith("response.")) {
    const data = event.data || event;
    return data.type || event.type;
  }
  return event.type || "event";
}

function follow(list) {
  const state = document.getElementById("events-state");
  const source = new EventSource(list.dataset.source);
  let count = 0;
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.textContent = describe(event);
    item.dataset.type = event.type || "";
    list.appendChild(item);
    count += 1;
    if (state) state.textContent = `(${count} so far, live)`;
  };
  source.addEventListener("end", (message) => {
    const end = JSON.parse(message.data);
    source.close();
    if (state) state.textContent = `(${count}; ended: ${end.status})`;
    list.dataset.ended = end.status || "";
    const live = document.getElementById("run-live");
    if (live && live.dataset.refresh) {
      // One last refresh: the final output and the full timeline.
      fetch(live.dataset.refresh, { credentials: "same-origin" })
        .then((r) => r.text())
        .then((html) => { live.innerHTML = html; });
    }
  });
  source.onerror = () => { if (state && source.readyState === EventSource.CONNECTING) state.textContent = "(reconnecting…)"; };
}

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.getElementById("run-rows");
  if (rows && rows.dataset.refresh) refresh(rows, 2000);
  const live = document.getElementById("run-live");
  if (live && live.dataset.refresh) refresh(live, 1000);
  const events = document.getElementById("events");
  if (events) follow(events);
  const approvals = document.getElementById("approvals");
  if (approvals) {
    setInterval(() => {
      // Reload the approvals page when idle, so new calls appear (never while typing).
      const reading = approvals.querySelector("details[open]");
      if (!document.hidden && !reading && !busyWithForm(approvals)) location.reload();
    }, Number(approvals.dataset.refreshPage));
  }
});

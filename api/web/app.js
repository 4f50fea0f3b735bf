// ccpbx wallboard: renders the boards of /api/v1/events (Server-Sent
// Events). Durations tick locally every second from the server's clock;
// the server pushes a new board within a fraction of a second of a change.
"use strict";

let board = null;
let canWrite = false;
let offset = 0; // server time - local time, seconds

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const k of kids) e.append(k);
  return e;
}

const now = () => Date.now() / 1000 + offset;

function dur(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(r)}` : `${m}:${pad(r)}`;
}

function kv(label, value) {
  return el("div", { class: "kv" }, el("span", {}, label), el("b", {}, value));
}

function renderQueues() {
  const box = $("#queues");
  box.replaceChildren();
  const target = board.service_level_target;
  for (const q of board.queues) {
    const waitedLong = q.waiting > 0 && now() - (board.time - q.longest_wait) > target;
    const cls = q.waiting === 0 ? "calm" : waitedLong ? "late" : "busy";
    const sl = q.service_level == null ? "—" : Math.round(q.service_level * 100) + "%";
    const longest = q.waiting > 0 ? el("b", { class: "tick", "data-from": String(board.time - q.longest_wait) }, "") : el("b", {}, "—");
    box.append(el("div", { class: `card queue ${cls}`, "data-queue": q.name },
      el("div", { class: "kv" }, el("span", {}, q.name), el("span", {}, `${q.agents_available} available`)),
      el("div", { class: "big waiting", title: "callers waiting" }, String(q.waiting)),
      el("div", { class: "kv" }, el("span", {}, "Longest wait"), longest),
      kv(`Service level (${target}s)`, sl),
      kv("Answered / abandoned", `${q.answered} / ${q.abandoned}`)));
  }
}

function renderCallers() {
  const body = $("#callers tbody");
  body.replaceChildren();
  for (const c of board.callers) {
    const who = c.cid_name && c.cid_name !== c.cid_number ? `${c.cid_number} ${c.cid_name}` : c.cid_number;
    body.append(el("tr", { "data-caller": c.cid_number, "data-uuid": c.uuid },
      el("td", {}, c.queue), el("td", {}, who || "unknown"), el("td", {}, c.state),
      el("td", { class: "num tick", "data-from": String(c.joined) }, "")));
  }
  $("#callers").hidden = board.callers.length === 0;
  $("#no-callers").hidden = board.callers.length !== 0;
}

const statuses = [["Available", "Log in"], ["On Break", "Break"], ["Logged Out", "Log out"]];

async function setStatus(agent, status) {
  try {
    const r = await fetch(`/api/v1/agents/${encodeURIComponent(agent)}/status`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ status }),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) showError(`${agent}: ${j.error || r.statusText}`);
  } catch (e) { showError(String(e)); }
}

function agentClass(a) {
  const s = a.status === "On Break" ? "s-break" : a.status === "Logged Out" ? "s-out" : "s-available";
  const t = a.state === "In a queue call" ? " t-call" : a.state === "Receiving" ? " t-ring" : "";
  return s + t;
}

function renderAgents() {
  const box = $("#agents");
  box.replaceChildren();
  for (const a of board.agents) {
    const card = el("div", { class: `card agent ${agentClass(a)}`, "data-agent": a.name },
      el("div", { class: "name" }, a.name),
      el("div", { class: "status" }, a.status),
      el("div", { class: "state" }, a.state),
      el("div", { class: "since tick", "data-from": String(a.since) }, ""),
      el("div", { class: "kv" }, el("span", {}, a.queues.join(", ")), el("span", {})));
    if (canWrite) {
      const acts = el("div", { class: "actions" });
      for (const [st, label] of statuses) {
        const b = el("button", { type: "button", "data-status": st }, label);
        b.setAttribute("aria-pressed", String(a.status === st));
        b.addEventListener("click", () => setStatus(a.name, st));
        acts.append(b);
      }
      card.append(acts);
    }
    box.append(card);
  }
}

function tick() {
  const t = now();
  $("#clock").textContent = new Date(t * 1000).toLocaleTimeString();
  for (const e of document.querySelectorAll(".tick")) {
    const from = Number(e.dataset.from);
    e.textContent = from > 0 ? dur(t - from) : "—";
  }
}

function render() {
  renderQueues();
  renderCallers();
  renderAgents();
  tick();
}

let errTimer = 0;
function showError(msg) {
  const e = $("#error");
  e.textContent = msg;
  e.hidden = false;
  clearTimeout(errTimer);
  errTimer = setTimeout(() => { e.hidden = true; }, 6000);
}

function connect() {
  const es = new EventSource("/api/v1/events");
  const conn = $("#conn");
  es.addEventListener("hello", (ev) => {
    canWrite = !!JSON.parse(ev.data).can_write;
    conn.textContent = "live";
    conn.className = "conn up";
  });
  es.addEventListener("board", (ev) => {
    board = JSON.parse(ev.data);
    offset = board.time - Date.now() / 1000;
    render();
  });
  es.onerror = () => {
    // EventSource reconnects by itself; the next board resyncs everything.
    conn.textContent = "reconnecting…";
    conn.className = "conn down";
  };
}

connect();
setInterval(tick, 1000);

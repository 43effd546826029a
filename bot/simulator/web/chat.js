/* The chat page: one person's conversation with the CRM app, as WeCom shows it.
   Messages go out through /sim/say and /sim/click (encrypted callbacks to the real bot);
   everything sent to the person arrives live over /sim/events (server-sent events). */
"use strict";

const state = { user: null, people: [], source: null, last: 0 };
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const resp = await fetch(path, init);
  return { status: resp.status, data: await resp.json().catch(() => ({})) };
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeOf(iso) {
  const d = new Date(iso);
  return d.toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", month: "numeric",
    day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function renderCard(payload) {
  const card = el("div", "card");
  card.dataset.taskId = payload.task_id || "";
  card.appendChild(el("div", "card-title", (payload.main_title || {}).title || ""));
  if (payload.sub_title_text) card.appendChild(el("div", "card-sub", payload.sub_title_text));
  const rows = payload.horizontal_content_list || [];
  if (rows.length) {
    const list = el("dl", "card-rows");
    for (const row of rows) {
      list.appendChild(el("dt", "", row.keyname || ""));
      list.appendChild(el("dd", "", row.value || ""));
    }
    card.appendChild(list);
  }
  const buttons = payload.button_list || [];
  if (buttons.length) {
    const bar = el("div", "card-buttons");
    for (const b of buttons) {
      const button = el("button", `card-button style-${b.style || 1}`, b.text || "");
      button.type = "button";
      button.addEventListener("click", () => tap(payload.task_id, b.key, button));
      bar.appendChild(button);
    }
    card.appendChild(bar);
  }
  return card;
}

function bubbleFor(entry) {
  if (entry.dir === "in") {
    const text = entry.kind === "tap" ? `点击了「${entry.text}」` : entry.text;
    return el("div", `bubble me${entry.kind === "tap" ? " tap" : ""}`, text);
  }
  const kind = entry.msgtype || entry.kind;
  const payload = entry.payload || {};
  if (kind === "template_card") return renderCard(payload);
  if (kind === "markdown") {
    const node = el("div", "bubble bot markdown");
    node.innerHTML = renderMarkdown(entry.content || "");
    return node;
  }
  if (kind === "image" && payload.media_id) {
    const node = el("div", "bubble bot image");
    const img = el("img");
    img.src = `/sim/media/${encodeURIComponent(payload.media_id)}`;
    img.alt = "图片";
    node.appendChild(img);
    return node;
  }
  if (kind === "text") return el("div", "bubble bot", entry.content || "");
  return el("div", "bubble bot", entry.text || `[${kind}]`);
}

function applyUpdate(entry) {
  const cards = document.querySelectorAll(`.card[data-task-id="${CSS.escape(entry.task_id)}"]`);
  for (const card of cards) {
    if (entry.template_card) {
      card.replaceWith(renderCard(entry.template_card));
    } else {
      for (const b of card.querySelectorAll("button")) b.disabled = true;
      const label = (entry.button || {}).replace_name;
      if (label) card.querySelector(".card-buttons").replaceChildren(el("span", "card-done", label));
    }
  }
}

function show(entry) {
  state.last = Math.max(state.last, entry.id);
  if (entry.dir === "update") { applyUpdate(entry); return; }
  const row = el("div", `row ${entry.dir === "in" ? "mine" : "theirs"}`);
  row.dataset.entry = entry.id;
  if (entry.dir !== "in") row.appendChild(el("div", "avatar", "CRM"));
  const column = el("div", "column");
  column.appendChild(el("div", "meta", timeOf(entry.at)));
  column.appendChild(bubbleFor(entry));
  row.appendChild(column);
  const box = $("messages");
  box.appendChild(row);
  box.scrollTop = box.scrollHeight;
}

async function choose(userid) {
  if (state.source) state.source.close();
  state.user = userid;
  state.last = 0;
  localStorage.setItem("wecrm-demo-user", userid);
  const person = state.people.find((p) => p.userid === userid) || {};
  $("whoami").textContent = `你是 ${person.name || userid}（${person.position || person.role || ""}）`;
  for (const li of document.querySelectorAll("#people li")) {
    li.classList.toggle("active", li.dataset.userid === userid);
  }
  $("messages").replaceChildren();
  const { data } = await api(`/sim/history?user=${encodeURIComponent(userid)}&after=0`);
  for (const entry of data.entries || []) show(entry);
  listen();
}

function listen() {
  const user = state.user;
  const source = new EventSource(
    `/sim/events?user=${encodeURIComponent(user)}&after=${state.last}`);
  source.onmessage = (event) => {
    if (state.user !== user) return;
    const entry = JSON.parse(event.data);
    if (entry.id > state.last) show(entry);
  };
  state.source = source;
}

async function say(text) {
  if (!text.trim() || !state.user) return;
  const { status, data } = await api("/sim/say", { from: state.user, text });
  if (status !== 200 || data.status !== 200) notice(`消息没有送达（HTTP ${data.status || status}）`);
}

async function tap(taskId, key, button) {
  button.disabled = true;
  const { status, data } = await api("/sim/click", { from: state.user, task_id: taskId, key });
  if (status !== 200 || data.status !== 200) {
    button.disabled = false;
    notice(data.error || `按钮没有送达（HTTP ${data.status || status}）`);
  }
}

function notice(text) {
  const row = el("div", "row system");
  row.appendChild(el("div", "system-note", text));
  $("messages").appendChild(row);
}

async function refreshClock(view) {
  const data = view || (await api("/sim/clock")).data;
  $("clock").textContent = data.local || "—";
  for (const b of document.querySelectorAll("[data-move]")) b.disabled = !data.movable;
}

async function moveClock(body) {
  const { status, data } = await api("/sim/clock", body);
  if (status !== 200) { notice(data.error || "时间没有移动"); return; }
  refreshClock(data);
  notice(`时间已移到 ${data.local}`);
  await api("/sim/settle", {});
}

async function start() {
  const { data } = await api("/sim/people");
  state.people = data.people || [];
  const list = $("people");
  for (const p of state.people) {
    const li = el("li");
    li.dataset.userid = p.userid;
    li.appendChild(el("span", "avatar small", (p.name || p.userid).slice(-2)));
    const text = el("span", "who");
    text.appendChild(el("span", "name", p.name));
    text.appendChild(el("span", "role", `${p.position || ""} · ${(p.departments || []).join("、")}`));
    li.appendChild(text);
    li.addEventListener("click", () => choose(p.userid));
    list.appendChild(li);
  }
  const wanted = new URLSearchParams(location.search).get("as")
    || localStorage.getItem("wecrm-demo-user") || "zhangwei";
  const first = state.people.some((p) => p.userid === wanted) ? wanted : (state.people[0] || {}).userid;
  if (first) await choose(first);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("input").value;
    $("input").value = "";
    say(text);
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  for (const chip of document.querySelectorAll("#chips button")) {
    chip.addEventListener("click", () => say(chip.textContent));
  }
  for (const b of document.querySelectorAll("[data-move]")) {
    b.addEventListener("click", () => moveClock(JSON.parse(b.dataset.move)));
  }
  refreshClock();
  setInterval(refreshClock, 15000);
}

start();

// The sandbox page: renders each rep's phone from /api/state (pushed by server-sent events,
// polled as a fallback) the way WeCom and DingTalk would show it. Every button posts to the
// sandbox API, which makes the simulated platform send leadbot the real callback.
// Everything is built with DOM calls and textContent: lead data is never parsed as HTML.
"use strict";

const state = { data: null, phoneCache: new Map(), groupCache: "", busy: false };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok && resp.status !== 502) throw new Error((data && (data.error || data.message)) || resp.statusText);
  return data;
}

// Words of the page in the sandbox's language, once tour.js has loaded them from the catalogue;
// "{name}" placeholders are filled from `params`.
function label(key, fallback, params) {
  const text = (window.sandboxLabels && window.sandboxLabels[key]) || fallback;
  return text.replace(/\{(\w+)\}/g, (m, k) => (params && k in params ? String(params[k]) : m));
}

// The phones were drawn before the words arrived: draw them again in the sandbox's language.
window.addEventListener("sandbox:labels", () => {
  state.phoneCache.clear();
  state.groupCache = "";
  document.getElementById("phones").replaceChildren();
  if (state.data) render(state.data);
});

function safeUrl(url) {
  return /^https?:\/\//i.test(url || "") ? url : null;
}

// Plain text with its links made clickable (the text-mode notification's H5 link).
function linkify(text) {
  const out = [];
  const re = /(https?:\/\/[^\s<>"']+)/g;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("a", { href: m[1], target: "_blank", rel: "noopener", class: "h5-link" }, m[1]));
    last = m.index + m[1].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// The little markdown both platforms render: headings, bold, links, quotes, line breaks.
function inlineMd(text) {
  const out = [];
  const re = /\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)|<font[^>]*>([^<]*)<\/font>|(https?:\/\/[^\s<>"')]+)/g;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h("b", {}, m[1]));
    else if (m[2] !== undefined) {
      const url = safeUrl(m[3]);
      out.push(url ? h("a", { href: url, target: "_blank", rel: "noopener", class: "h5-link" }, m[2]) : m[2]);
    } else if (m[4] !== undefined) out.push(h("span", { class: "md-font" }, m[4]));
    else out.push(h("a", { href: m[5], target: "_blank", rel: "noopener", class: "h5-link" }, m[5]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function markdown(text) {
  const box = h("div", { class: "md" });
  for (const raw of String(text || "").split(/\n/)) {
    const line = raw.trimEnd();
    if (!line.trim()) continue;
    let m;
    if ((m = line.match(/^(#{1,6})\s+(.*)$/))) box.append(h("div", { class: "md-h" }, inlineMd(m[2])));
    else if ((m = line.match(/^>\s?(.*)$/))) box.append(h("div", { class: "md-quote" }, inlineMd(m[1])));
    else if ((m = line.match(/^[-*]\s+(.*)$/))) box.append(h("div", { class: "md-li" }, "• ", inlineMd(m[1])));
    else box.append(h("div", {}, inlineMd(line)));
  }
  return box;
}

function parseJson(text, fallback) {
  try { const v = JSON.parse(text || ""); return v === null || v === undefined ? fallback : v; }
  catch (e) { return fallback; }
}

async function tap(btn, platform, userid, key, ref) {
  btn.disabled = true;
  btn.classList.add("pressed");
  try {
    await api("POST", "/api/tap", { platform, userid, key, ref });
  } catch (e) {
    toast("tap failed: " + e.message);
  } finally {
    await refresh();
  }
}

// ---- WeCom template_card, as the WeCom client draws it ---------------------------------------

const DESC_COLOR = { 0: "grey", 1: "black", 2: "red", 3: "green" };

function wecomCard(msg, phone) {
  const c = msg.card || {};
  const card = h("div", { class: "wc-card" + (msg.recalled ? " recalled" : ""),
    dataset: { task: msg.task_id || "", kind: "wecom_card" } });
  if (msg.recalled) { card.append(h("div", { class: "muted" }, label("sandbox.phone.recalled", "此消息已撤回"))); return card; }
  const src = c.source || {};
  card.append(h("div", { class: "wc-source" }, h("span", { class: "wc-app" }, "leadbot"),
    src.desc ? h("span", { class: "wc-source-desc " + (DESC_COLOR[src.desc_color] || "grey") }, src.desc) : null));
  const mt = c.main_title || {};
  if (mt.title) card.append(h("div", { class: "wc-title" }, mt.title));
  if (mt.desc) card.append(h("div", { class: "wc-desc" }, mt.desc));
  const em = c.emphasis_content;
  if (em && (em.title || em.desc)) {
    card.append(h("div", { class: "wc-emphasis" }, h("div", { class: "wc-em-title" }, em.title || ""),
      h("div", { class: "wc-em-desc" }, em.desc || "")));
  }
  const q = c.quote_area;
  if (q && (q.title || q.quote_text)) {
    card.append(h("div", { class: "wc-quote" }, q.title ? h("div", { class: "wc-quote-title" }, q.title) : null,
      h("div", {}, q.quote_text || "")));
  }
  if (c.sub_title_text) card.append(h("div", { class: "wc-sub" }, c.sub_title_text));
  const rows = c.horizontal_content_list || [];
  if (rows.length) {
    const list = h("div", { class: "wc-hlist" });
    for (const r of rows) {
      const url = r.type === 1 ? safeUrl(r.url) : null;
      list.append(h("div", { class: "wc-hrow" }, h("span", { class: "wc-key" }, r.keyname || ""),
        url ? h("a", { href: url, target: "_blank", rel: "noopener", class: "wc-val" }, r.value || "")
            : h("span", { class: "wc-val" }, r.value || "")));
    }
    card.append(list);
  }
  for (const j of c.jump_list || []) {
    const url = safeUrl(j.url);
    card.append(h("div", { class: "wc-jump" }, url ? h("a", { href: url, target: "_blank", rel: "noopener" }, j.title) : j.title));
  }
  const link = c.card_action && safeUrl(c.card_action.url);
  if (link) card.append(h("a", { class: "wc-detail h5-link", href: link, target: "_blank", rel: "noopener" }, label("details", "查看详情") + " ›"));
  const buttons = c.button_list || [];
  if (msg.replace_name) {
    card.append(h("div", { class: "wc-replaced", dataset: { replaced: "1" } }, msg.replace_name));
  } else if (buttons.length) {
    const bar = h("div", { class: "wc-buttons" });
    for (const b of buttons) {
      const action = (b.key || "").split(":")[0];
      const style = "wc-btn s" + (b.style || 1);
      if (b.type === 1 && safeUrl(b.url)) {
        bar.append(h("a", { class: style, href: b.url, target: "_blank", rel: "noopener" }, b.text));
      } else {
        bar.append(h("button", { class: style, dataset: { action, key: b.key || "" },
          onclick: (ev) => tap(ev.currentTarget, "wecom", phone.userid, b.key, msg.task_id) }, b.text));
      }
    }
    card.append(bar);
  }
  return card;
}

// ---- DingTalk interactive card (the leadbot template's cardParamMap) -------------------------

function dingtalkCard(msg, phone) {
  const p = msg.params || {};
  const card = h("div", { class: "dt-card tone-" + (p.tone || "default"),
    dataset: { track: msg.out_track_id, kind: "dingtalk_card", state: p.state || "" } });
  const badges = parseJson(p.badges, []);
  card.append(h("div", { class: "dt-head" }, h("span", { class: "dt-app" }, "leadbot"),
    p.state_text ? h("span", { class: "dt-state" }, p.state_text) : null));
  if (p.title) card.append(h("div", { class: "dt-title" }, p.title));
  if (p.subtitle) card.append(h("div", { class: "dt-sub" }, p.subtitle));
  if (badges.length) card.append(h("div", { class: "dt-badges" }, badges.map((b) => h("span", { class: "dt-badge" }, b))));
  const fields = parseJson(p.fields, []);
  if (fields.length) {
    card.append(h("div", { class: "dt-fields" }, fields.map((f) =>
      h("div", { class: "dt-field" + (f.alert ? " alert" : "") }, h("span", { class: "dt-label" }, f.label || ""),
        h("span", { class: "dt-value" }, f.value || "")))));
  }
  if (p.body) card.append(h("div", { class: "dt-body" }, markdown(p.body)));
  const buttons = parseJson(p.buttons, []);
  if (buttons.length && p.has_buttons !== "false") {
    const bar = h("div", { class: "dt-buttons" });
    for (const b of buttons) {
      const action = (b.key || "").split(":")[0];
      const cls = "dt-btn " + (b.style || "default");
      if (!b.key && safeUrl(b.url)) {
        bar.append(h("a", { class: cls, href: b.url, target: "_blank", rel: "noopener" }, b.text));
      } else {
        bar.append(h("button", { class: cls, dataset: { action, key: b.key || "" },
          onclick: (ev) => tap(ev.currentTarget, "dingtalk", phone.userid, b.key, msg.out_track_id) }, b.text));
      }
    }
    card.append(bar);
  }
  const foot = [];
  if (p.footer) foot.push(h("span", {}, p.footer));
  if (safeUrl(p.link)) foot.push(h("a", { href: p.link, target: "_blank", rel: "noopener", class: "h5-link" }, label("details", "详情") + " ›"));
  if (foot.length) card.append(h("div", { class: "dt-foot" }, foot));
  return card;
}

function actionCard(msg) {
  // As for markdown: the title is the preview in the conversation list, the card shows the text.
  const box = h("div", { class: "dt-action", dataset: { kind: "action_card" }, title: msg.title || "" });
  box.append(markdown(msg.text));
  const buttons = msg.buttons || [];
  if (buttons.length) {
    box.append(h("div", { class: "dt-buttons" }, buttons.map((b) => safeUrl(b.url)
      ? h("a", { class: "dt-btn default", href: b.url, target: "_blank", rel: "noopener" }, b.title)
      : h("span", { class: "dt-btn default" }, b.title))));
  }
  return box;
}

function bubble(msg, phone) {
  let body;
  switch (msg.type) {
    case "wecom_card": body = wecomCard(msg, phone); break;
    case "dingtalk_card": body = dingtalkCard(msg, phone); break;
    case "text": body = h("div", { class: "bubble text", dataset: { kind: "text" } }, linkify(msg.text || "")); break;
    // DingTalk shows a markdown message's title only in the conversation list and the
    // notification ("首屏会话透出的展示内容", open.dingtalk.com custom robot message types), not
    // in the bubble: showing it here too printed every group message's headline twice.
    case "markdown": body = h("div", { class: "bubble", dataset: { kind: "markdown" }, title: msg.title || "" },
      markdown(msg.text)); break;
    case "textcard": body = h("div", { class: "bubble textcard", dataset: { kind: "textcard" } },
      h("div", { class: "md-h" }, msg.title || ""), h("div", {}, msg.text || ""),
      safeUrl(msg.url) ? h("a", { href: msg.url, target: "_blank", rel: "noopener", class: "h5-link" }, msg.btntxt || "详情") : null); break;
    case "action_card": body = actionCard(msg); break;
    case "system": body = h("div", { class: "system" }, msg.text); break;
    case "image": body = imageBubble(msg); break;
    case "failure": body = failureBubble(msg); break;
    default: body = h("div", { class: "bubble" }, msg.text || "");
  }
  return h("div", { class: "msg" }, h("div", { class: "msg-time" }, msg.time || ""),
    h("div", { class: "msg-row" }, msg.type === "system" || msg.type === "failure" ? null
      : h("div", { class: "avatar " + phone.platform }, "L"), body));
}

// A robot's image message (the daily digest chart) as the picture; only data: URLs of PNG/JPEG,
// which the sandbox builds from the message itself (nothing is fetched).
function imageBubble(msg) {
  const src = /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/=]+$/.test(msg.src || "") ? msg.src : null;
  return h("div", { class: "bubble image", dataset: { kind: "image" } },
    src ? h("img", { src, alt: "image", class: "msg-img" }) : h("span", { class: "muted" }, "[图片 image]"));
}

// What leadbot could not deliver to this phone (dead letter) or is retrying after an error: the
// user sees it where the message was meant to appear, not only in the terminal's log.
const FAILED_KIND = { card: "卡片", card_update: "卡片更新", text: "文本", robot: "群消息" };
function failureBubble(msg) {
  const dead = msg.state === "dead";
  return h("div", { class: "failure " + (dead ? "dead" : "retrying"), dataset: { kind: "failure", state: msg.state } },
    h("div", { class: "failure-head" }, dead ? "⚠ 发送失败 delivery failed" : "↻ 重试中 retrying",
      " · ", FAILED_KIND[msg.kind] || msg.kind, msg.lead_id ? " · 线索 #" + msg.lead_id : "",
      dead ? "" : ` · ${msg.attempts} 次`),
    h("div", { class: "failure-error" }, msg.error || ""));
}

function renderFailures(f) {
  const el = document.getElementById("failures");
  if (!el || !f) return;
  el.hidden = !(f.dead || f.retrying);
  el.className = "failures" + (f.dead ? " dead" : "");
  el.replaceChildren(...[
    h("b", {}, f.dead ? `⚠ ${f.dead} 条发送失败` : `↻ ${f.retrying} 条重试中`),
    f.dead && f.retrying ? h("span", {}, ` · ${f.retrying} 条重试中`) : null,
    h("span", { class: "muted" }, " delivery failures · 见对应手机 / see the phones"),
    h("ol", {}, (f.items || []).slice(0, 5).map((x) => h("li", {}, `${x.time} ${x.channel} → ${x.recipient || "群"}: ${x.error}`)))]
    .filter(Boolean));
}

// ---- phones ----------------------------------------------------------------------------------

const PLATFORM = { wecom: "企业微信", dingtalk: "钉钉" };
const ROLE = { manager: "经理", rep: "销售", admin: "管理员" };
const platformName = (p) => label("platform." + p, PLATFORM[p] || p || "");

function phoneShell(phone) {
  const messages = h("div", { class: "chat" });
  const input = h("input", { placeholder: label("sandbox.phone.input", "发消息给 leadbot（如：我的线索 / 帮助）"), class: "chat-input" });
  const form = h("form", { class: "composer", onsubmit: async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try { await api("POST", "/api/text", { platform: phone.platform, userid: phone.userid, text }); }
    catch (e) { toast(e.message); }
    await refresh();
  } }, input, h("button", { type: "submit" }, label("send", "发送")));
  const el = h("div", { class: "phone " + phone.platform, dataset: { rep: phone.id, userid: phone.userid, platform: phone.platform } },
    h("div", { class: "notch" }),
    h("div", { class: "statusbar" }, h("span", { class: "sb-time" }, ""), h("span", {}, "5G ▮▮▮")),
    h("div", { class: "apphead" },
      h("div", { class: "who" }, h("b", {}, phone.name), " ", h("span", { class: "role" }, label("sandbox.role." + phone.role, ROLE[phone.role] || phone.role) + " · " + phone.team)),
      h("div", { class: "tags" })),
    h("div", { class: "conv" }, label("sandbox.phone.conv", "{platform} · leadbot 助手", { platform: platformName(phone.platform) })),
    messages, form);
  return el;
}

function renderPhone(container, phone, now) {
  let entry = state.phoneCache.get(phone.id);
  if (!entry) {
    const el = phoneShell(phone);
    container.append(el);
    entry = { el, json: "", tags: "" };
    state.phoneCache.set(phone.id, entry);
  }
  entry.el.querySelector(".sb-time").textContent = now;
  const tagKey = phone.status + "|" + phone.delivery + "|" + (phone.failed || 0);
  if (entry.tags !== tagKey) {
    entry.tags = tagKey;
    const tags = entry.el.querySelector(".tags");
    tags.replaceChildren(...[h("span", { class: "tag " + phone.platform }, platformName(phone.platform)),
      phone.status !== "active" ? h("span", { class: "tag warn" }, phone.status === "on_leave" ? label("sandbox.phone.tag_on_leave", "休假") : phone.status) : null,
      phone.delivery === "text" ? h("span", { class: "tag" }, label("sandbox.phone.tag_text", "文本模式")) : null,
      phone.failed ? h("span", { class: "tag fail", title: "delivery failed" }, `⚠ ${phone.failed} 发送失败`) : null].filter(Boolean));
    entry.el.classList.toggle("away", phone.status !== "active");
  }
  const json = JSON.stringify(phone.messages);
  if (json === entry.json) return;
  entry.json = json;
  const chat = entry.el.querySelector(".chat");
  const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
  chat.replaceChildren(...(phone.messages.length ? phone.messages.map((m) => bubble(m, phone))
    : [h("div", { class: "empty" }, phone.status === "on_leave" ? label("sandbox.phone.on_leave", "休假中：新线索不会派给我")
      : label("sandbox.phone.empty", "暂无消息"))]));
  if (atBottom || chat.dataset.seen !== "1") { chat.scrollTop = chat.scrollHeight; chat.dataset.seen = "1"; }
  entry.el.classList.remove("flash");
  void entry.el.offsetWidth;
  entry.el.classList.add("flash");
}

function renderGroup(container, group, now) {
  let el = container.querySelector(".phone.group");
  if (!el) {
    el = h("div", { class: "phone group", dataset: { rep: "managers-group" } },
      h("div", { class: "notch" }), h("div", { class: "statusbar" }, h("span", { class: "sb-time" }, ""), h("span", {}, "5G ▮▮▮")),
      h("div", { class: "apphead" }, h("div", { class: "who" }, h("b", {}, label("sandbox.group.name", "经理群")))),
      h("div", { class: "conv" }, label("sandbox.group.conv", "群机器人 · 企业微信 + 钉钉")), h("div", { class: "chat" }));
    container.append(el);
  }
  el.querySelector(".sb-time").textContent = now;
  const json = JSON.stringify(group);
  if (json === state.groupCache) return;
  state.groupCache = json;
  const chat = el.querySelector(".chat");
  chat.replaceChildren(...(group.length ? group.map((m) => {
    const phone = { platform: m.platform };
    const b = bubble(m, phone);
    b.querySelector(".msg-time").textContent = (m.time || "") + " · " +
      label("sandbox.group.robot", "{platform} 群机器人", { platform: platformName(m.platform) });
    return b;
  }) : [h("div", { class: "empty" }, label("sandbox.group.empty", "升级提醒会出现在这里（快进时钟）"))]));
  chat.scrollTop = chat.scrollHeight;
}

const STATUS = { new: "新", assigned: "已分配", claimed: "已认领", pool: "公海", merged: "已合并", won: "赢单", lost: "输单" };
const statusName = (s) => label("sandbox.status." + s, STATUS[s] || s);

function render(data) {
  state.data = data;
  window.dispatchEvent(new CustomEvent("sandbox:state", { detail: data }));  // the guided tour follows along
  document.getElementById("clock").textContent = data.now_local;
  document.getElementById("zone").textContent = data.timezone;  // [calendar] timezone: cards use it too
  const hhmm = data.now_local.slice(11, 16);
  const phones = document.getElementById("phones");
  for (const phone of data.phones) renderPhone(phones, phone, hhmm);
  renderGroup(phones, data.group, hhmm);
  renderFailures(data.failures);

  document.getElementById("leads").replaceChildren(...data.leads.map((l) =>
    h("tr", { dataset: { lead: l.id, status: l.status } }, h("td", {}, "#" + l.id),
      h("td", {}, l.name || "—", h("div", { class: "muted small" }, [l.company, l.region].filter(Boolean).join(" · "))),
      h("td", { title: l.channel }, l.channel_label || l.channel), h("td", {}, statusName(l.status)), h("td", {}, l.owner || "—"))));
  document.getElementById("log").replaceChildren(...data.log.map((line) =>
    h("li", { class: line.ok ? "" : "bad", title: line.detail || "" }, h("span", { class: "muted" }, line.at + " "), line.text)));
  renderCrm(data.crm);
  const sla = data.sla || {};
  document.getElementById("sla").replaceChildren(
    ...[["提醒 remind", sla.remind], ["升级 escalate", sla.escalate], ["改派 reassign", sla.reassign], ["回公海 pool", sla.pool_return]]
      .map(([k, v]) => h("div", { class: "sla-step" }, h("span", {}, k), h("b", {}, v || "—"))));

  const who = document.getElementById("friend-who");
  if (!who.options.length) {
    for (const f of data.friends) who.append(h("option", { value: f.index }, f.name + " · " + f.corp));
    const rep = document.getElementById("friend-rep");
    for (const p of data.phones.filter((p) => p.platform === "wecom")) rep.append(h("option", { value: p.userid }, p.name));
  }
}

// The sandbox CRM: what the second system mirrored from leadbot's signed change events.
function renderCrm(crm) {
  if (!crm) return;
  document.getElementById("crm-webhook").textContent = crm.webhook;
  document.getElementById("crm-leads").replaceChildren(...(crm.leads.length ? crm.leads.map((l) =>
    h("tr", { dataset: { crmLead: l.id, status: l.status } }, h("td", {}, "#" + l.id),
      h("td", {}, l.name || "—", h("div", { class: "muted small" }, l.last)),
      h("td", {}, l.owner || "—"), h("td", {}, l.stage || "—"), h("td", {}, statusName(l.status)),
      h("td", {}, "v" + l.version))) : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "尚无事件 no events yet"))]));
  document.getElementById("crm-count").textContent =
    `${crm.received} received · ${crm.refused} refused · customers: ${crm.customers.length}`;
  document.getElementById("crm-events").replaceChildren(...crm.events.map((e) =>
    h("li", { class: e.verified ? "" : "bad", title: `${e.event_id} · ${e.outcome}`, dataset: { type: e.type, verified: e.verified } },
      h("span", { class: e.verified ? "sig ok" : "sig bad", title: e.verified ? "signature verified" : "signature refused" },
        e.verified ? "✓" : "✗"), " ",
      h("span", { class: "muted" }, e.time + " "), h("b", {}, e.type), " ", e.entity,
      e.version !== null && e.version !== undefined ? h("span", { class: "muted" }, " v" + e.version) : null,
      e.outcome !== "applied" ? h("span", { class: "muted" }, " · " + e.outcome) : null)));
}

async function refresh() {
  try { render(await api("GET", "/api/state")); } catch (e) { /* the next push or poll catches up */ }
}

function toast(text) {
  const t = h("div", { class: "toast" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 4000);
}

// ---- live updates: server-sent events, polling as the fallback --------------------------------

let pollTimer = null;
function startPolling() {
  if (pollTimer) return;
  document.getElementById("live").className = "live poll";
  pollTimer = setInterval(refresh, 1000);
}

function connect() {
  if (!window.EventSource) { startPolling(); return; }
  const es = new EventSource("/api/events");
  es.addEventListener("state", (ev) => {
    document.getElementById("live").className = "live on";
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    render(JSON.parse(ev.data));
  });
  es.onerror = () => { startPolling(); };
}

// ---- controls ---------------------------------------------------------------------------------

const PRESETS = {
  pool: { name: "周星", phone: "13911112222", company: "上海新元科技有限公司", region: "上海", channel: "expo", product_line: "CRM", amount: "" },
  north: { name: "张伟", phone: "13600009999", company: "北京星河医疗器械有限公司", region: "北京", channel: "baidu", product_line: "云服务", amount: "200000", extra_key: "医院等级", extra_value: "三级甲等" },
  // Same name and company as customer 王小明 but no phone: a possible duplicate, for a person to merge or not
  // (the same phone would be the same customer, merged at once).
  dup: { name: "王小明", phone: "", company: "华为技术", region: "上海", channel: "web_form", product_line: "ERP", amount: "" },
};

function setupControls() {
  const form = document.getElementById("lead-form");
  for (const btn of document.querySelectorAll("[data-preset]")) {
    btn.addEventListener("click", () => {
      const p = PRESETS[btn.dataset.preset];
      for (const [k, v] of Object.entries({ extra_key: "", extra_value: "", ...p })) if (form.elements[k]) form.elements[k].value = v;
    });
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const body = {};
    for (const k of ["name", "phone", "company", "region", "channel", "product_line", "amount"]) if (f[k].value.trim()) body[k] = f[k].value.trim();
    if (f.extra_key.value.trim()) body[f.extra_key.value.trim()] = f.extra_value.value;
    const out = document.getElementById("lead-result");
    const btn = document.getElementById("submit-lead");
    btn.disabled = true;
    out.textContent = "…";
    try {
      const res = await api("POST", "/api/leads", body);
      const lead = res.lead || {};
      out.textContent = res.status === 201 || res.status === 200
        ? label("sandbox.lead_stored", "{status}：线索 #{lead} 已入库", { status: res.status, lead: lead.id }) +
          (lead.flags && lead.flags.length ? " (" + lead.flags.join(", ") + ")" : "")
        : `${res.status}: ${JSON.stringify(lead)}`;
      out.dataset.status = res.status;
    } catch (e) { out.textContent = e.message; }
    btn.disabled = false;
    await refresh();
  });
  document.getElementById("friend-btn").addEventListener("click", async () => {
    const userid = document.getElementById("friend-rep").value;
    const friend = Number(document.getElementById("friend-who").value || 0);
    try { await api("POST", "/api/friend", { userid, friend }); } catch (e) { toast(e.message); }
    await refresh();
  });
  document.getElementById("crm-forge").addEventListener("click", async () => {
    try { await api("POST", "/api/crm/forge", {}); } catch (e) { toast(e.message); }
    await refresh();
  });
  for (const btn of document.querySelectorAll("[data-advance]")) {
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try { await api("POST", "/api/advance", { seconds: Number(btn.dataset.advance) }); } catch (e) { toast(e.message); }
      btn.disabled = false;
      await refresh();
    });
  }
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
      for (const p of document.querySelectorAll(".tabpane")) p.classList.toggle("active", p.id === "tab-" + tab.dataset.tab);
    });
  }
}

// ---- routing playground -------------------------------------------------------------------------

async function setupRouting() {
  const area = document.getElementById("routing-config");
  try { area.value = (await api("GET", "/api/routing")).config; } catch (e) { /* leave empty */ }
  document.getElementById("routing-file").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (file) area.value = await file.text();
  });
  document.getElementById("routing-run").addEventListener("click", async () => {
    const status = document.getElementById("routing-status");
    const btn = document.getElementById("routing-run");
    btn.disabled = true;
    status.textContent = "路由中… routing 100 leads through the real Router";
    status.classList.remove("bad");
    try {
      const resp = await fetch("/api/routing", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ config: area.value, count: 100 }) });
      const res = await resp.json();
      if (!res.ok) { status.textContent = res.error || "failed"; status.classList.add("bad"); return; }
      status.textContent = `${res.count} 条线索已路由`;
      renderRouting(res);
    } catch (e) { status.textContent = e.message; status.classList.add("bad"); }
    finally { btn.disabled = false; }
  });
}

function bars(title, pairs, total) {
  return h("div", { class: "bars" }, h("div", { class: "bars-title" }, title), pairs.map(([name, n]) =>
    h("div", { class: "bar-row" }, h("span", { class: "bar-name" }, name),
      h("span", { class: "bar" }, h("span", { class: "bar-fill", style: `width:${Math.round(100 * n / total)}%` })),
      h("span", { class: "bar-n" }, String(n)))));
}

function renderRouting(res) {
  document.getElementById("routing-summary").replaceChildren(
    bars("按去向 by target", res.by_target, res.count), bars("按规则 by rule", res.by_rule, res.count));
  const explain = document.getElementById("routing-explain");
  const rows = res.rows.map((r) => {
    const tr = h("tr", { class: r.outcome === "pool" ? "pool" : "", dataset: { n: r.n } },
      h("td", {}, r.n), h("td", {}, r.name, h("div", { class: "muted small" }, r.product_line)), h("td", {}, r.region),
      h("td", {}, r.channel), h("td", {}, r.amount ? Number(r.amount).toLocaleString("zh-CN") : "—"),
      h("td", {}, r.rule), h("td", {}, h("b", {}, r.target)));
    tr.addEventListener("click", () => {
      for (const x of tr.parentNode.children) x.classList.remove("sel");
      tr.classList.add("sel");
      explain.textContent = r.explanation || r.reason;
    });
    return tr;
  });
  document.getElementById("routing-rows").replaceChildren(...rows);
  if (res.rows.length) explain.textContent = res.rows[0].explanation || res.rows[0].reason;
}

setupControls();
setupRouting();
refresh().then(connect);

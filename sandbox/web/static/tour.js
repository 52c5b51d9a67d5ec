// The guided tour: a few steps through what leadbot does (submit, claim, race a claim, escalate,
// add a friend, merge and undo), each pointing at the control to use and ticked off when the
// sandbox's state shows it happened. Words come from leadbot's catalogue via /api/tour, in the
// sandbox's language (or ?lang=zh|en). Built with DOM calls and textContent only.
"use strict";

(function () {
  const STEPS = [
    { id: "intro", target: "#clock" },
    { id: "submit", target: "#submit-lead", done: (d, s) => newest(d) > s.start.newest },
    { id: "claim", target: "#phones", done: (d) => d.leads.some((l) => l.status === "claimed") },
    { id: "race", target: '[data-preset="pool"]',
      done: (d) => d.leads.some((l) => l.channel === "expo" && l.status === "claimed") },
    { id: "escalate", target: ".ff", done: (d) => d.group.length > 0 },
    { id: "friend", target: "#friend-btn", done: (d, s) => s.friendClicked },
    { id: "merge", target: '[data-preset="dup"]', done: (d, s) => s.undoSeen },
    { id: "finish", target: null },
  ];
  const newest = (d) => Math.max(0, ...d.leads.map((l) => l.id));
  const tour = { words: null, step: 0, open: false, start: null, friendClicked: false, mergeSeen: false, undoSeen: false, data: null };

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function lang() {
    const q = new URLSearchParams(location.search).get("lang");
    return q === "en" || q === "zh" ? q : "";
  }

  async function load() {
    const q = lang();
    const resp = await fetch("/api/tour" + (q ? "?lang=" + q : ""));
    tour.words = await resp.json();
    window.sandboxLabels = tour.words.labels;
    window.dispatchEvent(new CustomEvent("sandbox:labels"));
    // The page's own headings and labels (data-i18n="catalogue key").
    for (const e of document.querySelectorAll("[data-i18n]")) {
      const text = tour.words.labels[e.dataset.i18n];
      if (text) e.textContent = text;
    }
    document.documentElement.lang = tour.words.lang === "en" ? "en" : "zh-CN";
    const btn = document.getElementById("tour-btn");
    if (btn) { btn.textContent = tour.words.labels.tour; btn.addEventListener("click", () => show(0)); }
    const clock = document.getElementById("clock");
    if (clock) clock.title = tour.words.clock;
    const note = document.getElementById("clock-note");
    if (note) note.textContent = tour.words.clock_short;
    // The channel list shows each code's label ("展会", "Trade show"), not the code itself.
    for (const opt of document.querySelectorAll('select[name="channel"] option')) {
      const label = tour.words.channels[opt.value];
      if (label) opt.textContent = label;
    }
    // The controls the tour names, in the same words as the tour.
    const controls = tour.words.controls;
    const relabel = (sel, text) => { const e = document.querySelector(sel); if (e && text) e.textContent = text; };
    relabel("#submit-lead", controls.submit);
    relabel("#friend-btn", controls.friend);
    for (const p of ["pool", "north", "dup"]) relabel(`[data-preset="${p}"]`, controls[p]);
    for (const s of [60, 180, 300, 1800, 86400]) relabel(`[data-advance="${s}"]`, controls["ff" + s]);
    const friend = document.getElementById("friend-btn");
    if (friend) friend.addEventListener("click", () => { tour.friendClicked = true; }, true);
    // Merge, then undo: ticked off when an undo button on a phone was tapped after a merge one.
    document.addEventListener("click", (ev) => {
      const b = ev.target.closest && ev.target.closest("[data-action]");
      if (!b) return;
      if (b.dataset.action === "merge") tour.mergeSeen = true;
      if (b.dataset.action === "undo" && tour.mergeSeen) { tour.undoSeen = true; setTimeout(() => tour.open && render(), 500); }
    }, true);
    if (!localStorage.getItem("leadbot-tour-seen")) show(0);
  }

  function target(step) {
    for (const e of document.querySelectorAll(".tour-target")) e.classList.remove("tour-target");
    const sel = STEPS[step].target;
    const t = sel && document.querySelector(sel);
    if (t) { t.classList.add("tour-target"); t.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  }

  function render() {
    const words = tour.words;
    const step = STEPS[tour.step];
    const text = words.steps[step.id];
    const done = step.done && tour.data && tour.start ? step.done(tour.data, tour) : false;
    const panel = el("section", { id: "tour", class: "tour", role: "dialog", "aria-label": words.labels.tour,
      "data-step": step.id, "data-done": done ? "1" : "0" },
      el("div", { class: "tour-head" },
        el("b", {}, words.labels.tour), " ",
        el("span", { class: "muted" }, words.labels.step.replace("{n}", tour.step + 1).replace("{total}", STEPS.length)),
        el("button", { type: "button", class: "tour-close", "aria-label": words.labels.close, onclick: hide }, "×")),
      el("h3", {}, text.title),
      el("p", {}, text.body),
      step.id === "intro" ? el("p", { class: "tour-clock" }, words.clock) : null,
      done ? el("p", { class: "tour-done" }, "✓ " + words.labels.done) : null,
      el("div", { class: "tour-nav" },
        tour.step > 0 ? el("button", { type: "button", onclick: () => show(tour.step - 1) }, words.labels.back) : el("span"),
        tour.step < STEPS.length - 1
          ? el("button", { type: "button", class: done || !step.done ? "primary" : "", id: "tour-next",
              onclick: () => show(tour.step + 1) }, words.labels.next)
          : el("button", { type: "button", class: "primary", id: "tour-next", onclick: hide }, words.labels.close)));
    const old = document.getElementById("tour");
    if (old) old.replaceWith(panel); else document.body.append(panel);
  }

  function show(step) {
    if (!tour.words) return;
    tour.open = true;
    tour.step = Math.max(0, Math.min(step, STEPS.length - 1));
    if (tour.data) tour.start = { newest: newest(tour.data) };
    localStorage.setItem("leadbot-tour-seen", "1");
    render();
    target(tour.step);
  }

  function hide() {
    tour.open = false;
    const old = document.getElementById("tour");
    if (old) old.remove();
    for (const e of document.querySelectorAll(".tour-target")) e.classList.remove("tour-target");
  }

  window.addEventListener("sandbox:state", (ev) => {
    tour.data = ev.detail;
    if (!tour.start) tour.start = { newest: newest(tour.data) };
    if (tour.open) {
      const panel = document.getElementById("tour");
      const step = STEPS[tour.step];
      const done = step.done ? step.done(tour.data, tour) : false;
      if (!panel || panel.dataset.done !== (done ? "1" : "0")) render();
    }
  });

  window.sandboxTour = { show, hide };
  load();
})();

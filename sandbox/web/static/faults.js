// The sandbox's "faults" panel: switch a documented refusal or throttle of the simulated
// WeCom / DingTalk on and off, and watch what leadbot holds back meanwhile (GET/POST /api/faults).
(function () {
  "use strict";
  const box = document.getElementById("faults");
  const waiting = document.getElementById("faults-waiting");
  if (!box) return;
  async function call(method, body) {
    const resp = await fetch("/api/faults", {method, headers: {"Content-Type": "application/json"},
                                             body: body ? JSON.stringify(body) : undefined});
    return resp.json();
  }
  function draw(data) {
    box.textContent = "";
    for (const f of data.faults) {
      const row = document.createElement("label");
      row.className = "fault" + (f.on ? " on" : "");
      row.title = f.label;
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.checked = f.on;
      cb.dataset.fault = f.platform + ":" + f.name;
      cb.addEventListener("change", async () => {
        draw(await call("POST", {platform: f.platform, name: f.name, on: cb.checked}));
      });
      const text = document.createElement("span");
      text.textContent = (f.platform === "wecom" ? "企微 " : "钉钉 ") + f.label;
      row.append(cb, text);
      box.append(row);
    }
    waiting.textContent = "";
    for (const w of data.waiting) {
      const li = document.createElement("li");
      li.textContent = w.until + " · " + w.channel + " · " + w.error;
      waiting.append(li);
    }
    if (!data.waiting.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "没有被限流的消息 nothing held back";
      waiting.append(li);
    }
  }
  async function poll() {
    try { draw(await call("GET")); } catch (e) { /* next poll */ }
  }
  poll();
  setInterval(poll, 1500);
})();

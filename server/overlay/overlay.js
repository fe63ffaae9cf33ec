/* livestream-compliance overlay (OBS browser source).
 *
 * Connects to the sidecar's websocket on the same host and port (?server= overrides), subscribes
 * to ?stream=ID (or ?stream_id=ID) and shows each warning frame as a card: the message text with
 * the offending words highlighted, the rule's message and its suggested rewording, coloured by
 * severity; a card fades out after ?fade=SECONDS (default 8; 0 keeps it). Reconnects with
 * exponential backoff (0.5 s doubling to 15 s, with jitter) when the socket drops, and closes a
 * socket that stops answering pings. Every text from the wire is put in the page with
 * textContent, never as HTML.
 *
 * Offsets: the server's start/end count Unicode code points (Python string indices); JavaScript
 * strings count UTF-16 units, so texts are split with Array.from before slicing.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(window.location.search);
  var SEVERITY_RANK = { info: 1, warning: 2, high: 3, critical: 4 };
  var SEVERITY_NAMES = ["", "info", "warning", "high", "critical"];
  var SEVERITY_LABELS = { info: "提示", warning: "警告", high: "高风险", critical: "严重违规" };
  var SOURCE_LABELS = { host: "主播", chat: "弹幕" };
  var POSITIONS = ["top-left", "top-right", "bottom-left", "bottom-right"];

  function num(name, fallback, min, max) {
    var raw = params.get(name);
    if (raw === null || raw.trim() === "") return fallback;
    var v = Number(raw);
    if (!isFinite(v)) return fallback;
    return Math.min(max, Math.max(min, v));
  }

  var config = {
    stream: params.get("stream") || params.get("stream_id") || "",
    token: params.get("token") || "",
    fade: num("fade", 8, 0, 86400),
    max: Math.round(num("max", 3, 1, 20)),
    scale: num("scale", 1, 0.25, 4),
    position: POSITIONS.indexOf(params.get("position")) >= 0 ? params.get("position") : "bottom-left",
    sources: (params.get("sources") || "host,chat").split(",").map(function (s) { return s.trim(); }),
    status: params.get("status") === "1",
    server: params.get("server") || (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + "/",
  };

  var body = document.body;
  var list = document.getElementById("warnings");
  var statusEl = document.getElementById("status");
  var state = { socket: null, attempt: 0, reconnects: 0, received: 0, shown: 0, pingSeq: 0, awaitingPong: 0 };
  window.complianceOverlay = { config: config, state: state };

  body.classList.add("pos-" + config.position);
  document.documentElement.style.setProperty("--scale", String(config.scale));

  function setState(name, detail) {
    body.dataset.state = name;
    if (!config.status) return;
    statusEl.hidden = false;
    var ok = name === "subscribed";
    statusEl.className = ok ? "ok" : "down";
    statusEl.textContent = ok ? config.stream : name + (detail ? " · " + detail : "");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function rank(severity) {
    return SEVERITY_RANK[severity] || SEVERITY_RANK.warning;
  }

  /* The message text with every finding's span marked; overlapping spans take the higher severity. */
  function renderText(text, findings) {
    var chars = Array.from(String(text || ""));
    var levels = new Array(chars.length).fill(0);
    var carried = null;
    findings.forEach(function (f) {
      var start = Math.max(0, Math.min(chars.length, f.start | 0));
      var end = Math.max(start, Math.min(chars.length, f.end | 0));
      var r = rank(f.severity);
      for (var i = start; i < end; i++) levels[i] = Math.max(levels[i], r);
      // a term that began in an earlier message: show its earlier part before the text
      var carry = f.carry | 0;
      if (carry > 0 && start === 0) {
        var prefix = Array.from(String(f.text || "")).slice(0, carry).join("");
        if (prefix && (!carried || prefix.length > carried.text.length)) carried = { text: prefix, level: r };
      }
    });
    var box = el("div", "text");
    if (carried) {
      var c = el("span", "carried", "…");
      c.appendChild(el("mark", "sev-" + SEVERITY_NAMES[carried.level], carried.text));
      box.appendChild(c);
    }
    var i = 0;
    while (i < chars.length) {
      var j = i;
      while (j < chars.length && levels[j] === levels[i]) j++;
      var piece = chars.slice(i, j).join("");
      if (levels[i] > 0) box.appendChild(el("mark", "sev-" + SEVERITY_NAMES[levels[i]], piece));
      else box.appendChild(document.createTextNode(piece));
      i = j;
    }
    return box;
  }

  function renderCard(frame) {
    var findings = Array.isArray(frame.findings) ? frame.findings : [];
    var top = findings.reduce(function (m, f) { return Math.max(m, rank(f.severity)); }, 1);
    var severity = SEVERITY_NAMES[top];
    var card = el("div", "card sev-" + severity);
    card.dataset.seq = String(frame.seq);
    card.dataset.source = String(frame.source || "");
    card.dataset.severity = severity;

    var head = el("div", "head");
    head.appendChild(el("span", "badge", SEVERITY_LABELS[severity] || severity));
    var who = SOURCE_LABELS[frame.source] || frame.source || "";
    if (frame.source === "chat" && frame.speaker) who += " · " + frame.speaker;
    head.appendChild(el("span", "who", who));
    var ids = [];
    findings.forEach(function (f) { if (ids.indexOf(f.rule_id) < 0) ids.push(f.rule_id); });
    head.appendChild(el("span", "rules-id", ids.join(" ")));
    card.appendChild(head);

    card.appendChild(renderText(frame.text !== undefined ? frame.text : textOf(findings), findings));

    var seen = {};
    findings.forEach(function (f) {
      if (seen[f.rule_id]) return;
      seen[f.rule_id] = true;
      var line = el("div", "finding sev-" + (f.severity in SEVERITY_RANK ? f.severity : "warning"));
      line.appendChild(el("span", "term", "「" + (f.text || f.matched || "") + "」"));
      line.appendChild(document.createTextNode(" "));
      line.appendChild(el("span", "message", f.message || ""));
      card.appendChild(line);
      if (f.suggestion) card.appendChild(el("div", "suggestion", f.suggestion));
    });
    return card;
  }

  /* Warning frames do not repeat the message text: rebuild it from the findings' spans when absent. */
  function textOf(findings) {
    return findings.map(function (f) {
      var chars = Array.from(String(f.text || ""));
      return chars.slice(f.carry | 0).join("");
    }).join(" ");
  }

  function show(frame) {
    var card = renderCard(frame);
    list.insertBefore(card, list.firstChild);
    state.shown += 1;
    while (list.children.length > config.max) list.removeChild(list.lastChild);
    if (config.fade > 0) {
      window.setTimeout(function () {
        card.classList.add("fading");
        window.setTimeout(function () { if (card.parentNode) card.parentNode.removeChild(card); }, 1000);
      }, config.fade * 1000);
    }
  }

  function handle(frame) {
    if (!frame || typeof frame !== "object") return;
    switch (frame.type) {
      case "subscribed":
        state.attempt = 0;
        setState("subscribed");
        break;
      case "warning":
        if (frame.stream_id !== config.stream) return;
        if (config.sources.indexOf(frame.source) < 0) return;
        state.received += 1;
        body.dataset.received = String(state.received);
        show(frame);
        break;
      case "pong":
        state.awaitingPong = 0;
        break;
      case "shutdown":
        setState("server-shutdown");
        break;
      case "error":
        if (window.console) console.warn("compliance overlay: server error", frame.code, frame.detail);
        break;
      default:
        break;
    }
  }

  function socketUrl() {
    var url = new URL(config.server, window.location.href);
    if (config.token) url.searchParams.set("token", config.token);
    return url.toString();
  }

  function connect() {
    setState(state.reconnects ? "reconnecting" : "connecting");
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      retry();
      return;
    }
    state.socket = ws;
    ws.onopen = function () {
      setState("open");
      state.awaitingPong = 0;
      ws.send(JSON.stringify({ type: "subscribe", stream_id: config.stream }));
    };
    ws.onmessage = function (ev) {
      if (typeof ev.data !== "string") return;
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      handle(frame);
    };
    ws.onerror = function () { /* a close event follows */ };
    ws.onclose = function (ev) {
      if (state.socket !== ws) return;
      state.socket = null;
      setState("disconnected", ev.code ? "code " + ev.code : "");
      retry();
    };
  }

  function retry() {
    var base = Math.min(15000, 500 * Math.pow(2, state.attempt));
    state.attempt = Math.min(state.attempt + 1, 10);
    state.reconnects += 1;
    window.setTimeout(connect, base / 2 + Math.random() * base / 2);
  }

  /* A socket that stops answering (a silent network drop) is closed, which starts a reconnect. */
  function heartbeat() {
    var ws = state.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (state.awaitingPong && Date.now() - state.awaitingPong > 10000) {
      ws.close(4000, "no pong");
      return;
    }
    if (!state.awaitingPong) {
      state.pingSeq += 1;
      state.awaitingPong = Date.now();
      ws.send(JSON.stringify({ type: "ping", seq: state.pingSeq }));
    }
  }

  if (!config.stream) {
    setState("unconfigured");
    var msg = el("div", null, "compliance overlay: add ?stream=STREAM_ID to the URL");
    msg.id = "config-error";
    body.appendChild(msg);
    return;
  }
  connect();
  window.setInterval(heartbeat, 15000);
})();

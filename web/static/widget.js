/*
 * 南充门诊慢特病 help widget. Plain JavaScript, no dependencies, no build step.
 *
 * Embed on any page:
 *   <script src="https://<web-host>/widget/widget.js"
 *           data-server="https://<rasa-host>" data-title="门诊慢特病在线咨询" defer></script>
 *
 * Talks to Rasa's `web` input channel (POST <server>/webhooks/web/webhook). The
 * conversation (sender id + transcript, which may hold a lookup's masked name, disease
 * and status) and the open/closed state are kept in sessionStorage: a reload shows the
 * same conversation, but it ends with the tab (closing it, or a new tab or browser,
 * starts afresh). Only the 大字 switch is kept in localStorage. A transcript an older
 * version left in localStorage is deleted on load. Privacy on shared PCs:
 * after 30 minutes without a message the transcript is dropped and a new session id is
 * used; ID numbers, application numbers and ID suffixes the visitor types are stored and
 * shown masked; the 清除记录 button wipes the transcript at once. Everything lives in a
 * shadow root: the host page's CSS cannot break the widget and ours cannot leak out.
 * All text from the server is inserted with textContent (never innerHTML).
 *
 * Privacy notice (what is stored, for how long, who can see it): shown once per
 * conversation, as its first entry, when the panel is first opened. Whether it was shown
 * is kept with the conversation (sessionStorage): a reload or reopening the panel does
 * not show it again, but a new conversation does (清除记录, 30 idle minutes, a new tab:
 * on a public PC that may be the next person).
 *
 * Feedback (issue 19, docs/web.md "Feedback"): a reply message that carries `feedback`
 * (the channel adds it to a knowledge answer, with the wording from
 * knowledge/channel_texts.yml) gets 👍/👎 under it. One tap posts the rating to
 * <server>/webhooks/web/feedback and the pair becomes a thank-you; after 👎 the visitor
 * may add one reason (a choice or a typed line, masked like typed text, at most
 * `max_reason_chars`). Only the latest answer can be rated: once the visitor writes
 * again, an open pair (or an unanswered reason) goes away. Messages without `feedback`
 * (questions, walk steps, the privacy notice, …) get nothing.
 *
 * Status changes (issue 19, docs/web.md "Status changes"): after a found lookup the reply
 * carries {"custom": {"status_watch": {"token": …}}}: an opaque random token, kept in
 * localStorage under `mzmtb-widget-watch:<server>` (at most 3, newest first; never the
 * number, name or status). When a new conversation starts on page load, the tokens go to
 * <server>/webhooks/web/status-changes; each line of the answer (a change since the last
 * look: masked number, new status) is shown as a bot message at the top, and the tokens
 * it names under `forget` are dropped. {"status_watch": {"clear": true}} (the answer to
 * "取消通知") drops every token, after asking the server to delete them.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector("script[data-server][src*='widget.js']");
  if (!script || window.__mzmtbWidgetLoaded) { return; }
  window.__mzmtbWidgetLoaded = true;

  var server = (script.getAttribute("data-server") || "").replace(/\/+$/, "");
  var title = script.getAttribute("data-title") || "门诊慢特病在线咨询";
  var assetBase = new URL(".", script.src).href;
  var storageKey = "mzmtb-widget:" + server;          // the conversation: sessionStorage
  var prefsKey = "mzmtb-widget-prefs:" + server;       // the 大字 switch: localStorage
  var watchKey = "mzmtb-widget-watch:" + server;       // status-change tokens: localStorage
  var MAX_WATCH_TOKENS = 3;
  // The privacy notice (knowledge/channel_texts.yml privacy_notice, with the configured
  // retention period): web/app.py replaces the marker with a JSON string when it serves
  // this file. Served as a plain file, there is none (null) and nothing is shown.
  var PRIVACY_NOTICE = /*PRIVACY_NOTICE*/null;
  var REPLY_TIMEOUT_MS = 20000;
  var MAX_KEPT_MESSAGES = 200;
  var IDLE_EXPIRY_MS = 30 * 60 * 1000;  // a new visitor on a public PC starts afresh
  var HOTLINE_HINT = "人工咨询请拨打医保服务热线 12393";
  var FALLBACK_TEXT = "抱歉，小助手暂时连不上，请稍后再试。着急的话请拨打医保服务热线 12393。";
  var EMPTY_TEXT = "抱歉，这个问题我暂时答不上来。可以换个说法，或拨打医保服务热线 12393。";
  var WELCOME = {
    from: "bot",
    text: "您好！我是南充门诊慢特病（原特殊病种）申办小助手。可以直接打字提问，也可以点下面的问题：",
    buttons: [
      { title: "谁能申请", payload: "谁能申请门诊慢特病" },
      { title: "要带哪些材料", payload: "申请门诊慢特病要带哪些材料" },
      { title: "手机上怎么申请", payload: "在手机上怎么申请门诊慢特病" },
      { title: "怎么查申请进度", payload: "怎么查申请进度" }
    ]
  };

  // --- state kept across reloads -----------------------------------------------------
  var memoryStore = {};
  function readItem(storage, key) {
    try { return window[storage].getItem(key); } catch (e) { return memoryStore[storage + key] || null; }
  }
  function writeItem(storage, key, raw) {
    try { window[storage].setItem(key, raw); } catch (e) { memoryStore[storage + key] = raw; }
  }
  function parsed(raw) {
    try { return raw ? JSON.parse(raw) : null; } catch (e) { return null; }
  }
  // Older versions kept the whole conversation in localStorage: only its 大字 switch is
  // taken over, the rest is deleted.
  function purgeOldTranscript() {
    var old = parsed(readItem("localStorage", storageKey));
    try { window.localStorage.removeItem(storageKey); } catch (e) { /* nothing stored */ }
    return old && typeof old.large === "boolean" ? old.large : null;
  }
  function loadLarge() {
    var oldLarge = purgeOldTranscript();
    var prefs = parsed(readItem("localStorage", prefsKey));
    if (prefs && typeof prefs.large === "boolean") { return prefs.large; }
    return !!oldLarge;
  }
  var startedFresh = false;  // a new conversation on this page load: ask for status changes
  function loadState() {
    var large = loadLarge();
    var state = parsed(readItem("sessionStorage", storageKey));
    if (!state || state.v !== 1 || typeof state.sender !== "string") {
      state = freshState(large, false);
      startedFresh = true;
    } else if (expired(state)) {
      state = freshState(large, false);
      startedFresh = true;
    }
    state.large = large;
    if (!Array.isArray(state.messages)) { state.messages = []; }
    return state;
  }
  function freshState(large, open) {
    return {
      v: 1, sender: newSenderId(), messages: [], large: large, open: open, lastActive: Date.now(),
      noticeShown: false
    };
  }
  function expired(s) {
    return typeof s.lastActive !== "number" || Date.now() - s.lastActive > IDLE_EXPIRY_MS;
  }
  // What the visitor typed is stored and shown masked when it looks like personal data:
  // a full ID number keeps its last 4, an application number its first and last 4,
  // and a lone ID suffix (4 characters: 3 digits + digit or X) becomes ****.
  function maskNumbers(text) {
    return String(text)
      .replace(/(^|[^0-9A-Za-z])((?:\d[ \u3000]*){17}[\dXx])(?![0-9A-Za-z])/g, function (m, pre, id) {
        var plain = id.replace(/[ \u3000]/g, "");
        return pre + "**************" + plain.slice(-4).toUpperCase();
      })
      .replace(/(^|[^0-9A-Za-z])([A-Za-z]{2}\d{8,20})(?![0-9A-Za-z])/g, function (m, pre, no) {
        return pre + no.slice(0, 4).toUpperCase() + "****" + no.slice(-4);
      });
  }
  function maskUserText(text) {
    return maskNumbers(text)
      .replace(/(^|[^0-9A-Za-z*])\d{3}[\dXx](?![0-9A-Za-z])/g, "$1****")
      .replace(/(^|[^0-9A-Za-z*])\d{6,}(?![0-9A-Za-z])/g, function (m, pre) {
        return pre + "*".repeat(m.length - pre.length - 4) + m.slice(-4);
      });
  }
  function saveState() {
    state.messages = state.messages.slice(-MAX_KEPT_MESSAGES);
    var conversation = {};
    Object.keys(state).forEach(function (name) {
      if (name !== "large") { conversation[name] = state[name]; }
    });
    writeItem("sessionStorage", storageKey, JSON.stringify(conversation));
    writeItem("localStorage", prefsKey, JSON.stringify({ large: !!state.large }));
  }
  // Status-change tokens (opaque, random): nothing else about the lookup is kept.
  function readTokens() {
    var tokens = parsed(readItem("localStorage", watchKey));
    return Array.isArray(tokens) ? tokens.filter(function (t) {
      return typeof t === "string" && /^[A-Za-z0-9_-]{16,64}$/.test(t);
    }).slice(0, MAX_WATCH_TOKENS) : [];
  }
  function writeTokens(tokens) {
    if (tokens.length) { writeItem("localStorage", watchKey, JSON.stringify(tokens.slice(0, MAX_WATCH_TOKENS))); }
    else { try { window.localStorage.removeItem(watchKey); } catch (e) { delete memoryStore["localStorage" + watchKey]; } }
  }
  function keepToken(token) {
    if (typeof token !== "string" || !/^[A-Za-z0-9_-]{16,64}$/.test(token)) { return; }
    writeTokens([token].concat(readTokens().filter(function (t) { return t !== token; })));
  }
  function forgetTokens(dropped) {
    writeTokens(readTokens().filter(function (t) { return dropped.indexOf(t) < 0; }));
  }
  function handleWatch(watch) {
    if (!watch || typeof watch !== "object") { return; }
    if (watch.token) { keepToken(watch.token); }
    if (watch.clear === true) {
      var tokens = readTokens();
      writeTokens([]);
      if (tokens.length) { postStatusChanges({ tokens: tokens, cancel: true }).catch(function () { return null; }); }
    }
  }
  function postStatusChanges(body) {
    return fetch(server + "/webhooks/web/status-changes", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
  }
  // A new conversation: the changes since the last visit come first (the welcome follows
  // when the panel is opened). A failure shows nothing; the tokens are kept for next time.
  function checkStatusChanges() {
    var tokens = readTokens();
    if (!tokens.length) { return; }
    var sender = state.sender;
    postStatusChanges({ tokens: tokens }).then(function (answer) {
      if (!answer || typeof answer !== "object") { return; }
      if (Array.isArray(answer.forget)) { forgetTokens(answer.forget); }
      if (state.sender !== sender || !Array.isArray(answer.messages)) { return; }
      answer.messages.forEach(function (line) {
        if (line && typeof line.text === "string" && line.text) {
          addMessage({ from: "bot", text: maskNumbers(line.text), watch: true });
        }
      });
    }).catch(function () { return null; });
  }

  function newSenderId() {
    if (window.crypto && window.crypto.randomUUID) { return "web-" + window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  var state = loadState();

  // --- DOM -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else if (name === "hidden") { node.hidden = !!attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }
  function svgIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }

  var host = el("div", { id: "mzmtb-help-widget" });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("link", { rel: "stylesheet", href: assetBase + "widget.css" }));

  var launcher = el("button", {
    type: "button", "class": "mz-launcher", "aria-expanded": "false",
    "aria-controls": "mz-panel", "aria-label": "打开" + title
  }, [svgIcon(), el("span", { "class": "mz-launcher-text", text: "在线咨询" })]);

  var largeToggle = el("button", {
    type: "button", "class": "mz-large-toggle", "aria-pressed": "false",
    title: "放大字号，方便阅读", text: "大字"
  });
  var clearButton = el("button", {
    type: "button", "class": "mz-clear", title: "删除本机保存的对话记录，开始新的对话", text: "清除记录"
  });
  var closeButton = el("button", {
    type: "button", "class": "mz-close", "aria-label": "关闭咨询窗口", text: "×"
  });
  var log = el("div", {
    "class": "mz-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "对话记录", tabindex: "0"
  });
  var status = el("div", { "class": "mz-status", role: "status", "aria-live": "polite" });
  var input = el("textarea", {
    id: "mz-input", "class": "mz-input", rows: "1", maxlength: "500",
    placeholder: "请输入问题，如：要带哪些材料", autocomplete: "off"
  });
  var sendButton = el("button", { type: "submit", "class": "mz-send", text: "发送" });
  var form = el("form", { "class": "mz-form" }, [
    el("label", { "for": "mz-input", "class": "mz-sr", text: "输入您的问题" }), input, sendButton
  ]);
  var panel = el("section", {
    id: "mz-panel", "class": "mz-panel", role: "dialog", "aria-modal": "true",
    "aria-labelledby": "mz-title", hidden: true
  }, [
    el("header", { "class": "mz-header" }, [
      el("h2", { id: "mz-title", "class": "mz-title", text: title }), clearButton, largeToggle, closeButton
    ]),
    log, status, form,
    el("p", { "class": "mz-footer", text: HOTLINE_HINT })
  ]);
  var root = el("div", { "class": "mz-root" }, [panel, launcher]);
  shadow.appendChild(root);

  // --- rendering -------------------------------------------------------------------
  // Markdown links, bare http(s) URLs and the hotline number become links; the rest is text.
  var TOKEN = /\[([^\]\n]{1,200})\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<>"'，。）]+)|(\b(?:0817-)?12393\b)/g;
  function appendRichText(parent, text) {
    var lines = String(text).split("\n");
    lines.forEach(function (line, index) {
      if (index > 0) { parent.appendChild(document.createElement("br")); }
      var last = 0;
      var match;
      TOKEN.lastIndex = 0;
      while ((match = TOKEN.exec(line)) !== null) {
        if (match.index > last) { parent.appendChild(document.createTextNode(line.slice(last, match.index))); }
        var link;
        if (match[1]) { link = el("a", { href: match[2], text: match[1] }); }
        else if (match[3]) { link = el("a", { href: match[3], text: match[3] }); }
        else { link = el("a", { href: "tel:" + match[4].replace("-", ""), text: match[4] }); }
        if (!match[4]) { link.setAttribute("target", "_blank"); link.setAttribute("rel", "noopener noreferrer"); }
        parent.appendChild(link);
        last = TOKEN.lastIndex;
      }
      if (last < line.length) { parent.appendChild(document.createTextNode(line.slice(last))); }
    });
  }

  function renderMessage(message) {
    if (message.from === "notice") {
      var note = el("div", { "class": "mz-msg mz-notice", role: "note", "aria-label": "隐私提示" });
      var noticeText = el("p", { "class": "mz-text" });
      appendRichText(noticeText, message.text);
      note.appendChild(noticeText);
      log.appendChild(note);
      return;
    }
    var mine = message.from === "user";
    var bubble = el("div", { "class": "mz-msg " + (mine ? "mz-user" : "mz-bot") }, [
      el("span", { "class": "mz-sr", text: mine ? "我说：" : "小助手说：" })
    ]);
    if (message.text) {
      var paragraph = el("p", { "class": "mz-text" });
      appendRichText(paragraph, message.text);
      bubble.appendChild(paragraph);
    }
    if (message.image && /^https?:\/\//.test(message.image)) {
      bubble.appendChild(el("img", { src: message.image, alt: "图片", "class": "mz-image" }));
    }
    if (Array.isArray(message.buttons) && message.buttons.length) {
      var group = el("div", { "class": "mz-buttons", role: "group", "aria-label": "可选的问题" });
      message.buttons.forEach(function (button) {
        var choice = el("button", { type: "button", "class": "mz-choice", text: button.title });
        choice.addEventListener("click", function () {
          if (choice.disabled) { return; }
          send(button.payload || button.title, button.title);
          input.focus();  // the tapped set is now disabled: keep the keyboard in the dialog
        });
        group.appendChild(choice);
      });
      bubble.appendChild(group);
    }
    if (!mine && validRating(message.rating)) {
      var rating = el("div", { "class": "mz-rate" });
      bubble.appendChild(rating);
      renderRating(rating, message);
    }
    log.appendChild(bubble);
  }

  // --- feedback (👍/👎) under a knowledge answer ---------------------------------------
  function validRating(texts) {
    var keys = ["ask", "up", "down", "thanks", "reason_ask", "reason_other", "reason_send", "reason_done"];
    return !!texts && typeof texts === "object" && Array.isArray(texts.reasons) &&
      keys.every(function (key) { return typeof texts[key] === "string" && texts[key]; }) &&
      texts.reasons.every(function (reason) { return typeof reason === "string" && reason; });
  }
  function maxReasonChars(texts) {
    var max = Number(texts.max_reason_chars);
    return max > 0 && max <= 500 ? Math.floor(max) : 100;
  }
  // message.rated: undefined (not yet), "positive", "negative" (reason still possible),
  // "reasoned"; message.ratingClosed: the visitor wrote again, this answer is no longer rated
  function renderRating(container, message) {
    var texts = message.rating;
    container.textContent = "";
    container.removeAttribute("role");
    container.removeAttribute("aria-label");
    if (!message.rated) {
      if (message.ratingClosed) { container.hidden = true; return; }
      container.setAttribute("role", "group");
      container.setAttribute("aria-label", texts.ask);
      var up = el("button", { type: "button", "class": "mz-rate-button", "aria-label": texts.up },
        [el("span", { "aria-hidden": "true", text: "👍" })]);
      var down = el("button", { type: "button", "class": "mz-rate-button", "aria-label": texts.down },
        [el("span", { "aria-hidden": "true", text: "👎" })]);
      up.addEventListener("click", function () { rate(container, message, "positive"); });
      down.addEventListener("click", function () { rate(container, message, "negative"); });
      container.appendChild(el("span", { "class": "mz-rate-ask", text: texts.ask }));
      container.appendChild(up);
      container.appendChild(down);
      return;
    }
    var done = message.rated === "reasoned" ? texts.reason_done : texts.thanks;
    container.appendChild(el("p", { "class": "mz-rate-done", text: done }));
    if (message.rated !== "negative" || message.ratingClosed) { return; }
    // after 👎: one optional reason, a choice or one typed line
    var reasons = el("div", { "class": "mz-reasons", role: "group", "aria-label": texts.reason_ask });
    reasons.appendChild(el("p", { "class": "mz-rate-ask", text: texts.reason_ask }));
    texts.reasons.forEach(function (reason) {
      var choice = el("button", { type: "button", "class": "mz-reason", text: reason });
      choice.addEventListener("click", function () { giveReason(container, message, reason); });
      reasons.appendChild(choice);
    });
    var line = el("input", {
      type: "text", "class": "mz-reason-input", maxlength: String(maxReasonChars(texts)),
      "aria-label": texts.reason_other, placeholder: texts.reason_other, autocomplete: "off"
    });
    var reasonForm = el("form", { "class": "mz-reason-form" }, [
      line, el("button", { type: "submit", "class": "mz-reason-send", text: texts.reason_send })
    ]);
    reasonForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var typed = line.value.trim();
      if (typed) { giveReason(container, message, typed); }
    });
    reasons.appendChild(reasonForm);
    container.appendChild(reasons);
  }
  function rate(container, message, rating) {
    if (message.rated || message.ratingClosed) { return; }
    message.rated = rating;
    saveState();
    postFeedback({ rating: rating });
    renderRating(container, message);
    var next = rating === "negative" ? container.querySelector(".mz-reason") : null;
    (next || input).focus();
  }
  function giveReason(container, message, reason) {
    if (message.rated !== "negative" || message.ratingClosed) { return; }
    // stored nowhere in the page; sent masked like typed text (the server masks again)
    var masked = maskUserText(reason).slice(0, maxReasonChars(message.rating));
    message.rated = "reasoned";
    saveState();
    postFeedback({ rating: "negative", reason: masked });
    renderRating(container, message);
    input.focus();
  }
  // The visitor wrote again: the earlier answers can no longer be rated.
  function closeRatings() {
    var changed = false;
    state.messages.forEach(function (message) {
      if (message.rating && !message.ratingClosed) { message.ratingClosed = true; changed = true; }
    });
    if (!changed) { return; }
    Array.prototype.forEach.call(log.querySelectorAll(".mz-reasons"), function (node) { node.remove(); });
    Array.prototype.forEach.call(log.querySelectorAll(".mz-rate[role='group']"), function (node) {
      node.textContent = ""; node.removeAttribute("role"); node.removeAttribute("aria-label"); node.hidden = true;
    });
  }

  function renderAll() {
    log.textContent = "";
    state.messages.forEach(renderMessage);
    refreshChoices();
    scrollToEnd();
  }

  // Only the latest set of buttons can be tapped: an old "下一步" must not move the walk
  // on. A set is live while no message of the visitor follows it and no newer set exists.
  function refreshChoices() {
    var live = null;
    Array.prototype.forEach.call(log.children, function (bubble) {
      if (bubble.classList.contains("mz-user")) { live = null; }
      var group = bubble.querySelector(".mz-buttons");
      if (group) { live = group; }
    });
    Array.prototype.forEach.call(log.querySelectorAll(".mz-buttons"), function (group) {
      var stale = group !== live;
      group.classList.toggle("mz-stale", stale);
      Array.prototype.forEach.call(group.querySelectorAll("button"), function (button) {
        button.disabled = stale;
        if (stale) { button.setAttribute("aria-disabled", "true"); } else { button.removeAttribute("aria-disabled"); }
      });
    });
  }

  // Focus stays inside the open dialog (Tab and Shift+Tab wrap around).
  function focusable() {
    return Array.prototype.filter.call(
      panel.querySelectorAll("button, textarea, input, a[href], [tabindex]:not([tabindex='-1'])"),
      function (node) { return !node.disabled && node.getClientRects().length > 0; });
  }
  function trapFocus(event) {
    if (event.key !== "Tab") { return; }
    var nodes = focusable();
    if (!nodes.length) { return; }
    var first = nodes[0], last = nodes[nodes.length - 1];
    var active = shadow.activeElement;
    if (event.shiftKey && (active === first || !panel.contains(active))) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && (active === last || !panel.contains(active))) {
      event.preventDefault(); first.focus();
    }
  }
  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function addMessage(message) {
    state.lastActive = Date.now();
    state.messages.push(message);
    saveState();
    renderMessage(message);
    refreshChoices();
    scrollToEnd();
  }

  function applyLarge() {
    root.classList.toggle("mz-large", !!state.large);
    largeToggle.setAttribute("aria-pressed", state.large ? "true" : "false");
    scrollToEnd();
  }

  function setOpen(open, focus) {
    state.open = open;
    saveState();
    panel.hidden = !open;
    root.classList.toggle("mz-open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var empty = !state.messages.some(function (m) { return !m.watch; });
      showNotice();
      if (empty) { addMessage(WELCOME); }
      scrollToEnd();
      if (focus) { input.focus(); }
    } else if (focus) {
      launcher.focus();
    }
  }

  // The privacy notice, once per conversation (see the top of this file).
  function showNotice() {
    if (typeof PRIVACY_NOTICE !== "string" || !PRIVACY_NOTICE || state.noticeShown) { return; }
    state.noticeShown = true;
    addMessage({ from: "notice", text: PRIVACY_NOTICE });
  }

  // --- talking to Rasa -------------------------------------------------------------
  var queue = Promise.resolve();
  var waiting = 0;

  function setWaiting(delta) {
    waiting += delta;
    status.textContent = waiting > 0 ? "小助手正在回复…" : "";
  }

  function postMessage(sender, text) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) { controller.abort(); } }, REPLY_TIMEOUT_MS);
    return fetch(server + "/webhooks/web/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender: sender, message: text }),
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).finally(function () { clearTimeout(timer); });
  }

  // A rating goes into the same queue as messages: it reaches the server after the answer
  // it rates and before the visitor's next message. Its failure is not shown: the visitor
  // has been thanked, and the conversation goes on.
  function postFeedback(body) {
    var sender = state.sender;
    body.sender = sender;
    state.lastActive = Date.now();
    saveState();
    queue = queue.then(function () {
      return fetch(server + "/webhooks/web/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      }).catch(function () { return null; });
    });
  }

  function send(text, shown) {
    text = String(text || "").trim();
    if (!text) { return; }
    if (expired(state)) { resetConversation(false); }  // idle too long with the page open
    closeRatings();
    addMessage({ from: "user", text: maskUserText((shown || text).slice(0, 500)) });
    setWaiting(1);
    var sender = state.sender;
    queue = queue.then(function () {
      // the whole text: the server masks ID numbers first, then caps the length
      return postMessage(sender, text).then(function (replies) {
        if (state.sender !== sender) { return; }  // cleared meanwhile: drop the old answer
        var shownAny = false;
        (Array.isArray(replies) ? replies : []).forEach(function (reply) {
          if (reply && reply.custom && typeof reply.custom === "object") {
            handleWatch(reply.custom.status_watch);  // never shown, never in the transcript
            return;
          }
          if (!reply || (!reply.text && !reply.buttons && !reply.image)) { return; }
          var buttons = (reply.buttons || []).filter(function (b) {
            return b && typeof b.title === "string";
          }).map(function (b) {
            return { title: b.title, payload: typeof b.payload === "string" ? b.payload : b.title };
          });
          addMessage({
            from: "bot",
            text: typeof reply.text === "string" ? maskNumbers(reply.text) : "",
            buttons: buttons,
            image: typeof reply.image === "string" ? reply.image : undefined,
            rating: validRating(reply.feedback) ? reply.feedback : undefined
          });
          shownAny = true;
        });
        if (!shownAny) { addMessage({ from: "bot", text: EMPTY_TEXT }); }
      }).catch(function () {
        if (state.sender !== sender) { return; }
        addMessage({ from: "bot", text: FALLBACK_TEXT });
      }).then(function () { setWaiting(-1); });
    });
  }

  // 清除记录: forget the transcript and talk under a new session id from now on
  function resetConversation(welcome) {
    state = freshState(!!state.large, !!state.open);
    saveState();
    renderAll();
    showNotice();
    if (welcome) { addMessage(WELCOME); }
  }

  // --- events ----------------------------------------------------------------------
  clearButton.addEventListener("click", function () {
    resetConversation(true);
    status.textContent = "对话记录已清除";
    input.focus();
  });
  launcher.addEventListener("click", function () { setOpen(!state.open, true); });
  closeButton.addEventListener("click", function () { setOpen(false, true); });
  largeToggle.addEventListener("click", function () {
    state.large = !state.large;
    saveState();
    applyLarge();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    input.value = "";
    send(text);
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { setOpen(false, true); }
    trapFocus(event);
  });

  function start() {
    document.body.appendChild(host);
    applyLarge();
    renderAll();
    if (state.open) { setOpen(true, false); }
    if (startedFresh) { checkStatusChanges(); }
  }
  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();

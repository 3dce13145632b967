/*
 * Agent console. Every piece of text from the server or the agent is inserted with
 * textContent, never as HTML. The session cookie is HttpOnly; the CSRF token lives only
 * in this page's memory and goes with every POST in the X-CSRF-Token header.
 */
(function () {
  "use strict";

  var csrf = "";
  var $ = function (id) { return document.getElementById(id); };

  var kit = window.ConsoleKit, el = kit.el, notice = kit.notice;

  function cookie(name) {
    var match = document.cookie.split("; ").filter(function (part) {
      return part.indexOf(name + "=") === 0;
    })[0];
    return match ? decodeURIComponent(match.slice(name.length + 1)) : "";
  }

  function api(method, path, body, token) {
    return kit.request(method, path, body, token).then(kit.asJson);
  }

  function showLogin(message) {
    csrf = "";
    $("who").hidden = true;
    $("console-view").hidden = true;
    $("login-view").hidden = false;
    $("results").textContent = "";
    notice(message);
    $("username").focus();
  }

  function showConsole(user, token, role) {
    csrf = token;
    notice("");
    $("who-name").textContent = user;
    $("supervisor-link").hidden = role !== "supervisor";
    $("who").hidden = false;
    $("login-view").hidden = true;
    $("console-view").hidden = false;
    $("login-error").textContent = "";
    $("password").value = "";
    $("query").focus();
  }

  function expired() { showLogin("登录已过期或尚未登录，请重新登录。"); }

  // --- results -----------------------------------------------------------------------
  function copyButton(text) {
    var button = el("button", { type: "button", "class": "copy", text: "复制" });
    button.addEventListener("click", function () {
      var done = function () { button.textContent = "已复制"; setTimeout(function () { button.textContent = "复制"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var area = el("textarea", {});
        area.value = text;
        document.body.appendChild(area);
        area.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* select by hand */ }
        document.body.removeChild(area);
      }
    });
    return button;
  }

  function row(label, value) {
    return el("tr", {}, [el("th", { scope: "row", text: label }), el("td", { text: value || "—" })]);
  }

  function shortTime(iso) {
    return iso ? String(iso).replace("T", " ").replace(/([+-]\d\d:\d\d|Z)$/, "").slice(0, 16) : "";
  }

  function renderAnswer(card, data) {
    var meta = el("div", { "class": "meta" }, [
      el("span", { "class": "source", text: "来源：" + (data.source || "未注明") }),
      el("span", {
        "class": "badge " + (data.verified ? "verified" : "unverified"),
        text: data.verified ? "已核实" : "未核实，以官方规定为准"
      }),
      copyButton(data.text || "")
    ]);
    if (data.title) { card.appendChild(el("p", { "class": "title", text: data.title })); }
    card.appendChild(el("div", { "class": "answer-text", text: data.text || "" }));
    card.appendChild(meta);
  }

  function renderApplication(card, data) {
    if (!data.found) {
      card.appendChild(el("p", { text: data.message || "没有找到这个申请编号。" }));
      return;
    }
    var a = data.application || {};
    card.appendChild(el("table", { "class": "application" }, [el("tbody", {}, [
      row("申请编号", a.application_no || data.number),
      row("当前状态", a.status_label || a.status),
      row("状态更新", shortTime(a.status_updated_at)),
      row("申请人", a.applicant_name || a.applicant_name_masked),
      row("病种", a.disease),
      row("申请渠道", a.channel),
      row("提交时间", shortTime(a.submitted_at)),
      row("备注", a.note),
      row("待遇有效期", a.valid_from || a.valid_until ? (a.valid_from || "?") + " 至 " + (a.valid_until || "?") : "")
    ])]));
    var history = Array.isArray(a.history) ? a.history : [];
    var body = el("tbody", {}, history.map(function (h) {
      return el("tr", {}, [
        el("td", { text: shortTime(h.changed_at) }),
        el("td", { text: h.status_label || h.status || "" }),
        el("td", { text: h.note || "" })
      ]);
    }));
    card.appendChild(el("h4", { text: "办理历史" }));
    card.appendChild(el("table", { "class": "history" }, [
      el("thead", {}, [el("tr", {}, [
        el("th", { scope: "col", text: "时间" }), el("th", { scope: "col", text: "状态" }),
        el("th", { scope: "col", text: "说明" })
      ])]),
      body
    ]));
  }

  var WHO = { user: "来电人", bot: "机器人" };
  var CHANNELS = { web: "网页咨询", wechat: "微信公众号", rest: "REST", socketio: "socket.io" };

  function renderConversation(code, data) {
    var card = el("article", { "class": "card result conversation" }, [
      el("h3", {}, ["对话码：", el("span", { "class": "query", text: code })])
    ]);
    var until = data.expires_at ? new Date(data.expires_at * 1000) : null;
    card.appendChild(el("div", { "class": "meta" }, [
      el("span", { text: "渠道：" + (CHANNELS[data.channel] || data.channel || "—") }),
      el("span", { text: "对话码有效至：" + (until ? until.toLocaleString("zh-CN", { hour12: false }) : "—") })
    ]));
    if (data.lookup_note) { card.appendChild(el("p", { "class": "notice", text: data.lookup_note })); }
    if (data.message) { card.appendChild(el("p", { text: data.message })); }
    card.appendChild(el("ol", { "class": "turns" }, (data.turns || []).map(function (turn) {
      return el("li", { "class": "turn " + (turn.who === "user" ? "user" : "bot") }, [
        el("span", { "class": "who-label", text: (WHO[turn.who] || "") + (turn.at ? " " + turn.at : "") }),
        el("div", { "class": "turn-text", text: turn.text || "" })
      ]);
    })));
    var results = $("results");
    results.insertBefore(card, results.firstChild);
  }

  function renderResult(query, data) {
    var card = el("article", { "class": "card result" }, [
      el("h3", {}, ["查询：", el("span", { "class": "query", text: query })])
    ]);
    if (data.kind === "answer") { renderAnswer(card, data); }
    else if (data.kind === "application") { renderApplication(card, data); }
    else {
      card.classList.add("unavailable");
      card.appendChild(el("p", { text: data.message || data.error || "查询失败，请稍后再试。" }));
    }
    var results = $("results");
    results.insertBefore(card, results.firstChild);
  }

  // --- events ------------------------------------------------------------------------
  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("login-error").textContent = "";
    api("POST", "login", { username: $("username").value, password: $("password").value },
        cookie("agent_csrf")).then(function (reply) {
      if (reply.status === 200) { showConsole(reply.data.user, reply.data.csrf, reply.data.role); }
      else {
        $("login-error").textContent = reply.data.error || "登录失败。";
        $("password").value = "";
        $("password").focus();
      }
    }, function () { $("login-error").textContent = "无法连接服务器，请稍后再试。"; });
  });

  $("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var query = $("query").value.trim();
    if (!query) { return; }
    var button = $("search-form").querySelector("button");
    button.disabled = true;
    api("POST", "search", { q: query }, csrf).then(function (reply) {
      button.disabled = false;
      if (reply.status === 401) { expired(); return; }
      if (reply.status !== 200) { renderResult(query, { kind: "error", error: reply.data.error }); return; }
      renderResult(query, reply.data);
      $("query").select();
    }, function () {
      button.disabled = false;
      renderResult(query, { kind: "error", error: "无法连接服务器，请稍后再试。" });
    });
  });

  $("code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var code = $("code").value.trim();
    if (!code) { return; }
    var button = $("code-form").querySelector("button");
    button.disabled = true;
    api("POST", "conversation", { code: code }, csrf).then(function (reply) {
      button.disabled = false;
      if (reply.status === 401) { expired(); return; }
      if (reply.status === 200 && reply.data.kind === "conversation") { renderConversation(code, reply.data); }
      else { renderResult("对话码 " + code, { kind: "error", error: reply.data.error || reply.data.message }); }
      $("code").select();
    }, function () {
      button.disabled = false;
      renderResult("对话码 " + code, { kind: "error", error: "无法连接服务器，请稍后再试。" });
    });
  });

  $("logout").addEventListener("click", function () {
    api("POST", "logout", {}, csrf).then(function () { showLogin("您已退出登录。"); },
                                          function () { showLogin(""); });
  });

  api("GET", "me").then(function (reply) {
    if (reply.status === 200) { showConsole(reply.data.user, reply.data.csrf, reply.data.role); }
    else { showLogin(""); }
  }, function () { showLogin("无法连接服务器，请稍后再试。"); });
})();

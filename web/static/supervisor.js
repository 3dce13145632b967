/*
 * Supervisor page (issue 19): unanswered questions grouped, counts per week and reason,
 * export of the selected questions as NLU training candidates. Every text from the server
 * is inserted with textContent, never as HTML. The CSRF token of the session (from
 * /agent/api/me) lives only in this page's memory and goes with every POST.
 */
(function () {
  "use strict";

  var csrf = "";
  var period = { since: "", until: "" };
  var $ = function (id) { return document.getElementById(id); };
  var REASONS = {
    clarification: "反问了（“您是想问…？”或“请换个说法”）",
    handoff: "转了人工（没听懂）",
    asked_human: "要求人工",
    thumbs_down: "点了“没帮助”（👎）"
  };

  var kit = window.ConsoleKit, el = kit.el, notice = kit.notice, asJson = kit.asJson;

  function post(path, body) {
    return kit.request("POST", path, body, csrf);
  }

  function needLogin(message) {
    $("supervisor-view").hidden = true;
    $("who").hidden = true;
    $("login-view").hidden = false;
    notice(message || "");
  }

  function reasonText(outcomes) {
    return Object.keys(outcomes).map(function (kind) {
      return (REASONS[kind] || kind) + " " + outcomes[kind];
    }).join("，");
  }

  // --- selection -----------------------------------------------------------------------
  function selection() {
    var keys = [], clusters = [], count = 0;
    Array.prototype.forEach.call(document.querySelectorAll(".cluster"), function (card) {
      var whole = card.querySelector("input.pick-cluster");
      var picked = card.querySelectorAll("input.pick-question:checked");
      if (whole.checked) {
        clusters.push(whole.value);
        count += Number(whole.getAttribute("data-count"));
      } else {
        Array.prototype.forEach.call(picked, function (box) {
          keys.push(box.value);
          count += Number(box.getAttribute("data-count"));
        });
      }
    });
    return { keys: keys, clusters: clusters, count: count };
  }

  function updateSelection() {
    var chosen = selection();
    var groups = chosen.clusters.length, singles = chosen.keys.length;
    $("export").disabled = !(groups || singles);
    $("selected-count").textContent = groups || singles
      ? "已选 " + groups + " 组、" + singles + " 个单独问题（共 " + chosen.count + " 次）"
      : "未选问题";
  }

  // --- rendering ------------------------------------------------------------------------
  function weekTable(weeks, counts) {
    var head = el("tr", {}, weeks.map(function (week) { return el("th", { scope: "col", text: week }); }));
    var row = el("tr", {}, weeks.map(function (week) { return el("td", { text: String(counts[week] || 0) }); }));
    return el("table", { "class": "weeks" }, [
      el("caption", { "class": "sr", text: "每周次数" }), el("thead", {}, [head]), el("tbody", {}, [row])
    ]);
  }

  function clusterCard(cluster, index, weeks) {
    var first = cluster.questions[0] || { text: "" };
    var wholeId = "cluster-" + index;
    var whole = el("input", { type: "checkbox", id: wholeId, "class": "pick-cluster", value: cluster.id,
                              "data-count": String(cluster.count) });
    var title = el("h3", {}, [
      whole,
      el("label", { "for": wholeId }, [el("span", { "class": "sr", text: "选中整组：" }), first.text]),
      el("span", { "class": "count", text: cluster.count + " 次" })
    ]);
    var list = el("ul", { "class": "questions", "aria-label": "本组的问题" });
    cluster.questions.forEach(function (question, position) {
      var id = wholeId + "-q" + position;
      var box = el("input", { type: "checkbox", id: id, "class": "pick-question", value: question.key,
                              "data-count": String(question.count) });
      box.addEventListener("change", function () {
        if (!box.checked) { whole.checked = false; }
        updateSelection();
      });
      var label = question.text + "（" + question.count + " 次" +
        (question.variants > 1 ? "，" + question.variants + " 种写法" : "") + "）";
      list.appendChild(el("li", {}, [box, el("label", { "for": id, text: label })]));
    });
    whole.addEventListener("change", function () {
      Array.prototype.forEach.call(list.querySelectorAll("input.pick-question"), function (box) {
        box.checked = whole.checked;
      });
      updateSelection();
    });
    var children = [
      title,
      el("ul", { "class": "reasons", "aria-label": "原因" }, Object.keys(cluster.outcomes).map(function (kind) {
        return el("li", { text: (REASONS[kind] || kind) + " " + cluster.outcomes[kind] });
      })),
      weekTable(weeks, cluster.weeks),
      el("p", { "class": "guess", text: "机器人的猜测：" + (cluster.top_guess || "无") }),
      list
    ];
    if (cluster.more_questions) {
      children.push(el("p", { "class": "hint", text: "另有 " + cluster.more_questions + " 个问题未列出；勾选整组即一并导出。" }));
    }
    return el("section", { "class": "card cluster", "aria-label": "问题组：" + first.text }, children);
  }

  function render(data) {
    var box = $("clusters");
    box.textContent = "";
    var totals = reasonText(data.totals || {});
    $("summary").textContent = data.since + " 至 " + data.until + "：共 " + data.rows + " 次没答上" +
      (totals ? "（" + totals + "）" : "") + "；可作训练候选的 " + data.questions + " 次，分成 " +
      data.clusters.length + " 组。" + (data.left_out ? "另有 " + data.left_out + " 次问题太分散，未分组。" : "");
    if (!data.clusters.length) {
      box.appendChild(el("p", { "class": "hint", text: "这段时间没有可分组的问题。" }));
    }
    data.clusters.forEach(function (cluster, index) { box.appendChild(clusterCard(cluster, index, data.weeks)); });
    updateSelection();
  }

  function load() {
    notice("");
    $("summary").textContent = "正在读取…";
    var body = { since: $("since").value, until: $("until").value };
    post("supervisor/questions", body).then(asJson).then(function (result) {
      if (result.status === 401) { needLogin(result.data.error); return; }
      if (result.status !== 200) { $("summary").textContent = ""; notice(result.data.error || "读取失败，请稍后再试。"); return; }
      if (result.data.kind === "unavailable") { $("summary").textContent = ""; notice(result.data.message); return; }
      period = { since: result.data.since, until: result.data.until };
      $("since").value = period.since;
      $("until").value = period.until;
      render(result.data);
    }, function () { $("summary").textContent = ""; notice("网络错误，请稍后再试。"); });
  }

  function exportSelected() {
    var chosen = selection();
    if (!chosen.keys.length && !chosen.clusters.length) { return; }
    notice("");
    post("supervisor/export", { since: period.since, until: period.until, keys: chosen.keys, clusters: chosen.clusters })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.status === 200 && type.indexOf("yaml") !== -1) {
          return response.blob().then(function (blob) {
            var link = el("a", { href: URL.createObjectURL(blob),
                                 download: "nlu-candidates_" + period.since + "_" + period.until + ".yml" });
            document.body.appendChild(link);
            link.click();
            link.remove();
            setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
            $("selected-count").textContent = "已导出 " + chosen.count + " 次的问题。";
          });
        }
        return asJson(response).then(function (result) {
          if (result.status === 401) { needLogin(result.data.error); return; }
          notice(result.data.error || result.data.message || "导出失败，请稍后再试。");
        });
      }, function () { notice("网络错误，请稍后再试。"); });
  }

  function start() {
    $("period-form").addEventListener("submit", function (event) { event.preventDefault(); load(); });
    $("export").addEventListener("click", exportSelected);
    kit.request("GET", "me").then(asJson).then(function (result) {
        if (result.status !== 200) { needLogin(""); return; }
        if (result.data.role !== "supervisor") { needLogin("只有主管账号可以查看此页。"); return; }
        csrf = result.data.csrf;
        $("who-name").textContent = result.data.user;
        $("who").hidden = false;
        $("login-view").hidden = true;
        $("supervisor-view").hidden = false;
        load();
      }, function () { notice("网络错误，请稍后再试。"); });
  }

  document.addEventListener("DOMContentLoaded", start);
}());

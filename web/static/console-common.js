/*
 * What the agent console and the supervisor page share: building elements (text only
 * through textContent, never as HTML), requests to /agent/api/ with the session's CSRF
 * token, reading a JSON reply, the notice line.
 */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; }
      else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  // the fetch Response of /agent/api/<path>; body (if any) as JSON, token as X-CSRF-Token
  function request(method, path, body, token) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (token) { headers["X-CSRF-Token"] = token; }
    return fetch("/agent/api/" + path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
  }

  // {status, data}; a reply that is not JSON reads as {}
  function asJson(response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      return { status: response.status, data: data };
    });
  }

  function notice(text) {
    var line = document.getElementById("notice");
    line.textContent = text || "";
    line.hidden = !text;
  }

  window.ConsoleKit = { el: el, request: request, asJson: asJson, notice: notice };
})();

// bgagent's dashboard: everything it shows comes from the API (/v1/*,
// /metrics) with the bearer token; the page itself holds no data. The token
// comes from the URL fragment (#token=..., never sent to a server) or the
// form, and is kept in sessionStorage. Task text is put in with
// textContent only: ids and errors are other people's strings.
"use strict";
(function () {
  var REFRESH_MS = 3000;
  var MAX_SAMPLES = 120;
  var samples = []; // {t: ms, completed: n, cost: usd}
  var timer = null;

  function $(id) { return document.getElementById(id); }

  function takeToken() {
    var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      var token = m[1];
      try { token = decodeURIComponent(token); } catch (e) { /* as given */ }
      sessionStorage.setItem("bgagent-token", token);
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("bgagent-token");
  }

  function showLogin(message) {
    if (timer) { clearInterval(timer); timer = null; }
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("run").textContent = "not connected";
  }

  function api(path, token) {
    return fetch(path, { headers: { "Authorization": "Bearer " + token }, cache: "no-store" })
      .then(function (res) {
        if (res.status === 401) { throw { unauthorized: true }; }
        if (!res.ok) { throw new Error(path + ": HTTP " + res.status); }
        return res.text();
      });
  }

  function jsonLines(text) {
    return text.split("\n").filter(function (l) { return l.trim() !== ""; })
      .map(function (l) { return JSON.parse(l); });
  }

  // Prometheus text: "name{labels} value" -> value, by "name{labels}".
  function parseMetrics(text) {
    var out = {};
    text.split("\n").forEach(function (line) {
      if (line === "" || line.charAt(0) === "#") { return; }
      var i = line.lastIndexOf(" ");
      out[line.slice(0, i)] = Number(line.slice(i + 1));
    });
    return out;
  }

  function setText(id, text) { $(id).textContent = String(text); }

  function money(x) { return "$" + Number(x).toFixed(4); }

  function fillTable(id, rows) {
    var body = $(id);
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (rows.length === 0) {
      var tr0 = document.createElement("tr");
      var td0 = document.createElement("td");
      td0.colSpan = 3;
      td0.textContent = "none";
      tr0.appendChild(td0);
      body.appendChild(tr0);
      return;
    }
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      [r.id, r.attempts, r.error || ""].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // A line chart of points [x, y] into an SVG of 300 x 100 units.
  function drawChart(id, points, label) {
    var svg = $(id);
    var ns = "http://www.w3.org/2000/svg";
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    if (points.length < 2) {
      var t = document.createElementNS(ns, "text");
      t.setAttribute("x", "6"); t.setAttribute("y", "52");
      t.textContent = "collecting...";
      svg.appendChild(t);
      return;
    }
    var x0 = points[0][0], x1 = points[points.length - 1][0];
    var ymax = Math.max.apply(null, points.map(function (p) { return p[1]; }));
    if (ymax <= 0) { ymax = 1; }
    var coords = points.map(function (p) {
      var x = 4 + 292 * (p[0] - x0) / Math.max(1, x1 - x0);
      var y = 92 - 80 * p[1] / ymax;
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", coords.join(" "));
    svg.appendChild(line);
    var top = document.createElementNS(ns, "text");
    top.setAttribute("x", "4"); top.setAttribute("y", "9");
    top.textContent = label(ymax);
    svg.appendChild(top);
  }

  function render(status, metrics, failures, quarantined) {
    var states = ["pending", "running", "retry_wait", "completed", "quarantined", "cancelled"];
    states.forEach(function (s) { setText("count-" + s, status.tasks[s]); });
    setText("run", status.run.id ? "run " + status.run.id + ", " + status.run.state : "no run yet");
    setText("updated", "updated " + new Date().toLocaleTimeString());
    var b = status.budget;
    $("tokens-meter").value = b.tokens_limit ? Math.min(1, b.tokens_used / b.tokens_limit) : 0;
    setText("tokens-text", b.tokens_used + " of " + b.tokens_limit);
    $("cost-meter").value = b.cost_limit ? Math.min(1, b.cost_used / b.cost_limit) : 0;
    setText("cost-text", money(b.cost_used) + " of " + money(b.cost_limit));
    setText("budget-period", b.period || "run");
    var limit = metrics["bgagent_rate_limit_requests_per_minute"] || 0;
    var used = metrics["bgagent_rate_requests_per_minute"] || 0;
    $("rate-meter").value = limit ? Math.min(1, used / limit) : 0;
    setText("rate-text", limit ? used + " of " + limit + " requests/min" : "no limit known");
    setText("in-flight", metrics["bgagent_calls_in_flight"] || 0);
    setText("rate-waiting", metrics["bgagent_calls_waiting_for_rate"] || 0);
    setText("workers", metrics["bgagent_workers_up"] || 0);
    setText("nodes", metrics["bgagent_nodes_up"] || 0);
    $("paused").hidden = !metrics["bgagent_paused"];
    var circuits = $("circuits");
    circuits.textContent = "";
    var open = status.circuits_open || [];
    circuits.appendChild(document.createTextNode("Provider: "));
    var word = document.createElement("b");
    word.className = open.length ? "bad" : "";
    word.textContent = open.length ? "DOWN (" + open.join(", ") + ")" : "answering";
    circuits.appendChild(word);
    fillTable("failures", failures);
    fillTable("quarantined", quarantined);

    samples.push({ t: Date.now(), completed: status.tasks.completed, cost: b.cost_used });
    if (samples.length > MAX_SAMPLES) { samples.shift(); }
    var rate = [];
    for (var i = 1; i < samples.length; i++) {
      var dt = (samples[i].t - samples[i - 1].t) / 60000;
      rate.push([samples[i].t, dt > 0 ? Math.max(0, samples[i].completed - samples[i - 1].completed) / dt : 0]);
    }
    drawChart("chart-throughput", rate, function (y) { return Math.round(y) + "/min"; });
    drawChart("chart-spend", samples.map(function (s) { return [s.t, s.cost]; }), money);
  }

  function refresh(token) {
    return Promise.all([
      api("/v1/status", token).then(JSON.parse),
      api("/metrics", token).then(parseMetrics),
      api("/v1/tasks?state=retry_wait&limit=20&order=newest", token).then(jsonLines),
      api("/v1/tasks?state=quarantined&limit=20&order=newest", token).then(jsonLines)
    ]).then(function (r) {
      $("login").hidden = true;
      $("board").hidden = false;
      render(r[0], r[1], r[2], r[3]);
      document.body.setAttribute("data-state", "shown");
    }).catch(function (e) {
      if (e && e.unauthorized) {
        sessionStorage.removeItem("bgagent-token");
        showLogin("That token was refused.");
      } else {
        setText("updated", "no answer: " + (e && e.message ? e.message : e));
      }
    });
  }

  function start(token) {
    refresh(token);
    if (timer) { clearInterval(timer); }
    timer = setInterval(function () { refresh(token); }, REFRESH_MS);
  }

  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var token = $("token").value.trim();
    if (!token) { return; }
    sessionStorage.setItem("bgagent-token", token);
    $("token").value = "";
    start(token);
  });

  var token = takeToken();
  if (token) { start(token); } else { showLogin(""); }
})();

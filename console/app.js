// danejoin console: a client of the management API (docs/admin-api.md). No build step, no
// dependency. Every text from data goes into the page through textContent, never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { scope: null, csrf: sessionStorage.getItem("dj_csrf") || "", devOffset: 0,
                  es: null, timer: null, joins: [] };
  const PAGE = 50;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
      tr.appendChild(td);
    }
    return tr;
  }
  function time(t) { return t ? new Date(t * 1000).toISOString().replace(".000Z", "Z") : "-"; }

  async function api(method, path, body, type) {
    const h = {};
    if (method !== "GET") h["X-CSRF-Token"] = state.csrf;
    if (body !== undefined) h["Content-Type"] = type || "application/json";
    const r = await fetch(path, { method, headers: h, credentials: "same-origin",
      body: body === undefined ? undefined : (typeof body === "string" ? body : JSON.stringify(body)) });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (r.status === 401 && path !== "/api/v1/session") showLogin("");
    return { status: r.status, body: j };
  }

  function showLogin(msg) {
    $("login").hidden = false; $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
    for (const p of document.querySelectorAll(".page")) p.hidden = true;
    $("login-error").textContent = msg || "";
    if (state.es) { state.es.close(); state.es = null; }
  }

  async function start() {
    const r = await api("GET", "/api/v1/whoami");
    if (r.status !== 200) { showLogin(""); return; }
    state.scope = r.body.scope;
    document.body.classList.toggle("readonly", state.scope === "read");
    $("login").hidden = true; $("nav").hidden = false; $("logout").hidden = false;
    $("who").textContent = r.body.actor + " (" + r.body.scope + ")";
    route();
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/v1/session", { key: $("apikey").value });
    $("apikey").value = "";
    if (r.status !== 200) {
      $("login-error").textContent = (r.body && r.body.error) || ("refused (" + r.status + ")");
      return;
    }
    state.csrf = r.body.csrf; sessionStorage.setItem("dj_csrf", state.csrf);
    start();
  });
  $("logout").addEventListener("click", async () => {
    await api("DELETE", "/api/v1/session"); sessionStorage.removeItem("dj_csrf"); showLogin("Logged out.");
  });

  function route() {
    const page = (location.hash || "#devices").slice(1);
    for (const p of document.querySelectorAll(".page")) p.hidden = p.id !== "page-" + page;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
    if (state.timer) { clearInterval(state.timer); state.timer = null; }
    if (page !== "joins" && state.es) { state.es.close(); state.es = null; }
    ({ devices: loadDevices, joins: loadJoins, peers: loadPeers, ownership: loadOwnership,
       audit: loadAudit }[page] || loadDevices)();
  }
  window.addEventListener("hashchange", () => { if (state.scope) route(); });

  // ---- Devices
  async function loadDevices() {
    const q = $("dev-q").value.trim();
    const r = await api("GET", "/api/v1/devices?limit=" + PAGE + "&offset=" + state.devOffset +
                        (q ? "&q=" + encodeURIComponent(q) : ""));
    const tb = $("devices").tBodies[0];
    tb.replaceChildren();
    if (r.status !== 200) { $("dev-total").textContent = (r.body && r.body.error) || "error"; return; }
    $("dev-total").textContent = r.body.total + " devices";
    for (const d of r.body.devices) {
      const ops = el("span", null, "ops");
      const reset = el("button", "Reset nonces"); reset.type = "button";
      reset.addEventListener("click", () => change("Reset the nonces of " + d.dev_eui + "?", "POST",
        "/api/v1/devices/" + d.dev_eui + "/reset-nonces"));
      const del = el("button", "Delete", "danger"); del.type = "button";
      del.addEventListener("click", () => change("Delete device " + d.dev_eui + "?", "DELETE",
        "/api/v1/devices/" + d.dev_eui));
      ops.append(reset, " ", del);
      const tr = row([el("span", d.dev_eui, "mono"), el("span", d.join_eui, "mono"), d.mac_version,
                      d.join_nonce_last, d.has_session ? "yes" : "no", ops]);
      tr.lastChild.className = "ops";
      tb.appendChild(tr);
    }
    $("dev-prev").disabled = state.devOffset === 0;
    $("dev-next").disabled = state.devOffset + PAGE >= r.body.total;
  }
  async function change(question, method, path) {
    if (!window.confirm(question)) return;
    const r = await api(method, path);
    $("import-result").textContent = r.status === 200 ? "Done." : ((r.body && r.body.error) || "refused");
    loadDevices();
  }
  $("dev-search").addEventListener("click", () => { state.devOffset = 0; loadDevices(); });
  $("dev-q").addEventListener("keydown", (e) => { if (e.key === "Enter") { state.devOffset = 0; loadDevices(); } });
  $("dev-prev").addEventListener("click", () => { state.devOffset = Math.max(0, state.devOffset - PAGE); loadDevices(); });
  $("dev-next").addEventListener("click", () => { state.devOffset += PAGE; loadDevices(); });
  $("csv-import").addEventListener("click", async () => {
    const f = $("csv-file").files[0];
    const out = $("import-result");
    if (!f) { out.className = "error"; out.textContent = "Choose a CSV file first."; return; }
    const r = await api("POST", "/api/v1/devices", await f.text(), "text/csv");
    if (r.status === 200) { out.className = "okmsg"; out.textContent = r.body.imported + " devices imported."; }
    else { out.className = "error"; out.textContent = (r.body && r.body.line ? "Line " + r.body.line + ": " : "") + ((r.body && r.body.error) || "refused"); }
    loadDevices();
  });

  // ---- Joins
  // The chart: per second, accepted joins (green) with the refused ones stacked on top, one
  // series per refusal reason (the TS002 Result) seen in the window. A reason keeps its colour
  // (a CSS class .sw.rN, read back from the legend's swatch) while the page lives.
  const REASON_COLOURS = 8;
  const reasonClass = new Map();
  function reasonsOf(series) {
    const seen = new Map();
    for (const s of series)
      for (const [r, n] of Object.entries(s.refused_by_reason || {}))
        seen.set(r, (seen.get(r) || 0) + n);
    for (const r of seen.keys())
      if (!reasonClass.has(r)) reasonClass.set(r, "r" + (reasonClass.size % REASON_COLOURS));
    return [...seen.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }
  function legend(series, reasons) {
    const lg = $("chart-legend"), colours = {};
    const entry = (cls, label, key) => {
      const it = el("span", null, "item"), sw = el("span", null, "sw " + cls);
      if (key !== undefined) it.dataset.reason = key;
      it.append(sw, el("span", label));
      lg.appendChild(it);
      return getComputedStyle(sw).backgroundColor;
    };
    lg.replaceChildren();
    let acc = 0;
    for (const s of series) acc += s.accepted;
    colours.accepted = entry("ok", "accepted (" + acc + ")");
    for (const [r, n] of reasons) colours[r] = entry(reasonClass.get(r), r + " (" + n + ")", r);
    if (!reasons.length) lg.appendChild(el("span", "no refusals in the last " + series.length + " s", "item muted"));
    return colours;
  }
  function draw(series) {
    const c = $("chart"), g = c.getContext("2d");
    const w = c.width, h = c.height, n = series.length;
    const reasons = reasonsOf(series), colours = legend(series, reasons);
    let max = 1;
    for (const s of series) max = Math.max(max, s.accepted + s.refused);
    g.clearRect(0, 0, w, h);
    const bw = w / n, unit = (h - 20) / max;
    series.forEach((s, i) => {
      let y = h;
      const bar = (count, colour) => {
        if (!count) return;
        g.fillStyle = colour; g.fillRect(i * bw, y - count * unit, bw - 1, count * unit);
        y -= count * unit;
      };
      bar(s.accepted, colours.accepted);
      const by = s.refused_by_reason || {};
      for (const [r] of reasons) bar(by[r] || 0, colours[r]);
    });
    g.fillStyle = "#5b6473"; g.font = "12px sans-serif"; g.fillText("max " + max + "/s", 4, 14);
    c.setAttribute("aria-label", "joins per second, last " + n + " seconds: " +
                   $("chart-legend").textContent);
  }
  async function refreshSeries() {
    const r = await api("GET", "/api/v1/metrics");
    if (r.status !== 200) return;
    $("joins-total").textContent = r.body.joins_total;
    $("joins-refused").textContent = r.body.joins_refused;
    draw(r.body.series);
  }
  function showJoins() {
    const tb = $("joins").tBodies[0];
    tb.replaceChildren();
    for (const j of state.joins)
      tb.appendChild(row([time(j.at), el("span", j.dev_eui, "mono"), j.peer,
                          el("span", j.result, "badge " + (j.accepted ? "green" : "red"))]));
  }
  function loadJoins() {
    refreshSeries();
    state.timer = setInterval(refreshSeries, 1000);
    if (!state.es) {
      state.es = new EventSource("/api/v1/events");
      state.es.addEventListener("join", (e) => {
        state.joins.unshift(JSON.parse(e.data));
        state.joins.length = Math.min(state.joins.length, 100);
        showJoins();
      });
    }
    showJoins();
  }

  // ---- Peers and trust
  function colour(verdict, days) {
    if (verdict === "secure" && (days === undefined || days > 14)) return "green";
    if (verdict === "pending" || verdict === "tempfail" || verdict === "not used (auth = pkix)" ||
        (verdict === "secure" && days <= 14)) return "amber";
    return "red";
  }
  function kv(card, k, v) { const p = el("div"); p.append(el("strong", k + ": "), el("span", v)); card.appendChild(p); }
  async function loadPeers() {
    const [p, s] = await Promise.all([api("GET", "/api/v1/peers"), api("GET", "/api/v1/self")]);
    const self = $("self"), peers = $("peers");
    self.replaceChildren(); peers.replaceChildren();
    if (s.status === 200) {
      const c = s.body.certificate, t = s.body.tlsa;
      const col = t.match === "match" ? colour(t.verdict, c.days_left) : (t.verdict === "secure" ? "red" : "amber");
      const card = el("div", null, "card " + col);
      card.id = "card-self";
      card.appendChild(el("h2", "This join server"));
      card.appendChild(el("span", t.match || t.verdict, "badge " + col));
      kv(card, "Subject", c.subject); kv(card, "SPKI SHA-256", c.spki_sha256);
      kv(card, "Not after", c.not_after + " (" + c.days_left + " days)");
      kv(card, "TLSA", (t.name || "") + " " + t.verdict + (t.ttl_left !== undefined ? ", TTL " + t.ttl_left + " s" : ""));
      self.appendChild(card);
    }
    if (p.status !== 200) return;
    for (const x of p.body.peers) {
      const col = colour(x.tlsa.verdict);
      const card = el("div", null, "card " + col);
      card.dataset.peer = x.name;
      card.appendChild(el("h2", x.name));
      card.appendChild(el("span", x.tlsa.verdict, "badge " + col));
      kv(card, "Identity", x.identity); kv(card, "Role", x.role);
      kv(card, "SenderIDs", x.sender_ids.join(", "));
      kv(card, "Requests", x.requests + " (" + x.refusals + " refused)");
      kv(card, "Last seen", time(x.last_seen));
      if (x.tlsa.ttl_left !== undefined) kv(card, "TTL left", x.tlsa.ttl_left + " s");
      if (x.tlsa.why) kv(card, "Why", x.tlsa.why);
      if (x.certificate) {
        kv(card, "Certificate", x.certificate.subject);
        kv(card, "SPKI SHA-256", x.certificate.spki_sha256);
        kv(card, "Not after", x.certificate.not_after);
      }
      peers.appendChild(card);
    }
    state.timer = setInterval(loadPeersQuiet, 3000);
  }
  async function loadPeersQuiet() { const t = state.timer; state.timer = null; clearInterval(t); await loadPeers(); }

  // ---- Ownership
  async function loadOwnership() {
    const r = await api("GET", "/api/v1/transfers");
    const tb = $("transfers").tBodies[0];
    tb.replaceChildren();
    if (r.status === 200)
      for (const t of r.body.transfers) tb.appendChild(row([el("span", t.dev_eui, "mono"), t.serial, t.from, t.to, t.step]));
  }
  $("own-show").addEventListener("click", async () => {
    const eui = $("own-eui").value.trim();
    const out = $("chain");
    out.replaceChildren();
    const r = await api("GET", "/api/v1/devices/" + encodeURIComponent(eui) + "/ownership");
    if (r.status !== 200) { out.appendChild(el("p", (r.body && r.body.error) || "error", "error")); return; }
    out.appendChild(el("p", "Owner " + r.body.owner + ", serial " + r.body.serial + (r.body.published ? ", published" : ", not published") +
                       "; auth code " + (r.body.auth_code.set ? "set" : "not set")));
    const ch = el("div", null, "chain");
    for (const l of r.body.links) {
      // green: the signature verified under the signer's _owner key (DNSSEC-secure); amber: not
      // checked now (no resolver, lookup failed); red: why it does not verify
      const col = l.verified === true ? "green" : (l.result === "not_checked" || l.result === "tempfail") ? "amber" : "red";
      const card = el("div", null, "card link " + col);
      card.dataset.result = l.result || "";
      card.appendChild(el("h2", "#" + l.serial + " " + l.to));
      card.appendChild(el("span", l.verified === true ? "verified" : l.verification || "not verified", "badge link-verdict " + col));
      kv(card, "From", l.from); kv(card, "Signer", l.signer + (l.auth ? " (" + l.auth + ")" : ""));
      if (l.signer_key) kv(card, "Signer key", l.signer_key.name + ": " + l.signer_key.dnssec);
      kv(card, "NetIDs", l.net_ids.join(", ")); kv(card, "AS-IDs", l.as_ids.join(", "));
      ch.appendChild(card);
    }
    out.appendChild(ch);
    out.appendChild(el("p", r.body.verification, "chain-verdict"));
    if (r.body.dns && r.body.dns.name)
      out.appendChild(el("p", "Published at " + r.body.dns.name + " (" + r.body.dns.dnssec + "): " +
                         (r.body.dns.same_as_stored === true ? "the stored chain" : r.body.dns.same_as_stored === false ? "differs from the stored chain" : "not compared") +
                         (r.body.dns.why ? " - " + r.body.dns.why : "")));
  });

  // ---- Ownership: auth codes and transfers by auth code (operate scope; docs/console.md)
  function xferSay(id, good, text) { const o = $(id); o.className = good ? "okmsg" : "error"; o.textContent = text; }
  function xferError(r) { return (r.body && r.body.error) || ("refused (" + r.status + ")"); }
  function xferShowChain(eui) { $("own-eui").value = eui; $("own-show").click(); }
  function xferList(text) { return text.split(",").map((x) => x.trim()).filter((x) => x !== ""); }
  function xferEui(id, out) {
    const eui = $(id).value.trim();
    if (/^[0-9a-fA-F]{16}$/.test(eui)) return eui;
    xferSay(out, false, "Enter a DevEUI of 16 hex digits first.");
    return null;
  }
  $("ac-set").addEventListener("click", async () => {
    $("ac-out").hidden = true; $("ac-code").value = "";
    const eui = xferEui("own-eui", "ac-result");
    const days = Number($("ac-days").value);
    if (!eui) return;
    if (!(days >= 1 && days <= 366)) { xferSay("ac-result", false, "Valid for: 1 to 366 days."); return; }
    if (!window.confirm("Set a new auth code for " + eui + "? An earlier code stops working.")) return;
    const r = await api("POST", "/api/v1/devices/" + eui + "/auth-code", { expires_in: Math.round(days * 86400) });
    if (r.status !== 201) { xferSay("ac-result", false, xferError(r)); return; }
    $("ac-code").value = r.body.auth_code;
    $("ac-out").hidden = false;
    xferSay("ac-result", true, "Auth code set for " + eui + " (owner " + r.body.owner + "), valid until " +
            time(r.body.expires_at) + ". It is shown only now: copy it and give it to the new owner.");
    $("ac-code").focus(); $("ac-code").select();
  });
  $("ac-copy").addEventListener("click", async () => {
    const c = $("ac-code");
    c.select();
    try { await navigator.clipboard.writeText(c.value); } catch (e) { document.execCommand("copy"); }
    xferSay("ac-result", true, "Copied.");
  });
  $("ac-revoke").addEventListener("click", async () => {
    $("ac-out").hidden = true; $("ac-code").value = "";
    const eui = xferEui("own-eui", "ac-result");
    if (!eui || !window.confirm("Revoke the auth code of " + eui + "?")) return;
    const r = await api("DELETE", "/api/v1/devices/" + eui + "/auth-code");
    xferSay("ac-result", r.status === 200, r.status === 200 ? "Auth code of " + eui + " revoked." : xferError(r));
    if (r.status === 200) xferShowChain(eui);
  });
  $("xfer-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const eui = xferEui("xf-eui", "xf-result"), zone = $("xf-zone").value.trim();
    if (!eui) return;
    if (!window.confirm("Transfer " + eui + " to " + zone + " with this auth code?")) return;
    xferSay("xf-result", true, "Transferring (DNS updates)...");
    const r = await api("POST", "/api/v1/transfers", { dev_eui: eui, auth_code: $("xf-code").value.trim(),
      to_zone: zone, net_ids: xferList($("xf-nets").value), as_ids: xferList($("xf-ases").value) });
    if (r.status !== 200) { xferSay("xf-result", false, xferError(r)); loadOwnership(); return; }
    $("xf-code").value = ""; $("ac-code").value = ""; $("ac-out").hidden = true; $("ac-result").textContent = "";
    xferSay("xf-result", true, "Transferred " + r.body.dev_eui + " from " + r.body.from + " to " + r.body.to);
    loadOwnership();
    xferShowChain(eui);
  });

  // ---- Audit
  async function loadAudit() {
    const e = $("aud-eui").value.trim(), v = $("aud-event").value.trim();
    let q = "/api/v1/audit?limit=200";
    if (e) q += "&dev_eui=" + encodeURIComponent(e);
    if (v) q += "&event=" + encodeURIComponent(v);
    const r = await api("GET", q);
    const tb = $("audit").tBodies[0];
    tb.replaceChildren();
    if (r.status !== 200) { tb.appendChild(row([(r.body && r.body.error) || "error"])); return; }
    for (const a of r.body.entries.slice().reverse())
      tb.appendChild(row([a.id, time(a.at), el("span", a.dev_eui || "-", "mono"), a.event, a.actor, a.detail]));
  }
  $("aud-search").addEventListener("click", loadAudit);

  start();
})();

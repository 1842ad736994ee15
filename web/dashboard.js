// ulvs dashboard: reads the status stream (/v1/events, one JSON status a second, see
// src/metrics/status.ts for its fields), keeps a short history per service in the page and
// draws it. No framework, no network access but this director's listener.
(function () {
  'use strict';

  var HISTORY = 60;      // points kept per service (one per status, about a minute)
  var STALE_MS = 3500;   // no status for this long: the page says so
  var MAX_EVENTS = 30;   // recent events shown

  var history = {};      // service or server id -> { t: [], conns: [], pkts: [], bytes: [] } (totals)
  var seen = {};         // ids recorded from the current status (the others' history is dropped)
  var lastAt = Date.now(); // when the last status arrived, or the page loaded (page clock, ms)

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // 1234 -> "1.23 k", (56500000, 'B') -> "56.5 MB", (0, 'B') -> "0 B"
  function human(n, unit) {
    var prefixes = ['', 'k', 'M', 'G', 'T'];
    var i = 0;
    while (Math.abs(n) >= 1000 && i < prefixes.length - 1) { n /= 1000; i++; }
    var s = i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0);
    var suffix = prefixes[i] + (unit || '');
    return suffix ? s + ' ' + suffix : s;
  }

  // Append the totals of one status to a service's history.
  function record(id, at, s) {
    seen[id] = true;
    var h = history[id] || (history[id] = { t: [], conns: [], pkts: [], bytes: [] });
    h.t.push(at);
    h.conns.push(s.conns);
    h.pkts.push(s.inpkts + s.outpkts);
    h.bytes.push(s.inbytes + s.outbytes);
    if (h.t.length > HISTORY + 1) { h.t.shift(); h.conns.shift(); h.pkts.shift(); h.bytes.shift(); }
    return h;
  }

  // Per-second rates between successive totals (a counter that went back, a restart, gives 0).
  function rates(h, key) {
    var out = [];
    for (var i = 1; i < h.t.length; i++) {
      var dt = (h.t[i] - h.t[i - 1]) / 1000;
      var dv = h[key][i] - h[key][i - 1];
      out.push(dt > 0 && dv > 0 ? dv / dt : 0);
    }
    return out;
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function sparkline(values) {
    var w = 120, hgt = 36;
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + hgt);
    svg.setAttribute('preserveAspectRatio', 'none');
    var max = 0;
    for (var i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
    var pts = [];
    if (values.length === 1) values = [values[0], values[0]];
    for (var j = 0; j < values.length; j++) {
      var x = w - ((values.length - 1 - j) / (HISTORY - 1)) * w; // newest at the right edge
      var y = hgt - 2 - (max > 0 ? (values[j] / max) * (hgt - 4) : 0);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    var line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    return svg;
  }

  function chart(label, field, values, unit) {
    var now = values.length ? values[values.length - 1] : 0;
    var box = el('div', { class: 'chart' });
    box.appendChild(el('span', { class: 'label' }, label));
    box.appendChild(el('div', { class: 'value', 'data-field': field, 'data-value': now }, human(now, unit)));
    box.appendChild(sparkline(values));
    return box;
  }

  function healthText(s) {
    if (!s.inRules) return 'down (removed)';
    if (s.up === false) return 'down';
    if (s.up === true) return 'up';
    return s.weight > 0 ? 'in service' : 'weight 0';
  }

  // s: the server's status; cps: its connections per second from this page's history
  function serverRow(s, cps) {
    var tr = el('tr', { 'data-server': s.id });
    if (s.up === false || !s.inRules) tr.className = 'down';
    if (!s.inRules) tr.className += ' out';
    var name = s.id + (s.sorry ? ' (sorry)' : '');
    var cells = [
      ['name', name], ['forward', s.forward, 'col-fwd'], ['weight', s.inRules ? s.weight : '–'], ['health', healthText(s)],
      ['active', s.active], ['inactive', s.inactive], ['cps', human(cps), 'col-rate', cps], ['conns', human(s.conns), 'col-total', s.conns],
    ];
    for (var i = 0; i < cells.length; i++) {
      // data-value: the number behind a shortened text (1.23 k), for scripts and tests
      var td = el('td', cells[i][3] === undefined ? { 'data-field': cells[i][0] } : { 'data-field': cells[i][0], 'data-value': cells[i][3] }, cells[i][1]);
      if (cells[i][2]) td.className = cells[i][2];
      tr.appendChild(td);
    }
    return tr;
  }

  // v: a service's status at time `at`; h: its history
  function serviceCard(v, h, at) {
    var card = el('section', { class: 'card service', 'data-service': v.id });
    var head = el('div', { class: 'service-head' });
    head.appendChild(el('h2', {}, v.id));
    head.appendChild(el('span', { class: 'badge' }, v.scheduler + (v.persistent ? ', persistent ' + v.persistent + ' s' : '')));
    if (v.quorum !== null) head.appendChild(el('span', { class: 'badge ' + (v.quorum ? 'ok' : 'bad'), 'data-field': 'quorum' }, v.quorum ? 'quorum up' : 'quorum lost'));
    if (v.sorryServer) head.appendChild(el('span', { class: 'badge' + (v.quorum === false ? ' warn' : ''), 'data-field': 'sorry' }, 'sorry server ' + v.sorryServer + (v.quorum === false ? ' serving' : '')));
    card.appendChild(head);
    var charts = el('div', { class: 'charts' });
    charts.appendChild(chart('conn/s', 'cps', rates(h, 'conns'), ''));
    charts.appendChild(chart('packets/s', 'pps', rates(h, 'pkts'), ''));
    charts.appendChild(chart('bytes/s', 'bps', rates(h, 'bytes'), 'B'));
    card.appendChild(charts);
    var wrap = el('div', { class: 'table-wrap' });
    var table = el('table');
    var hr = el('tr');
    var heads = [['real server'], ['fwd', 'col-fwd'], ['weight'], ['health'], ['active'], ['inactive'], ['conn/s', 'col-rate'], ['conns', 'col-total']];
    for (var i = 0; i < heads.length; i++) {
      var th = el('th', {}, heads[i][0]);
      if (heads[i][1]) th.className = heads[i][1];
      hr.appendChild(th);
    }
    table.appendChild(el('thead')).appendChild(hr);
    var body = table.appendChild(el('tbody'));
    for (var j = 0; j < v.servers.length; j++) {
      var sh = record(v.id + ' ' + v.servers[j].id, at, v.servers[j]);
      var r = rates(sh, 'conns');
      body.appendChild(serverRow(v.servers[j], r.length ? r[r.length - 1] : 0));
    }
    if (!v.servers.length) body.appendChild(el('tr')).appendChild(el('td', { colspan: '8' }, 'no real server'));
    wrap.appendChild(table);
    card.appendChild(wrap);
    return card;
  }

  function renderRole(st) {
    var role = $('role');
    var box = $('vrrp');
    box.replaceChildren();
    if (!st.vrrp) { role.textContent = 'no VRRP'; role.className = 'badge'; return; }
    var states = st.vrrp.instances.map(function (i) { return i.state; });
    var master = states.indexOf('MASTER') >= 0;
    role.textContent = master ? 'MASTER' : (states[0] || 'UNKNOWN');
    role.className = 'badge ' + (master ? 'ok' : 'warn');
    st.vrrp.groups.concat(st.vrrp.instances).forEach(function (e) {
      box.appendChild(el('span', { class: 'badge', 'data-vrrp': e.name }, e.name + ': ' + (e.state || 'UNKNOWN')));
    });
    if (st.vrrp.syncRole) box.appendChild(el('span', { class: 'badge', 'data-field': 'sync-role' }, 'sync daemon: ' + st.vrrp.syncRole));
  }

  function renderEvents(events) {
    var list = $('events');
    list.replaceChildren();
    if (!events) { list.appendChild(el('li', {}, 'not shown on a public listener')); return; }
    if (!events.length) { list.appendChild(el('li', {}, 'none yet')); return; }
    events.slice(0, MAX_EVENTS).forEach(function (e) {
      var li = el('li', { class: e.level, 'data-kind': e.kind });
      li.appendChild(el('time', { datetime: new Date(e.at).toISOString() }, new Date(e.at).toLocaleTimeString()));
      li.appendChild(el('span', { class: 'badge' }, e.kind));
      li.appendChild(el('span', { class: 'msg' }, e.msg));
      list.appendChild(li);
    });
  }

  function render(st) {
    seen = {};
    $('connections').textContent = human(st.connections);
    $('connections').setAttribute('data-value', st.connections);
    $('workers').textContent = st.workers;
    var th = record('*', st.at, st.totals);
    var last = function (a) { return a.length ? a[a.length - 1] : 0; };
    $('total-cps').textContent = human(last(rates(th, 'conns')));
    $('total-pps').textContent = human(last(rates(th, 'pkts')));
    $('total-bps').textContent = human(last(rates(th, 'bytes')), 'B');
    var d = $('defense');
    d.hidden = !(st.defense && st.defense.on.length);
    if (!d.hidden) d.textContent = 'defence on: ' + st.defense.on.join(', ');
    renderRole(st);
    var cards = st.services.map(function (v) { return serviceCard(v, record(v.id, st.at, v), st.at); });
    if (!cards.length) cards.push(el('section', { class: 'card' }, 'No virtual service.'));
    $('services').replaceChildren.apply($('services'), cards);
    renderEvents(st.events);
    for (var id in history) if (!seen[id]) delete history[id]; // a service or server gone from the rules
  }

  function setLive(state, text) {
    var live = $('live');
    live.setAttribute('data-state', state);
    live.textContent = text;
  }

  function connect() {
    var es = new EventSource('v1/events');
    es.onmessage = function (m) {
      var st;
      try { st = JSON.parse(m.data); } catch (e) { return; }
      lastAt = Date.now();
      setLive('live', 'live ' + new Date(st.at).toLocaleTimeString());
      render(st);
    };
    // the server's `event: error` (a status it could not take); a lost connection is an error
    // event without data, and EventSource reconnects by itself (the stale timer reports it)
    es.addEventListener('error', function (m) {
      if (!m.data) return;
      var why = m.data;
      try { why = JSON.parse(m.data).error; } catch (e) { /* the text as it is */ }
      setLive('stale', 'error: ' + why);
    });
  }

  setInterval(function () {
    if (Date.now() - lastAt > STALE_MS) setLive('stale', 'no update for ' + Math.round((Date.now() - lastAt) / 1000) + ' s');
  }, 1000);
  connect();
})();

// tracelens's pictures: the service graph, latency histograms, the
// bottleneck table, trace waterfalls, trace comparison and the verdict.
// Plain JavaScript and SVG, no library: built into the tracelens binary,
// opened from disk (the report) or served by `tracelens serve` (live).
'use strict';
(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const body = document.body;
  const MODE = body.dataset.mode; // "report" or "live"
  const state = { data: null, view: 'graph', service: '', filters: { since: '', until: '', service: '' } };
  window.tracelens = { timings: {}, state };

  // ---------- small helpers ----------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const k in attrs) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  function fmtNs(ns) {
    ns = Number(ns);
    if (!isFinite(ns)) return '-';
    const a = Math.abs(ns);
    const sign = ns < 0 ? '-' : '';
    if (a < 1e3) return sign + Math.round(a) + 'ns';
    if (a < 1e6) return sign + trim(a / 1e3) + 'µs';
    if (a < 1e9) return sign + trim(a / 1e6) + 'ms';
    if (a < 60e9) return sign + trim(a / 1e9) + 's';
    return sign + trim(a / 60e9) + 'min';
  }
  function trim(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
  function fmtCount(n) { return Number(n).toLocaleString('en-US'); }
  function pct(v) { return (v * 100).toFixed(v < 0.001 && v > 0 ? 3 : 1) + '%'; }
  function signedNs(ns) { return (ns >= 0 ? '+' : '') + fmtNs(ns); }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function mark(name) { window.tracelens.timings[name] = performance.now(); }

  const tooltip = document.getElementById('tooltip');
  function showTip(evt, lines) {
    clear(tooltip);
    for (const l of lines) tooltip.append(el('div', null, l));
    tooltip.hidden = false;
    const x = Math.min(evt.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    const y = Math.min(evt.clientY + 14, window.innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = x + 'px';
    tooltip.style.top = y + 'px';
  }
  function hideTip() { tooltip.hidden = true; }
  function tipOn(node, lines) {
    node.addEventListener('mousemove', (e) => showTip(e, typeof lines === 'function' ? lines() : lines));
    node.addEventListener('mouseleave', hideTip);
    node.addEventListener('focus', () => {
      const r = node.getBoundingClientRect();
      showTip({ clientX: r.right, clientY: r.top }, typeof lines === 'function' ? lines() : lines);
    });
    node.addEventListener('blur', hideTip);
  }

  // ---------- views ----------
  const VIEWS = [
    ['graph', 'Service graph'],
    ['latency', 'Latency'],
    ['bottlenecks', 'Bottlenecks'],
    ['traces', 'Traces'],
    ['compare', 'Compare'],
    ['verdict', 'Verdict'],
    ['search', 'Search'],
  ];
  function available(view) {
    const d = state.data;
    if (view === 'search') return MODE === 'live';
    if (!d) return view === 'traces' && MODE === 'live';
    if (view === 'verdict') return MODE === 'live' || !!d.verdict;
    if (view === 'compare') return MODE === 'live' || !!(d.traces && d.traces.traces.length >= 2);
    if (view === 'traces') return MODE === 'live' || !!(d.traces && d.traces.traces.length);
    return true;
  }
  function renderNav() {
    const nav = clear(document.getElementById('views'));
    const list = el('ul', { role: 'tablist' });
    for (const [id, label] of VIEWS) {
      if (!available(id)) continue;
      const b = el('button', {
        role: 'tab', id: 'tab-' + id, 'aria-selected': String(state.view === id), 'aria-controls': 'main',
        'data-view': id, text: label, onclick: () => go(id),
      });
      list.append(el('li', null, b));
    }
    list.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const tabs = [...list.querySelectorAll('button')];
      const i = tabs.indexOf(document.activeElement);
      if (i < 0) return;
      const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      next.click();
    });
    nav.append(list);
  }
  function go(view, opts) {
    state.view = view;
    if (MODE === 'report' && !(opts && opts.keepHash)) history.replaceState(null, '', '#' + view);
    renderNav();
    render();
  }
  function renderControls() {
    const c = clear(document.getElementById('controls'));
    const d = state.data;
    const services = d ? [...new Set(d.graph.nodes.filter((n) => n.kind === 'service').map((n) => n.name))].sort() : [];
    const sel = el('select', { id: 'service-filter', 'aria-label': 'Only this service' },
      el('option', { value: '', text: 'All services' }));
    for (const s of services) sel.append(el('option', { value: s, text: s, selected: s === state.service }));
    sel.addEventListener('change', () => { state.service = sel.value; render(); });
    c.append(el('label', null, 'Service ', sel));
    if (MODE === 'live') {
      const since = el('input', { id: 'since', size: 14, value: state.filters.since, placeholder: 'e.g. 15m or RFC 3339' });
      const until = el('input', { id: 'until', size: 14, value: state.filters.until, placeholder: 'now' });
      const apply = el('button', { id: 'refresh', text: 'Refresh', onclick: () => {
        state.filters.since = since.value.trim();
        state.filters.until = until.value.trim();
        state.filters.service = state.service;
        load();
      } });
      c.append(el('label', null, 'Since ', since), el('label', null, 'Until ', until), apply);
    }
    if (state.service) c.append(el('button', { id: 'clear-filter', text: 'Show all', onclick: () => { state.service = ''; renderControls(); render(); } }));
  }
  function selectService(name) {
    state.service = state.service === name ? '' : name;
    renderControls();
    render();
  }

  function render() {
    const main = clear(document.getElementById('main'));
    hideTip();
    const d = state.data;
    if (!available(state.view)) state.view = 'graph';
    const t0 = performance.now();
    if (state.view === 'search') renderSearch(main);
    else if (state.view === 'traces' && MODE === 'live' && state.liveTrace) renderTraceView(main, [state.liveTrace], 0);
    else if (state.view === 'traces' && MODE === 'live' && state.liveTraceError) main.append(el('p', { class: 'warning', role: 'alert' }, state.liveTraceError));
    else if (!d) main.append(el('p', { class: 'muted' }, 'No data.'));
    else if (state.view === 'graph') renderGraph(main, d);
    else if (state.view === 'latency') renderLatency(main, d);
    else if (state.view === 'bottlenecks') renderBottlenecks(main, d);
    else if (state.view === 'traces') renderTraces(main, d);
    else if (state.view === 'compare') renderCompare(main, d);
    else if (state.view === 'verdict') renderVerdict(main, d);
    window.tracelens.timings['render:' + state.view] = performance.now() - t0;
    body.dataset.rendered = state.view;
  }

  // ---------- service graph ----------
  const KIND_LABEL = { service: 'service', database: 'database', messaging_system: 'messaging system', virtual: 'virtual (uninstrumented or external)' };

  // Layered left-to-right layout: cycles broken by a depth-first search,
  // layers by longest path from the sources, order in each layer by
  // barycentre sweeps.
  function layout(nodes, edges) {
    const n = nodes.length;
    const out = Array.from({ length: n }, () => []);
    const inc = Array.from({ length: n }, () => []);
    for (const e of edges) if (e.from !== e.to) { out[e.from].push(e.to); inc[e.to].push(e.from); }
    // Back edges of a DFS (from sources first) are reversed for layering.
    const color = new Uint8Array(n);
    const back = new Set();
    const order = [...Array(n).keys()].sort((a, b) => inc[a].length - inc[b].length || (nodes[a].name < nodes[b].name ? -1 : 1));
    for (const s of order) {
      if (color[s]) continue;
      const stack = [[s, 0]];
      color[s] = 1;
      while (stack.length) {
        const top = stack[stack.length - 1];
        const [v, i] = top;
        if (i < out[v].length) {
          top[1]++;
          const w = out[v][i];
          if (color[w] === 1) back.add(v * n + w);
          else if (color[w] === 0) { color[w] = 1; stack.push([w, 0]); }
        } else { color[v] = 2; stack.pop(); }
      }
    }
    const dagOut = Array.from({ length: n }, () => []);
    const indeg = new Int32Array(n);
    for (let v = 0; v < n; v++) for (const w of out[v]) {
      const [a, b] = back.has(v * n + w) ? [w, v] : [v, w];
      dagOut[a].push(b); indeg[b]++;
    }
    const layer = new Int32Array(n);
    const queue = [];
    for (let v = 0; v < n; v++) if (!indeg[v]) queue.push(v);
    for (let qi = 0; qi < queue.length; qi++) {
      const v = queue[qi];
      for (const w of dagOut[v]) { layer[w] = Math.max(layer[w], layer[v] + 1); if (--indeg[w] === 0) queue.push(w); }
    }
    // Sinks that are only called sit one layer after their latest caller
    // already; pull sources right next to what they call.
    for (let v = 0; v < n; v++) if (!inc[v].length && dagOut[v].length) {
      let m = Infinity; for (const w of dagOut[v]) m = Math.min(m, layer[w]);
      layer[v] = Math.max(0, m - 1);
    }
    const layers = [];
    for (let v = 0; v < n; v++) (layers[layer[v]] ||= []).push(v);
    for (const l of layers) if (l) l.sort((a, b) => (nodes[a].name < nodes[b].name ? -1 : 1));
    const pos = new Float64Array(n);
    const setPos = () => { for (const l of layers) if (l) l.forEach((v, i) => { pos[v] = (i + 0.5) / l.length; }); };
    setPos();
    for (let sweep = 0; sweep < 6; sweep++) {
      const down = sweep % 2 === 0;
      for (const l of layers) {
        if (!l) continue;
        const bary = new Map();
        for (const v of l) {
          const nb = down ? inc[v] : out[v];
          let s = 0, c = 0;
          for (const w of nb) if (layer[w] !== layer[v]) { s += pos[w]; c++; }
          bary.set(v, c ? s / c : pos[v]);
        }
        l.sort((a, b) => bary.get(a) - bary.get(b) || (nodes[a].name < nodes[b].name ? -1 : 1));
        l.forEach((v, i) => { pos[v] = (i + 0.5) / l.length; });
      }
    }
    return { layer, layers: layers.map((l) => l || []) };
  }

  function errorClass(rate) { return rate >= 0.05 ? 'err-high' : rate >= 0.01 ? 'err-mid' : rate > 0 ? 'err-low' : 'err-none'; }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }
  // The outline of a node of `kind`, as SVG markup.
  function nodeShape(kind, w, h) {
    if (kind === 'database') {
      const ry = 5;
      return `<path class="shape" d="M0,${ry} a${w / 2},${ry} 0 0 0 ${w},0 a${w / 2},${ry} 0 0 0 -${w},0 v${h - 2 * ry} a${w / 2},${ry} 0 0 0 ${w},0 v-${h - 2 * ry}"/>`;
    }
    if (kind === 'messaging_system') return `<path class="shape" d="M10,0 H${w} L${w - 10},${h} H0 Z"/>`;
    return `<rect class="shape" width="${w}" height="${h}" rx="${kind === 'service' ? 6 : 0}"/>`;
  }
  const r1 = (v) => Math.round(v * 10) / 10;

  // The graph is drawn as one piece of markup (tens of thousands of
  // elements are parsed far faster than created one by one), and every
  // pointer and key event is handled once, on the whole picture.
  function renderGraph(main, d) {
    const t0 = performance.now();
    const nodes = d.graph.nodes, edges = d.graph.edges;
    const section = el('section', { id: 'graph-view', 'aria-labelledby': 'graph-h' });
    section.append(el('h2', { id: 'graph-h' }, 'Service graph'));
    section.append(el('p', { class: 'muted' },
      `${fmtCount(nodes.length)} nodes, ${fmtCount(edges.length)} edges. Node size: traffic. Edges: line style and colour by error rate, label p99${edges.length > 400 ? ' (shown for the selected node\'s edges: the graph has too many to label all)' : ''}. ` +
      'Click or press Enter on a node to show only its service in every view; drag to pan, wheel or +/- to zoom.'));
    section.append(legend());
    if (!nodes.length) { section.append(el('p', null, 'No edges: the traces hold no calls between services.')); main.append(section); return; }
    const { layer, layers } = layout(nodes, edges);
    const traffic = new Float64Array(nodes.length), failedIn = new Float64Array(nodes.length), outCalls = new Float64Array(nodes.length);
    for (const e of edges) { traffic[e.to] += e.calls; failedIn[e.to] += e.failed; outCalls[e.from] += e.calls; }
    let maxT = 1, maxCalls = 1;
    for (let v = 0; v < nodes.length; v++) maxT = Math.max(maxT, traffic[v], outCalls[v]);
    for (const e of edges) maxCalls = Math.max(maxCalls, e.calls);
    const COL = 260, ROW = 46, PADX = 40, PADY = 30;
    let maxRows = 1;
    for (const l of layers) maxRows = Math.max(maxRows, l.length);
    const height = maxRows * ROW + 2 * PADY;
    const xy = new Array(nodes.length), size = new Array(nodes.length);
    layers.forEach((l, li) => {
      const offset = (maxRows - l.length) * ROW / 2;
      l.forEach((v, i) => {
        const t = Math.log1p(Math.max(traffic[v], outCalls[v])) / Math.log1p(maxT);
        const w = 96 + 64 * t, h = 22 + 10 * t;
        size[v] = [w, h];
        xy[v] = [PADX + li * COL, PADY + offset + i * ROW + (ROW - h) / 2];
      });
    });
    const width = PADX * 2 + (layers.length - 1) * COL + 170;
    const sel = state.service;
    const selIndex = sel ? nodes.findIndex((n) => n.name === sel) : -1;
    const neighbour = new Uint8Array(nodes.length);
    if (selIndex >= 0) { neighbour[selIndex] = 1; for (const e of edges) if (e.from === selIndex || e.to === selIndex) { neighbour[e.from] = 1; neighbour[e.to] = 1; } }
    const showLabels = edges.length <= 400;
    const edgeParts = [], labelParts = [], nodeParts = [];
    edges.forEach((e, i) => {
      const [x1, y1] = xy[e.from], [x2, y2] = xy[e.to];
      const [w1, h1] = size[e.from], [, h2] = size[e.to];
      const sx = r1(x1 + w1), sy = r1(y1 + h1 / 2), tx = r1(x2), ty = r1(y2 + h2 / 2);
      const forward = tx > sx + 10;
      let dpath;
      if (forward) { const mx = r1((sx + tx) / 2); dpath = `M${sx},${sy} C${mx},${sy} ${mx},${ty} ${tx},${ty}`; }
      else { const bend = r1(Math.max(60, Math.abs(sy - ty) / 2)); dpath = `M${sx},${sy} C${r1(sx + 80)},${r1(sy + bend)} ${r1(tx - 80)},${r1(ty + bend)} ${tx},${ty}`; }
      const rate = e.calls ? e.failed / e.calls : 0;
      const involved = selIndex < 0 || e.from === selIndex || e.to === selIndex;
      const cls = esc(`edge ${errorClass(rate)}${involved ? '' : ' faded'}${e.connection_type ? ' conn-' + e.connection_type : ''}`);
      const name = esc(`${nodes[e.from].name}->${nodes[e.to].name}`);
      const sw = (1 + 3 * Math.log1p(e.calls) / Math.log1p(maxCalls)).toFixed(2);
      edgeParts.push(`<path class="${cls}" d="${dpath}" marker-end="url(#arrow)" stroke-width="${sw}" data-edge="${name}" data-calls="${e.calls}" data-failed="${e.failed}" data-p50="${e.latency.p50}" data-p95="${e.latency.p95}" data-p99="${e.latency.p99}"/><path class="edge-hit" d="${dpath}" data-i="${i}"/>`);
      if ((showLabels || selIndex >= 0) && involved) {
        const lx = r1((sx + tx) / 2), ly = r1(forward ? (sy + ty) / 2 - 3 : Math.max(sy, ty) + 40);
        labelParts.push(`<text class="edge-label" x="${lx}" y="${ly}" text-anchor="middle" data-edge-label="${name}">p99 ${esc(fmtNs(e.latency.p99))}${rate > 0 ? ' · ' + pct(rate) + ' err' : ''}</text>`);
      }
    });
    nodes.forEach((node, v) => {
      const [x, y] = xy[v], [w, h] = size[v];
      const involved = selIndex < 0 || neighbour[v];
      const label = node.name.length > 22 ? node.name.slice(0, 21) + '…' : node.name;
      const tag = { database: 'DB', messaging_system: 'MQ', virtual: '?' }[node.kind];
      nodeParts.push(`<g class="node kind-${esc(node.kind)}${v === selIndex ? ' selected' : ''}${involved ? '' : ' faded'}" transform="translate(${r1(x)},${r1(y)})" tabindex="0" role="button" ` +
        `aria-label="${esc(`${node.name}, ${KIND_LABEL[node.kind]}, ${fmtCount(traffic[v])} calls in`)}" data-i="${v}" data-node="${esc(node.name)}" data-kind="${esc(node.kind)}" data-calls-in="${traffic[v]}" data-failed-in="${failedIn[v]}" data-layer="${layer[v]}">` +
        nodeShape(node.kind, r1(w), r1(h)) + `<text x="${r1(w / 2)}" y="${r1(h / 2 + 4)}" text-anchor="middle" class="node-label">${esc(label)}</text>` +
        (tag ? `<text x="${r1(w - 4)}" y="-3" text-anchor="end" class="node-tag">${tag}</text>` : '') + '</g>');
    });
    const root = svg('svg', { id: 'graph', role: 'img', 'aria-label': `Service graph of ${nodes.length} nodes and ${edges.length} edges`, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'xMidYMin meet' });
    root.innerHTML = '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>' +
      `<g id="graph-world"><g class="edges">${edgeParts.join('')}</g><g class="edge-labels">${labelParts.join('')}</g><g class="nodes">${nodeParts.join('')}</g></g>`;
    const world = root.querySelector('#graph-world');
    const edgeLines = (i) => {
      const e = edges[i], rate = e.calls ? e.failed / e.calls : 0;
      return [`${nodes[e.from].name} → ${nodes[e.to].name}` + (e.connection_type ? ` (${e.connection_type})` : ''), `calls ${fmtCount(e.calls)}, failed ${fmtCount(e.failed)} (${pct(rate)})`, `p50 ${fmtNs(e.latency.p50)}  p95 ${fmtNs(e.latency.p95)}  p99 ${fmtNs(e.latency.p99)}`];
    };
    const nodeLines = (v) => [`${nodes[v].name} (${KIND_LABEL[nodes[v].kind]})`, `calls in ${fmtCount(traffic[v])}, failed ${fmtCount(failedIn[v])}`, `calls out ${fmtCount(outCalls[v])}`];
    let hovered = null;
    const unhover = () => { if (hovered) hovered.classList.remove('hover'); hovered = null; };
    world.addEventListener('mousemove', (evt) => {
      const t = evt.target;
      if (t.classList.contains('edge-hit')) {
        if (hovered !== t.previousSibling) { unhover(); hovered = t.previousSibling; hovered.classList.add('hover'); }
        showTip(evt, edgeLines(Number(t.dataset.i)));
        return;
      }
      unhover();
      const g = t.closest('.node');
      if (g) showTip(evt, nodeLines(Number(g.dataset.i))); else hideTip();
    });
    world.addEventListener('mouseleave', () => { unhover(); hideTip(); });
    world.addEventListener('focusin', (evt) => {
      const g = evt.target.closest('.node');
      if (!g) return;
      const r = g.getBoundingClientRect();
      showTip({ clientX: r.right, clientY: r.top }, nodeLines(Number(g.dataset.i)));
    });
    world.addEventListener('focusout', hideTip);
    world.addEventListener('click', (evt) => { const g = evt.target.closest('.node'); if (g) selectService(nodes[Number(g.dataset.i)].name); });
    world.addEventListener('keydown', (evt) => {
      const g = evt.target.closest('.node');
      if (g && (evt.key === 'Enter' || evt.key === ' ')) { evt.preventDefault(); evt.stopPropagation(); selectService(nodes[Number(g.dataset.i)].name); }
    });
    const frame = el('div', { class: 'graph-frame' }, root);
    section.append(frame);
    panZoom(root, world, frame);
    main.append(section);
    window.tracelens.timings.graphLayoutMs = performance.now() - t0;
  }

  function panZoom(root, world, frame) {
    let k = 1, tx = 0, ty = 0, drag = null;
    const apply = () => world.setAttribute('transform', `translate(${tx},${ty}) scale(${k})`);
    const zoom = (f, cx, cy) => { const nk = Math.min(8, Math.max(0.2, k * f)); tx = cx - (cx - tx) * nk / k; ty = cy - (cy - ty) * nk / k; k = nk; apply(); };
    const toSvg = (evt) => { const p = root.createSVGPoint(); p.x = evt.clientX; p.y = evt.clientY; const m = root.getScreenCTM(); return m ? p.matrixTransform(m.inverse()) : { x: 0, y: 0 }; };
    root.addEventListener('wheel', (e) => { e.preventDefault(); const p = toSvg(e); zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, p.x, p.y); }, { passive: false });
    root.addEventListener('mousedown', (e) => { if (e.target.closest('.node')) return; drag = { x: e.clientX, y: e.clientY, tx, ty }; });
    window.addEventListener('mousemove', (e) => {
      if (!drag) return;
      const m = root.getScreenCTM(); const s = m ? m.a : 1;
      tx = drag.tx + (e.clientX - drag.x) / s; ty = drag.ty + (e.clientY - drag.y) / s; apply();
    });
    window.addEventListener('mouseup', () => { drag = null; });
    frame.tabIndex = 0;
    frame.setAttribute('aria-label', 'Graph: + and - zoom, arrow keys pan, 0 resets');
    frame.addEventListener('keydown', (e) => {
      const vb = root.viewBox.baseVal;
      const step = 60;
      if (e.key === '+' || e.key === '=') zoom(1.2, vb.width / 2, vb.height / 4);
      else if (e.key === '-') zoom(1 / 1.2, vb.width / 2, vb.height / 4);
      else if (e.key === '0') { k = 1; tx = 0; ty = 0; apply(); }
      else if (e.key === 'ArrowLeft') { tx += step; apply(); }
      else if (e.key === 'ArrowRight') { tx -= step; apply(); }
      else if (e.key === 'ArrowUp') { ty += step; apply(); }
      else if (e.key === 'ArrowDown') { ty -= step; apply(); }
      else return;
      e.preventDefault();
    });
  }

  function legend() {
    const l = el('ul', { class: 'legend', 'aria-label': 'Legend' });
    const item = (cls, text) => {
      const s = svg('svg', { width: 44, height: 14, 'aria-hidden': 'true' }, svg('path', { class: 'edge ' + cls, d: 'M2,7 H42' }));
      l.append(el('li', null, s, ' ' + text));
    };
    item('err-none', 'no errors');
    item('err-low', 'errors < 1%');
    item('err-mid', '1-5% errors');
    item('err-high', '≥ 5% errors');
    const shape = (kind, text) => {
      const s = svg('svg', { width: 40, height: 20, 'aria-hidden': 'true' });
      s.innerHTML = `<g class="node kind-${kind}" transform="translate(2,1)">${nodeShape(kind, 34, 18)}</g>`;
      l.append(el('li', null, s, ' ' + text));
    };
    shape('service', 'service');
    shape('database', 'database (DB)');
    shape('messaging_system', 'messaging (MQ)');
    shape('virtual', 'virtual (?)');
    return l;
  }

  // ---------- histograms ----------
  // bins: [bin, count, ...] with bin b covering [10^(b/k), 10^((b+1)/k)) ns.
  function histogram(bins, k, marks, opts) {
    opts = opts || {};
    const W = opts.width || 520, H = opts.height || 150;
    const [L, B, T, R] = opts.small ? [1, 1, 1, 1] : [46, 22, 16, 8];
    const s = svg('svg', { class: 'histogram' + (opts.small ? ' small' : ''), viewBox: `0 0 ${W} ${H}`, width: opts.small ? W : null, role: 'img', 'aria-label': opts.label || 'latency histogram' });
    const series = opts.series || [{ bins, cls: 'bar' }];
    let lo = Infinity, hi = -Infinity, maxC = 0;
    for (const sr of series) for (let i = 0; i < sr.bins.length; i += 2) { lo = Math.min(lo, sr.bins[i]); hi = Math.max(hi, sr.bins[i]); }
    for (const m of marks || []) if (m.ns > 0) { const b = Math.floor(Math.log10(m.ns) * k); lo = Math.min(lo, b); hi = Math.max(hi, b); }
    if (!isFinite(lo)) { s.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted' }, 'no durations')); return s; }
    lo = Math.floor(lo / k) * k; hi = Math.ceil((hi + 1) / k) * k;
    const totals = series.map((sr) => { let t = 0; for (let i = 1; i < sr.bins.length; i += 2) t += sr.bins[i]; return t || 1; });
    series.forEach((sr, si) => { for (let i = 1; i < sr.bins.length; i += 2) maxC = Math.max(maxC, sr.bins[i] / totals[si]); });
    const x = (b) => L + (b - lo) / (hi - lo) * (W - L - R);
    const y = (f) => H - B - f / maxC * (H - B - T);
    const bw = (W - L - R) / (hi - lo);
    series.forEach((sr, si) => {
      const g = svg('g', { class: sr.cls, 'data-series': sr.name || 'all' });
      for (let i = 0; i < sr.bins.length; i += 2) {
        const b = sr.bins[i], c = sr.bins[i + 1], f = c / totals[si];
        const off = series.length > 1 ? si * bw / series.length : 0;
        const rect = svg('rect', { x: x(b) + off + 0.5, y: y(f), width: Math.max(1, bw / series.length - 1), height: H - B - y(f) });
        if (!opts.small) rect.append(svg('title', null, `${fmtNs(Math.pow(10, b / k))}–${fmtNs(Math.pow(10, (b + 1) / k))}: ${fmtCount(c)}`));
        g.append(rect);
      }
      s.append(g);
    });
    if (!opts.small) {
      s.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
      for (let dec = lo / k; dec <= hi / k; dec++) {
        const xx = x(dec * k);
        s.append(svg('line', { class: 'tick', x1: xx, x2: xx, y1: H - B, y2: H - B + 4 }));
        s.append(svg('text', { class: 'tick-label', x: xx, y: H - 6, 'text-anchor': 'middle' }, fmtNs(Math.pow(10, dec))));
      }
      s.append(svg('text', { class: 'tick-label', x: 4, y: T - 4 }, 'share'));
    }
    let lastX = -100, row = 0;
    for (const m of marks || []) {
      if (!(m.ns > 0)) continue;
      const xx = x(Math.log10(m.ns) * k);
      row = xx - lastX < 70 ? row + 1 : 0;
      lastX = xx;
      const g = svg('g', { class: 'mark mark-' + m.name + (m.cls ? ' ' + m.cls : ''), 'data-mark': m.name, 'data-ns': m.ns });
      g.append(svg('line', { x1: xx, x2: xx, y1: T, y2: H - B }));
      if (!opts.small) g.append(svg('text', { x: xx + 3, y: T + 10 + row * 11 }, `${m.label || m.name} ${fmtNs(m.ns)}`));
      s.append(g);
    }
    return s;
  }
  function pMarks(lat) { return [{ name: 'p50', ns: lat.p50 }, { name: 'p95', ns: lat.p95 }, { name: 'p99', ns: lat.p99 }]; }

  function renderLatency(main, d) {
    const section = el('section', { id: 'latency-view' }, el('h2', null, 'Latency'));
    const k = d.bins_per_decade;
    const q = el('input', { id: 'latency-filter', type: 'search', placeholder: 'filter by name', 'aria-label': 'Filter by name' });
    section.append(el('p', { class: 'muted' }, 'Log-scale time axis, HDR histogram data (3 significant digits); p50, p95 and p99 marked. ', q));
    const list = el('div', { class: 'cards' });
    section.append(list);
    const items = [];
    for (const e of d.graph.edges) {
      const name = `${d.graph.nodes[e.from].name} → ${d.graph.nodes[e.to].name}`;
      items.push({ kind: 'edge', name, services: [d.graph.nodes[e.from].name, d.graph.nodes[e.to].name], calls: e.calls, errors: e.failed, lat: e.latency, hist: e.histogram });
    }
    for (const o of d.operations) items.push({ kind: 'operation', name: `${o.service}: ${o.operation} (${o.kind})`, services: [o.service], calls: o.calls, errors: o.errors, lat: o.latency, hist: o.histogram });
    items.sort((a, b) => b.calls - a.calls || (a.name < b.name ? -1 : 1));
    const LIMIT = 60;
    const draw = () => {
      clear(list);
      const text = q.value.toLowerCase();
      const shown = items.filter((it) => (!state.service || it.services.includes(state.service)) && (!text || it.name.toLowerCase().includes(text)));
      for (const it of shown.slice(0, LIMIT)) {
        const card = el('article', { class: 'card', 'data-histogram': it.kind + ':' + it.name });
        card.append(el('h3', null, el('span', { class: 'tag' }, it.kind), ' ', it.name));
        card.append(el('p', { class: 'muted' }, `${fmtCount(it.calls)} calls, ${fmtCount(it.errors)} ${it.kind === 'edge' ? 'failed' : 'errors'} · p50 ${fmtNs(it.lat.p50)} · p95 ${fmtNs(it.lat.p95)} · p99 ${fmtNs(it.lat.p99)}`));
        card.append(histogram(it.hist, k, pMarks(it.lat), { label: `latency of ${it.name}` }));
        list.append(card);
      }
      if (shown.length > LIMIT) list.append(el('p', { class: 'muted' }, `${shown.length - LIMIT} more; narrow the filter to see them.`));
      if (!shown.length) list.append(el('p', { class: 'muted' }, 'Nothing matches.'));
    };
    q.addEventListener('input', draw);
    draw();
    main.append(section);
  }

  // ---------- bottlenecks ----------
  function renderBottlenecks(main, d) {
    const b = d.bottlenecks;
    const k = d.bins_per_decade;
    const section = el('section', { id: 'bottlenecks-view' }, el('h2', null, 'Bottlenecks'));
    section.append(el('p', { class: 'muted' }, `${fmtCount(b.traces_analyzed)} traces, ${fmtNs(b.total_duration_ns)} of trace time. Share: of all critical-path time. Distribution: the operation's latency.`));
    const opHist = new Map(d.operations.map((o) => [o.service + '\u0001' + o.operation, o]));
    const table = (rows, withPath, id) => {
      const t = el('table', { class: 'data', id });
      t.append(el('thead', null, el('tr', null, ...['Operation', withPath ? 'Call path' : null, 'Share', 'Critical-path time', 'Traces', 'p50', 'p95', 'p99', 'Distribution', 'Example'].filter((x) => x).map((h) => el('th', { scope: 'col' }, h)))));
      const tb = el('tbody');
      for (const r of rows.filter((r) => !state.service || r.service === state.service).slice(0, 50)) {
        const o = opHist.get(r.service + '\u0001' + r.operation);
        const share = el('td', { class: 'num' }, el('span', { class: 'sharebar', style: `width:${Math.round(r.share * 100)}%` }), ' ' + pct(r.share));
        const spark = el('td', null, o ? histogram(o.histogram, k, pMarks(o.latency), { small: true, width: 120, height: 26, label: `latency of ${r.operation}` }) : '');
        const ex = el('td', null, traceLink(d, r.example_trace_id));
        tb.append(el('tr', { 'data-bottleneck': r.service + ': ' + r.operation },
          el('td', null, `${r.service}: ${r.operation}`), withPath ? el('td', { class: 'path' }, r.call_path || '') : null,
          share, el('td', { class: 'num' }, fmtNs(r.critical_path_ns_total)), el('td', { class: 'num' }, fmtCount(r.traces_on_path)),
          el('td', { class: 'num' }, fmtNs(r.p50_ns)), el('td', { class: 'num' }, fmtNs(r.p95_ns)), el('td', { class: 'num' }, fmtNs(r.p99_ns)), spark, ex));
      }
      t.append(tb);
      return el('div', { class: 'scroll' }, t);
    };
    section.append(el('h3', null, 'Operations by critical-path time'), table(b.operations, false, 'bottleneck-operations'));
    section.append(el('h3', null, 'Call paths'), table(b.call_paths, true, 'bottleneck-paths'));
    section.append(el('h3', null, 'Recommendations'));
    const recs = (d.recommendations || []).filter((r) => !state.service || r.service === state.service);
    if (!recs.length) section.append(el('p', { class: 'muted' }, 'Nothing to recommend: no pattern worth a look.'));
    const ol = el('ol', { class: 'recommendations' });
    for (const r of recs.slice(0, 20)) {
      ol.append(el('li', { 'data-recommendation': r.kind }, el('strong', null, r.advice), ' ',
        el('span', { class: 'muted' }, `${r.confidence} confidence, ${pct(r.share)} of traces: ${r.evidence} `), traceLink(d, r.example_trace_id)));
    }
    section.append(ol);
    section.append(el('h3', null, 'Patterns'));
    const pats = b.patterns.filter((p) => !state.service || p.service === state.service);
    if (!pats.length) section.append(el('p', { class: 'muted' }, 'No patterns found (N+1 loops, sequential calls, retries, dominant self times, error origins, fan-outs).'));
    const ul = el('ul', { class: 'patterns' });
    for (const p of pats.slice(0, 50)) {
      ul.append(el('li', { 'data-pattern': p.kind }, el('strong', null, p.kind === 'n_plus_one' ? 'N+1' : p.kind.replace(/_/g, ' ')), ' ', p.description,
        ` — ${fmtCount(p.traces)} traces, up to ${fmtCount(p.max_count)} calls, could save ${fmtNs(p.potential_savings_ns)} `, traceLink(d, p.example_trace_id)));
    }
    section.append(ul);
    main.append(section);
  }
  function traceLink(d, id) {
    if (!id) return '';
    if (MODE === 'live') return el('a', { href: '/trace/' + id, class: 'trace-link' }, id.slice(0, 8) + '…');
    const i = d.traces ? d.traces.traces.findIndex((t) => t.id === id) : -1;
    if (i < 0) return el('code', { title: id }, id.slice(0, 8) + '…');
    return el('a', { href: '#traces', class: 'trace-link', onclick: (e) => { e.preventDefault(); state.traceIndex = i; go('traces'); } }, id.slice(0, 8) + '…');
  }

  // ---------- traces: the waterfall ----------
  // Depth-first order of a timeline's spans (children by start), with depths.
  function treeOrder(t) {
    const n = t.service.length;
    const first = new Int32Array(n).fill(-1), next = new Int32Array(n).fill(-1);
    const byStart = [...Array(n).keys()].sort((a, b) => t.start[b] - t.start[a] || b - a);
    const roots = [];
    for (const i of byStart) {
      const p = t.parent[i];
      if (p < 0 || p >= n) roots.push(i);
      else { next[i] = first[p]; first[p] = i; }
    }
    roots.reverse();
    const order = new Int32Array(n), depth = new Int32Array(n);
    let k = 0;
    const stack = [];
    for (let r = roots.length - 1; r >= 0; r--) stack.push(roots[r], 0);
    const seen = new Uint8Array(n);
    while (stack.length) {
      const dp = stack.pop(), v = stack.pop();
      if (seen[v]) continue;
      seen[v] = 1;
      order[k] = v; depth[v] = dp; k++;
      const kids = [];
      for (let c = first[v]; c >= 0; c = next[c]) kids.push(c);
      for (let j = kids.length - 1; j >= 0; j--) stack.push(kids[j], dp + 1);
    }
    for (let v = 0; v < n && k < n; v++) if (!seen[v]) { order[k++] = v; }
    return { order, depth };
  }
  function cpByspan(t) {
    const m = new Map();
    const cp = t.critical_path;
    for (let i = 0; i < cp.length; i += 3) {
      const s = cp[i];
      if (!m.has(s)) m.set(s, []);
      m.get(s).push(cp[i + 1], cp[i + 2]);
    }
    return m;
  }

  function renderTraces(main, d) {
    const kept = d.traces;
    if (!kept || !kept.traces.length) { main.append(el('p', { class: 'muted' }, 'No traces kept yet.')); return; }
    const section = el('section', { id: 'traces-view' }, el('h2', null, 'Slowest and failing traces'));
    const pick = el('div', { class: 'trace-pick' });
    const list = (title, idxs, id) => {
      const ul = el('ul', { class: 'trace-list', id });
      for (const i of idxs) {
        const t = kept.traces[i];
        if (state.service && !t.names.includes(state.service)) continue;
        ul.append(el('li', null, el('button', { class: 'trace-button' + (state.traceIndex === i ? ' current' : ''), 'data-trace-id': t.id, onclick: () => { state.traceIndex = i; render(); } },
          `${fmtNs(t.duration_ns)} ${t.endpoint} · ${fmtCount(t.service.length)} spans${t.errors ? ' · ' + t.errors + (t.errors === 1 ? ' error' : ' errors') : ''}`)));
      }
      return el('div', null, el('h3', null, title), ul);
    };
    pick.append(list('Slowest', kept.slowest, 'slowest-traces'), list('Failing', kept.failing, 'failing-traces'));
    if (kept.left_out) pick.append(el('p', { class: 'muted' }, `${kept.left_out} traces left out: over the report's span budget (--max-trace-spans).`));
    section.append(pick);
    main.append(section);
    const i = state.traceIndex != null ? state.traceIndex : kept.slowest[0] != null ? kept.slowest[0] : 0;
    state.traceIndex = i;
    if (kept.traces[i]) renderTraceView(main, kept.traces, i);
  }

  const ROW_H = 20;
  function renderTraceView(main, traces, i) {
    const t0 = performance.now();
    const t = traces[i];
    const section = el('section', { id: 'trace-view', 'data-trace-id': t.id });
    section.append(el('h2', null, `Trace ${t.id}`));
    const cpTotal = (() => { let s = 0; for (let j = 0; j < t.critical_path.length; j += 3) s += t.critical_path[j + 2] - t.critical_path[j + 1]; return s; })();
    section.append(el('p', { class: 'muted' }, `${t.endpoint} · ${fmtNs(t.duration_ns)} · ${fmtCount(t.service.length)} spans · ${t.errors} errors · critical path ${fmtNs(cpTotal)} in ${fmtCount(t.critical_path.length / 3)} sections. ` +
      'Bars: span time; dark inset: on the critical path; “self”: time not in children; ! marks an error. Wheel or +/- zoom, drag on the axis to zoom to a range, 0 resets.'));
    const { order, depth } = treeOrder(t);
    const cp = cpByspan(t);
    const errs = new Set(t.error_spans);
    const view = { from: 0, to: Math.max(1, t.duration_ns) };
    const wf = el('div', { class: 'waterfall', tabindex: 0, role: 'grid', 'aria-label': `Waterfall of ${t.service.length} spans`, 'aria-rowcount': t.service.length });
    const axis = el('div', { class: 'wf-axis' });
    const scroller = el('div', { class: 'wf-scroll' });
    const spacer = el('div', { class: 'wf-spacer', style: `height:${t.service.length * ROW_H}px` });
    const rows = el('div', { class: 'wf-rows' });
    spacer.append(rows);
    scroller.append(spacer);
    const toolbar = el('div', { class: 'wf-tools' },
      el('button', { text: 'Zoom in', onclick: () => zoomBy(0.5) }), el('button', { text: 'Zoom out', onclick: () => zoomBy(2) }),
      el('button', { text: 'Reset', onclick: () => { view.from = 0; view.to = Math.max(1, t.duration_ns); draw(); } }),
      el('button', { text: 'Critical path only', 'aria-pressed': 'false', onclick: (e) => { onlyCp = !onlyCp; e.target.setAttribute('aria-pressed', String(onlyCp)); rebuild(); } }));
    let onlyCp = false;
    let shown = order;
    const rebuild = () => { shown = onlyCp ? order.filter((v) => cp.has(v)) : order; spacer.style.height = shown.length * ROW_H + 'px'; draw(); };
    wf.append(toolbar, axis, scroller);
    section.append(wf);
    const LABEL_W = 320;
    const zoomBy = (f, centre) => {
      const c = centre != null ? centre : (view.from + view.to) / 2;
      const span = Math.max(1000, (view.to - view.from) * f);
      view.from = Math.max(0, c - (c - view.from) * span / (view.to - view.from));
      view.to = Math.min(Math.max(1, t.duration_ns), view.from + span);
      draw();
    };
    function draw() {
      const width = Math.max(200, scroller.clientWidth - LABEL_W - 12);
      const scale = width / (view.to - view.from);
      clear(axis);
      for (let j = 0; j <= 4; j++) {
        const ns = view.from + (view.to - view.from) * j / 4;
        axis.append(el('span', { class: 'wf-tick', style: `left:${LABEL_W + j * width / 4}px` }, fmtNs(ns)));
      }
      const top = scroller.scrollTop, h = scroller.clientHeight || 600;
      const a = Math.max(0, Math.floor(top / ROW_H) - 10), b = Math.min(shown.length, Math.ceil((top + h) / ROW_H) + 10);
      clear(rows);
      const frag = document.createDocumentFragment();
      for (let r = a; r < b; r++) {
        const v = shown[r];
        const svc = t.names[t.service[v]], op = t.names[t.operation[v]];
        const row = el('div', { class: 'wf-row' + (errs.has(v) ? ' error' : '') + (cp.has(v) ? ' on-path' : ''), role: 'row', 'aria-rowindex': r + 1, style: `top:${r * ROW_H}px`, 'data-span': v });
        const label = el('div', { class: 'wf-label', role: 'rowheader', style: `padding-left:${Math.min(depth[v], 40) * 10 + 4}px;width:${LABEL_W}px` },
          errs.has(v) ? el('span', { class: 'err-icon', 'aria-label': 'error' }, '! ') : null, el('span', { class: 'svc' }, svc), ' ', op);
        const x = (t.start[v] - view.from) * scale, w = Math.max(1, t.duration[v] * scale);
        const bar = el('div', { class: 'wf-bar', style: `left:${LABEL_W + x}px;width:${w}px` });
        const sections = cp.get(v);
        if (sections) for (let j = 0; j < sections.length; j += 2) {
          const sx = (sections[j] - t.start[v]) * scale, sw = Math.max(1, (sections[j + 1] - sections[j]) * scale);
          bar.append(el('span', { class: 'wf-cp', style: `left:${sx}px;width:${sw}px` }));
        }
        // The figures go after the bar, or before it, or inside its end
        // when neither side has room.
        const words = `${fmtNs(t.duration[v])} · self ${fmtNs(t.self_ns[v])}`;
        const room = 150;
        const place = x + w + room < width ? `left:${LABEL_W + Math.max(0, x + w) + 4}px` : x > room ? `right:${scroller.clientWidth - LABEL_W - x + 4}px` : `left:${LABEL_W + Math.max(0, x + w - room)}px`;
        const text = el('span', { class: 'wf-text' + (x + w + room >= width && x <= room ? ' inside' : ''), style: place }, words);
        row.append(label, bar, text);
        tipOn(row, () => [`${svc}: ${op}`, `start +${fmtNs(t.start[v])}, duration ${fmtNs(t.duration[v])}, self ${fmtNs(t.self_ns[v])}`,
          sections ? `on the critical path: ${fmtNs(sumSections(sections))}` : 'not on the critical path', errs.has(v) ? 'status ERROR' : '']);
        frag.append(row);
      }
      rows.append(frag);
    }
    scroller.addEventListener('scroll', () => requestAnimationFrame(draw));
    scroller.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.altKey && Math.abs(e.deltaY) < Math.abs(e.deltaX)) return;
      if (!(e.ctrlKey || e.altKey)) return;
      e.preventDefault();
      const r = scroller.getBoundingClientRect();
      const width = Math.max(200, scroller.clientWidth - LABEL_W - 12);
      const c = view.from + (e.clientX - r.left - LABEL_W) / width * (view.to - view.from);
      zoomBy(e.deltaY < 0 ? 0.7 : 1 / 0.7, c);
    }, { passive: false });
    let sel = null;
    axis.addEventListener('mousedown', (e) => { sel = e.clientX; });
    axis.addEventListener('mouseup', (e) => {
      if (sel == null) return;
      const r = axis.getBoundingClientRect();
      const width = Math.max(200, scroller.clientWidth - LABEL_W - 12);
      const toNs = (cx) => view.from + (cx - r.left - LABEL_W) / width * (view.to - view.from);
      const [x1, x2] = [toNs(Math.min(sel, e.clientX)), toNs(Math.max(sel, e.clientX))];
      sel = null;
      if (x2 - x1 > 0) { view.from = Math.max(0, x1); view.to = Math.max(view.from + 1000, x2); draw(); }
    });
    wf.addEventListener('keydown', (e) => {
      if (e.key === '+' || e.key === '=') zoomBy(0.5);
      else if (e.key === '-') zoomBy(2);
      else if (e.key === '0') { view.from = 0; view.to = Math.max(1, t.duration_ns); draw(); }
      else if (e.key === 'ArrowDown') scroller.scrollTop += ROW_H;
      else if (e.key === 'ArrowUp') scroller.scrollTop -= ROW_H;
      else if (e.key === 'PageDown') scroller.scrollTop += scroller.clientHeight;
      else if (e.key === 'PageUp') scroller.scrollTop -= scroller.clientHeight;
      else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
        const w = view.to - view.from, dx = w / 10 * (e.key === 'ArrowLeft' ? -1 : 1);
        view.from = Math.max(0, Math.min(t.duration_ns - w, view.from + dx)); view.to = view.from + w; draw();
      } else return;
      e.preventDefault();
    });
    // The critical path's sections, as a table.
    const cpList = el('table', { class: 'data', id: 'critical-path' });
    cpList.append(el('caption', null, 'Critical path'));
    cpList.append(el('thead', null, el('tr', null, ...['Start', 'Length', 'Span'].map((h) => el('th', { scope: 'col' }, h)))));
    const tb = el('tbody');
    const SECTIONS_SHOWN = 300;
    for (let j = 0; j < Math.min(t.critical_path.length, SECTIONS_SHOWN * 3); j += 3) {
      const v = t.critical_path[j];
      tb.append(el('tr', { 'data-cp-section': `${t.names[t.service[v]]}: ${t.names[t.operation[v]]}`, 'data-start': t.critical_path[j + 1], 'data-end': t.critical_path[j + 2] },
        el('td', { class: 'num' }, '+' + fmtNs(t.critical_path[j + 1])), el('td', { class: 'num' }, fmtNs(t.critical_path[j + 2] - t.critical_path[j + 1])),
        el('td', null, `${t.names[t.service[v]]}: ${t.names[t.operation[v]]}`)));
    }
    cpList.append(tb);
    section.append(el('div', { class: 'scroll cp-table' }, cpList));
    if (t.critical_path.length / 3 > SECTIONS_SHOWN) section.append(el('p', { class: 'muted' }, `${t.critical_path.length / 3 - SECTIONS_SHOWN} more sections.`));
    main.append(section);
    draw();
    window.tracelens.timings.traceMs = performance.now() - t0;
  }
  function sumSections(s) { let x = 0; for (let j = 0; j < s.length; j += 2) x += s[j + 1] - s[j]; return x; }

  // ---------- trace comparison ----------
  // Spans are matched by call path: the chain of service and operation
  // names from the root, and the span's rank among its siblings with the
  // same names (by start).
  function callPaths(t) {
    const { order } = treeOrder(t);
    const key = new Array(t.service.length);
    const counts = new Map();
    for (const v of order) {
      const p = t.parent[v];
      const base = (p >= 0 && p < t.service.length ? key[p] : '') + '/' + t.names[t.service[v]] + ':' + t.names[t.operation[v]];
      const c = counts.get(base) || 0;
      counts.set(base, c + 1);
      key[v] = base + '#' + c;
    }
    return { order, key };
  }
  function matchTraces(a, b) {
    const pa = callPaths(a), pb = callPaths(b);
    const inB = new Map();
    pb.order.forEach((v) => inB.set(pb.key[v], v));
    const rows = [];
    const used = new Set();
    for (const v of pa.order) {
      const w = inB.get(pa.key[v]);
      if (w != null) used.add(w);
      rows.push([v, w == null ? -1 : w, pa.key[v]]);
    }
    for (const w of pb.order) if (!used.has(w)) rows.push([-1, w, pb.key[w]]);
    return rows;
  }

  function renderCompare(main, d) {
    const section = el('section', { id: 'compare-view' }, el('h2', null, 'Trace comparison'));
    const traces = MODE === 'live' ? (state.compareTraces || []) : d.traces.traces;
    if (MODE === 'live') {
      const ia = el('input', { id: 'compare-a', size: 34, placeholder: 'trace id A', value: traces[0] ? traces[0].id : '' });
      const ib = el('input', { id: 'compare-b', size: 34, placeholder: 'trace id B', value: traces[1] ? traces[1].id : '' });
      section.append(el('form', { class: 'inline', onsubmit: async (e) => {
        e.preventDefault();
        try { state.compareTraces = [await fetchTrace(ia.value.trim()), await fetchTrace(ib.value.trim())]; render(); } catch (err) { alert(err.message); }
      } }, el('label', null, 'A ', ia), el('label', null, 'B ', ib), el('button', { type: 'submit' }, 'Compare')));
      if (traces.length < 2) { main.append(section); return; }
    }
    let pair = state.comparePair || (d && d.traces && d.traces.comparison) || [0, 1];
    if (MODE === 'live') pair = [0, 1];
    const [ai, bi] = pair;
    if (MODE !== 'live') {
      const opt = (sel) => { const s = el('select', { 'aria-label': 'trace' }); traces.forEach((t, i) => s.append(el('option', { value: i, selected: i === sel, text: `${fmtNs(t.duration_ns)} ${t.endpoint} ${t.id.slice(0, 8)}` }))); return s; };
      const sa = opt(ai), sb = opt(bi);
      const change = () => { state.comparePair = [Number(sa.value), Number(sb.value)]; render(); };
      sa.addEventListener('change', change); sb.addEventListener('change', change);
      section.append(el('p', null, el('label', null, 'A ', sa), ' ', el('label', null, 'B ', sb)));
    }
    const a = traces[ai], b = traces[bi];
    section.append(el('p', { class: 'muted' }, `A: ${a.id} (${fmtNs(a.duration_ns)}) · B: ${b.id} (${fmtNs(b.duration_ns)}) · ${a.endpoint === b.endpoint ? 'same endpoint: ' + a.endpoint : 'different endpoints: ' + a.endpoint + ' / ' + b.endpoint}. ` +
      'Spans matched by call path; each B span labelled and shaded by its change against A (▲ slower, ▼ faster, + only in B, − only in A).'));
    const rows = matchTraces(a, b);
    const depthOf = (key) => key.split('/').length - 2;
    const maxD = Math.max(a.duration_ns, b.duration_ns, 1);
    const t = el('div', { class: 'compare', role: 'table', id: 'compare-table' });
    t.append(el('div', { class: 'cmp-row cmp-head', role: 'row' }, el('div', { role: 'columnheader' }, 'Span'), el('div', { role: 'columnheader' }, 'A'), el('div', { role: 'columnheader' }, 'B'), el('div', { role: 'columnheader' }, 'Change')));
    const LIMIT = 2000;
    for (const [v, w, key] of rows.slice(0, LIMIT)) {
      const src = v >= 0 ? a : b, s = v >= 0 ? v : w;
      const name = `${src.names[src.service[s]]}: ${src.names[src.operation[s]]}`;
      const da = v >= 0 ? a.duration[v] : null, db = w >= 0 ? b.duration[w] : null;
      let cls, change;
      if (da == null) { cls = 'only-b'; change = '+ only in B'; }
      else if (db == null) { cls = 'only-a'; change = '− only in A'; }
      else {
        const r = da ? (db - da) / da : 0;
        cls = r > 0.5 ? 'slower-3' : r > 0.2 ? 'slower-2' : r > 0.05 ? 'slower-1' : r < -0.5 ? 'faster-3' : r < -0.2 ? 'faster-2' : r < -0.05 ? 'faster-1' : 'same';
        change = `${db >= da ? '▲' : '▼'} ${signedNs(db - da)} (${da ? (r >= 0 ? '+' : '') + (r * 100).toFixed(0) + '%' : 'new time'})`;
      }
      const bar = (tr, i) => i < 0 ? el('div', { class: 'cmp-cell' }) : el('div', { class: 'cmp-cell' }, el('span', { class: 'cmp-bar', style: `left:${tr.start[i] / maxD * 100}%;width:${Math.max(0.2, tr.duration[i] / maxD * 100)}%` }), el('span', { class: 'cmp-ms' }, fmtNs(tr.duration[i])));
      t.append(el('div', { class: 'cmp-row ' + cls, role: 'row', 'data-path': key, 'data-delta': da != null && db != null ? db - da : '' },
        el('div', { class: 'cmp-name', role: 'cell', style: `padding-left:${Math.min(depthOf(key), 30) * 10}px` }, name), bar(a, v), bar(b, w), el('div', { class: 'cmp-change', role: 'cell' }, change)));
    }
    section.append(el('div', { class: 'scroll compare-frame' }, t));
    if (rows.length > LIMIT) section.append(el('p', { class: 'muted' }, `${rows.length - LIMIT} more spans.`));
    main.append(section);
  }

  // ---------- verdict ----------
  function renderVerdict(main, d) {
    if (MODE === 'live') {
      const f = state.verdictForm || (state.verdictForm = { service: state.service, baseline_version: '', candidate_version: '', deploy_time: '' });
      const box = el('section', { id: 'verdict-ask' }, el('h2', null, 'Judge a deploy'));
      const inputs = {};
      const field = (k, label, size) => { inputs[k] = el('input', { id: 'verdict-' + k, size, value: f[k] || '' }); return el('label', null, label + ' ', inputs[k]); };
      const out = el('div', { 'aria-live': 'polite' });
      box.append(el('form', { class: 'inline', onsubmit: async (e) => {
        e.preventDefault();
        for (const k in inputs) f[k] = inputs[k].value.trim();
        const q = new URLSearchParams();
        for (const k in f) if (f[k]) q.set(k, f[k]);
        clear(out).append(el('p', { class: 'muted' }, 'Judging…'));
        try { state.liveVerdict = { verdict: await getJson('/api/v1/verdict?' + q), histograms: [] }; render(); }
        catch (err) { clear(out).append(el('p', { class: 'warning', role: 'alert', id: 'verdict-error' }, err.message)); }
      } }, field('service', 'Service', 14), field('baseline_version', 'Baseline version', 8), field('candidate_version', 'Candidate version', 8),
      field('deploy_time', 'or deploy time', 18), el('button', { type: 'submit', id: 'verdict-go' }, 'Judge')), out);
      main.append(box);
      if (!state.liveVerdict) return;
    }
    const vd = MODE === 'live' ? state.liveVerdict : d.verdict, v = vd.verdict;
    const section = el('section', { id: 'verdict-view' }, el('h2', null, `Verdict for ${v.service}`));
    const icon = { pass: '✔', fail: '✖', inconclusive: '?' }[v.verdict] || '';
    section.append(el('p', { class: 'verdict verdict-' + v.verdict, id: 'verdict', 'data-verdict': v.verdict }, `${icon} ${v.verdict.toUpperCase()}`, el('span', { class: 'score' }, ` score ${v.score.toFixed(1)} (pass ≥ ${v.thresholds[0]}, marginal ≥ ${v.thresholds[1]})`)));
    section.append(el('p', { id: 'verdict-reason' }, v.reason));
    const arm = (name, a) => `${name}: ${a.version ? a.version + ', ' : ''}${fmtCount(a.traces)} traces, ${fmtCount(a.requests)} requests, ${fmtCount(a.hosts)} hosts`;
    section.append(el('p', { class: 'muted' }, arm('baseline', v.baseline), ' · ', arm('candidate', v.candidate)));
    for (const w of v.warnings || []) section.append(el('p', { class: 'warning' }, '⚠ ' + w));
    // Attribution: a waterfall from the baseline's critical path to the candidate's.
    if (v.attribution && v.attribution.length) section.append(attributionChart(v.attribution));
    const t = el('table', { class: 'data', id: 'verdict-metrics' });
    t.append(el('thead', null, el('tr', null, ...['Metric', 'Class', 'Baseline', 'Candidate', 'Ratio', 'CI', 'p'].map((h) => el('th', { scope: 'col' }, h)))));
    const tb = el('tbody');
    const val = (m, x) => x == null || Number.isNaN(x) ? '-' : m.signal === 'error_rate' ? pct(x) : fmtNs(x);
    const num = (x) => x == null || Number.isNaN(x) ? '-' : !isFinite(x) ? 'inf' : x.toFixed(3);
    for (const m of v.metrics) {
      tb.append(el('tr', { class: 'cls-' + m.classification, 'data-metric': m.name },
        el('td', null, m.name + (m.critical ? ' (critical)' : '')), el('td', null, m.classification), el('td', { class: 'num' }, val(m, m.baseline_value)),
        el('td', { class: 'num' }, val(m, m.candidate_value)), el('td', { class: 'num' }, num(m.estimate)), el('td', { class: 'num' }, `${num(m.ci[0])}–${num(m.ci[1])}`), el('td', { class: 'num' }, m.p_value == null ? '-' : m.p_value.toPrecision(2))));
    }
    t.append(tb);
    section.append(el('h3', null, 'Metrics'), el('div', { class: 'scroll' }, t));
    if (vd.histograms.length) section.append(el('h3', null, 'Latency, baseline beside candidate'));
    const cards = el('div', { class: 'cards' });
    for (const h of vd.histograms) {
      const ms = v.metrics.filter((m) => m.name.startsWith(h.label + ' '));
      const marks = [];
      for (const m of ms) {
        if (m.signal === 'latency_p50') { marks.push({ name: 'base-p50', label: 'base p50', ns: m.baseline_value, cls: 'baseline' }, { name: 'cand-p50', label: 'cand p50', ns: m.candidate_value, cls: 'candidate' }); }
        if (m.signal === 'latency_p99') { marks.push({ name: 'base-p99', label: 'base p99', ns: m.baseline_value, cls: 'baseline' }, { name: 'cand-p99', label: 'cand p99', ns: m.candidate_value, cls: 'candidate' }); }
      }
      const worst = ms.find((m) => m.classification === 'regression') ? 'regression' : ms.find((m) => m.classification === 'improvement') ? 'improvement' : '';
      cards.append(el('article', { class: 'card', 'data-verdict-histogram': h.label }, el('h3', null, h.label, worst ? el('span', { class: 'tag cls-' + worst }, ' ' + worst) : null),
        histogram(null, d.bins_per_decade, marks.filter((m) => m.ns > 0), { label: `latency of ${h.label}, baseline and candidate`, series: [{ bins: h.baseline, cls: 'bar baseline', name: 'baseline' }, { bins: h.candidate, cls: 'bar candidate', name: 'candidate' }] }),
        el('p', { class: 'muted' }, el('span', { class: 'key baseline' }, '▮'), ' baseline (left bar)  ', el('span', { class: 'key candidate' }, '▮'), ' candidate (right bar)')));
    }
    section.append(cards);
    if (v.new_error_types && v.new_error_types.length) {
      const ul = el('ul', null);
      for (const e of v.new_error_types) ul.append(el('li', null, `${e.service}: ${e.operation} — ${e.error} (${e.traces} traces)`));
      section.append(el('h3', null, 'Error types only the candidate has'), ul);
    }
    main.append(section);
  }

  function attributionChart(attribution) {
    const rows = attribution.slice(0, 12);
    const W = 820, ROW = 26, L = 300, R = 150, H = (rows.length + 2) * ROW + 30;
    let acc = 0, lo = 0, hi = 0;
    const steps = rows.map((a) => { const s = acc; acc += a.delta_ns; lo = Math.min(lo, acc, s); hi = Math.max(hi, acc, s); return [s, acc]; });
    const x = (ns) => L + (ns - lo) / ((hi - lo) || 1) * (W - L - R);
    const s = svg('svg', { id: 'attribution', class: 'attribution', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Added critical-path time per operation, cumulative' });
    s.append(svg('text', { x: 4, y: 16, class: 'chart-title' }, 'Critical-path time per trace added by each operation (own time; cumulative left to right)'));
    s.append(svg('line', { class: 'axis', x1: x(0), x2: x(0), y1: 24, y2: H - 6 }));
    rows.forEach((a, i) => {
      const [s0, s1] = steps[i];
      const y = 28 + i * ROW;
      const g = svg('g', { class: 'attr ' + (a.delta_ns >= 0 ? 'added' : 'removed'), 'data-attribution': `${a.service}: ${a.operation}`, 'data-delta': a.delta_ns });
      g.append(svg('text', { x: L - 6, y: y + 15, 'text-anchor': 'end' }, `${a.service}: ${a.operation}`.slice(0, 44)));
      g.append(svg('rect', { x: Math.min(x(s0), x(s1)), y: y + 3, width: Math.max(1.5, Math.abs(x(s1) - x(s0))), height: ROW - 8 }));
      g.append(svg('text', { x: Math.max(x(s0), x(s1)) + 4, y: y + 15 }, `${signedNs(a.delta_ns)} (${pct(a.share)})`));
      g.append(svg('title', null, `${a.service}: ${a.operation}: ${fmtNs(a.baseline_ns)} → ${fmtNs(a.candidate_ns)} own time per trace; callees ${signedNs(a.callee_delta_ns)}`));
      s.append(g);
    });
    const total = acc;
    s.append(svg('text', { x: L - 6, y: 28 + rows.length * ROW + 15, 'text-anchor': 'end', class: 'total' }, 'total'));
    s.append(svg('rect', { class: 'attr-total', x: Math.min(x(0), x(total)), y: 28 + rows.length * ROW + 3, width: Math.max(1.5, Math.abs(x(total) - x(0))), height: ROW - 8 }));
    s.append(svg('text', { x: Math.max(x(0), x(total)) + 4, y: 28 + rows.length * ROW + 15, class: 'total' }, signedNs(total)));
    return el('div', { class: 'scroll' }, el('h3', null, 'Where the added time comes from'), s);
  }

  // ---------- live: search and trace look-ups ----------
  async function getJson(url) {
    const r = await fetch(url, { headers: { accept: 'application/json' } });
    const text = await r.text();
    let j = null;
    try { j = JSON.parse(text); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error((j && (j.message || j.error)) || `${r.status} ${text.slice(0, 200)}`);
    return j;
  }
  async function fetchTrace(id) { return getJson('/api/v1/traces/' + encodeURIComponent(id) + '?view=timeline'); }

  function renderSearch(main) {
    const section = el('section', { id: 'search-view' }, el('h2', null, 'Find traces'));
    const f = state.search || (state.search = { service: state.service, operation: '', min_duration: '', errors: false, since: state.filters.since, until: state.filters.until });
    const inp = (name, label, attrs) => { const i = el('input', Object.assign({ id: 'search-' + name, name, value: f[name] || '' }, attrs)); return [i, el('label', null, label + ' ', i)]; };
    const [svc, lsvc] = inp('service', 'Service', { size: 16 });
    const [op, lop] = inp('operation', 'Operation', { size: 20 });
    const [md, lmd] = inp('min_duration', 'Min duration', { size: 8, placeholder: 'e.g. 250ms' });
    const [si, lsi] = inp('since', 'Since', { size: 14, placeholder: '1h' });
    const [un, lun] = inp('until', 'Until', { size: 14, placeholder: 'now' });
    const er = el('input', { id: 'search-errors', type: 'checkbox', checked: f.errors });
    const results = el('div', { id: 'search-results', 'aria-live': 'polite' });
    const form = el('form', { class: 'inline', role: 'search', onsubmit: async (e) => {
      e.preventDefault();
      Object.assign(f, { service: svc.value.trim(), operation: op.value.trim(), min_duration: md.value.trim(), errors: er.checked, since: si.value.trim(), until: un.value.trim() });
      const q = new URLSearchParams();
      for (const k of ['service', 'operation', 'min_duration', 'since', 'until']) if (f[k]) q.set(k, f[k]);
      if (f.errors) q.set('errors', 'true');
      clear(results).append(el('p', { class: 'muted' }, 'Searching…'));
      try { showResults(results, await getJson('/api/v1/traces?' + q)); } catch (err) { clear(results).append(el('p', { class: 'warning', role: 'alert' }, err.message)); }
    } }, lsvc, lop, lmd, el('label', null, er, ' errors only'), lsi, lun, el('button', { type: 'submit', id: 'search-go' }, 'Search'));
    section.append(form, results);
    main.append(section);
  }
  function showResults(box, r) {
    clear(box);
    box.append(el('p', { class: 'muted' }, `${r.traces.length} trace${r.traces.length === 1 ? '' : 's'}${r.truncated ? ' (first ' + r.traces.length + ')' : ''}; searched ${r.searched.join(' and ')}.`));
    const t = el('table', { class: 'data', id: 'search-table' });
    t.append(el('thead', null, el('tr', null, ...['Start', 'Duration', 'Root', 'Spans', 'Errors', 'Trace'].map((h) => el('th', { scope: 'col' }, h)))));
    const tb = el('tbody');
    for (const x of r.traces) {
      tb.append(el('tr', { 'data-trace-id': x.trace_id }, el('td', null, new Date(Number(BigInt(x.start_unix_nano) / 1000000n)).toISOString()), el('td', { class: 'num' }, fmtNs(x.duration_ns)),
        el('td', null, `${x.root_service}: ${x.root_operation}`), el('td', { class: 'num' }, fmtCount(x.spans)), el('td', { class: 'num' }, fmtCount(x.errors)),
        el('td', null, el('a', { href: '/trace/' + x.trace_id, class: 'trace-link' }, x.trace_id))));
    }
    t.append(tb);
    box.append(el('div', { class: 'scroll' }, t));
  }

  async function load() {
    const main = document.getElementById('main');
    try {
      const q = new URLSearchParams();
      for (const k of ['since', 'until', 'service']) if (state.filters[k]) q.set(k, state.filters[k]);
      state.data = await getJson('/api/v1/report?' + q);
    } catch (err) {
      clear(main).append(el('p', { class: 'warning', role: 'alert' }, 'Could not load: ' + err.message));
      return;
    }
    document.getElementById('source').textContent = sourceLine(state.data);
    renderControls(); renderNav(); render();
  }
  function sourceLine(d) {
    const s = d.source;
    const range = s.start_unix_nano && s.end_unix_nano ? ` · ${new Date(Number(BigInt(s.start_unix_nano) / 1000000n)).toISOString()} – ${new Date(Number(BigInt(s.end_unix_nano) / 1000000n)).toISOString()}` : '';
    return `${s.inputs.join(', ')} · ${fmtCount(s.spans)} spans · ${fmtCount(s.traces)} traces${range} · ${d.generator}` + (d.notes.length ? ' · ' + d.notes.join(' ') : '');
  }

  // Printing shows every view, one after another.
  window.addEventListener('beforeprint', () => {
    if (!state.data) return;
    const main = clear(document.getElementById('main'));
    const d = state.data;
    renderGraph(main, d); renderLatency(main, d); renderBottlenecks(main, d);
    if (d.traces && d.traces.traces.length) renderTraces(main, d);
    if (d.traces && d.traces.traces.length >= 2) renderCompare(main, d);
    if (d.verdict) renderVerdict(main, d);
  });
  window.addEventListener('afterprint', render);

  // ---------- start ----------
  async function start() {
    mark('start');
    if (MODE === 'report') {
      state.data = JSON.parse(document.getElementById('tracelens-data').textContent);
      document.getElementById('source').textContent = sourceLine(state.data);
      const hash = location.hash.slice(1);
      state.view = VIEWS.some(([id]) => id === hash) && available(hash) ? hash : state.data.verdict ? 'verdict' : 'graph';
      renderControls(); renderNav(); render();
    } else {
      const view = body.dataset.view;
      if (view === 'trace' && body.dataset.trace) {
        state.view = 'traces';
        renderNav();
        try { state.liveTrace = await fetchTrace(body.dataset.trace); render(); }
        // Kept in the state: the report loaded next renders the view again.
        catch (err) { state.liveTraceError = 'Trace not available: ' + err.message; render(); }
        load().catch(() => {});
        return;
      }
      state.view = view === 'search' ? 'search' : 'graph';
      renderNav();
      await load();
    }
    mark('ready');
  }
  window.addEventListener('hashchange', () => {
    const hash = location.hash.slice(1);
    if (MODE === 'report' && hash !== state.view && VIEWS.some(([id]) => id === hash)) go(hash, { keepHash: true });
  });
  start();
})();

// Opens tracelens's report and live pages in Debian's headless Chromium
// and checks the rendered DOM. Run by tests/ui.rs:
//
//   node ui.mjs CASE URL [EXPECT_JSON]
//
// Every request the page makes is recorded; any that is not to the page's
// own origin (file: for the report, the receiver for the live pages) is
// blocked and fails the case. Screenshots go to $TRACELENS_SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [, , CASE, URL_, EXPECT] = process.argv;
const expect = EXPECT ? JSON.parse(fs.readFileSync(EXPECT, 'utf8')) : {};
const shots = process.env.TRACELENS_SCREENSHOT_DIR;
const failures = [];
function check(cond, what) {
  if (!cond) failures.push(what);
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
}
function eq(actual, wanted, what) {
  check(JSON.stringify(actual) === JSON.stringify(wanted), `${what}: ${JSON.stringify(actual)}${JSON.stringify(actual) === JSON.stringify(wanted) ? '' : ' != ' + JSON.stringify(wanted)}`);
}

const userDataDir = fs.mkdtempSync('/tmp/tracelens-chromium-');
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.TRACELENS_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1366, height: 768 },
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const origin = new URL(URL_).origin; // "null" for file:
const outside = [];
await context.route('**/*', (route) => {
  const u = route.request().url();
  const local = u.startsWith('file:') || u.startsWith('data:') || (origin !== 'null' && u.startsWith(origin + '/'));
  if (local) return route.continue();
  outside.push(u);
  return route.abort();
});
const page = context.pages()[0] || (await context.newPage());
const requests = [];
page.on('request', (r) => requests.push(r.url()));
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

async function shot(name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + '.png') });
}
async function view(name) {
  await page.click(`nav button[data-view="${name}"]`);
  await page.waitForFunction((v) => document.body.dataset.rendered === v, name);
}
const attrs = (sel, names) => page.$$eval(sel, (els, names) => els.map((e) => Object.fromEntries(names.map((n) => [n, e.getAttribute(n)]))), names);
const texts = (sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
async function fitsScreen(what) {
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  check(w <= 1366, `${what} fits 1366 px wide (${w})`);
}

async function reportCase() {
  await page.goto(URL_);
  await page.waitForFunction(() => document.body.dataset.rendered);
  if (expect.verdict) eq(await page.evaluate(() => document.body.dataset.rendered), 'verdict', 'a report with a verdict opens on it');
  await view('graph');
  // The graph: nodes with their kinds, edges with their numbers.
  const nodes = await attrs('#graph [data-node]', ['data-node', 'data-kind']);
  eq(nodes.map((n) => `${n['data-node']}:${n['data-kind']}`).sort(), expect.nodes, 'graph nodes and kinds');
  const edges = await attrs('#graph [data-edge]', ['data-edge', 'data-calls', 'data-failed', 'data-p99']);
  eq(edges.map((e) => `${e['data-edge']} ${e['data-calls']}/${e['data-failed']} p99=${e['data-p99']}`).sort(), expect.edges, 'graph edges with calls/failed/p99');
  const labels = await texts('#graph [data-edge-label]');
  check(labels.length === edges.length && labels.every((l) => l.startsWith('p99 ')), `every edge labelled with its p99 (${labels.length})`);
  for (const [edge, label] of Object.entries(expect.edge_labels || {})) {
    const l = await page.$eval(`#graph [data-edge-label="${edge}"]`, (e) => e.textContent);
    eq(l, label, `label of ${edge}`);
  }
  // Shapes differ by kind, not only colour.
  const shapes = await page.$$eval('#graph [data-node]', (els) => Object.fromEntries(els.map((e) => [e.dataset.kind, e.querySelector('.shape').tagName + (e.querySelector('.node-tag') ? '+' + e.querySelector('.node-tag').textContent : '')])));
  check(new Set(Object.values(shapes)).size === Object.keys(shapes).length, `each node kind drawn differently: ${JSON.stringify(shapes)}`);
  await fitsScreen('graph view');
  await shot('graph');
  // Hover shows the numbers.
  if (expect.hover_edge) {
    // The real mouse on the middle of the curve.
    const at = await page.$eval(`#graph [data-edge="${expect.hover_edge}"]`, (e) => {
      const p = e.getPointAtLength(e.getTotalLength() / 2);
      const m = e.getScreenCTM();
      return { x: p.x * m.a + p.y * m.c + m.e, y: p.x * m.b + p.y * m.d + m.f };
    });
    await page.mouse.move(at.x, at.y);
    const tip = await page.$eval('#tooltip', (e) => (e.hidden ? '' : e.textContent));
    for (const part of expect.hover_text) check(tip.includes(part), `hover on ${expect.hover_edge} shows "${part}" (${tip})`);
  }
  // Clicking a node filters every view.
  await page.click(`#graph [data-node="${expect.select}"]`);
  await page.waitForFunction((s) => document.querySelector('#service-filter').value === s, expect.select);
  const faded = await page.$$eval('#graph .node.faded', (els) => els.map((e) => e.dataset.node).sort());
  eq(faded, expect.faded_when_selected, `nodes faded when ${expect.select} is selected`);
  await view('latency');
  const cards = await texts('[data-histogram] h3');
  check(cards.length > 0 && cards.every((c) => c.includes(expect.select)), `latency view shows only ${expect.select} (${cards.length} cards)`);
  await page.click('#clear-filter');
  await view('latency');
  // A histogram's percentile marks.
  const h = expect.histogram;
  const marks = await page.$$eval(`[data-histogram="${h.name}"] [data-mark]`, (els) => els.map((e) => [e.dataset.mark, Number(e.dataset.ns)]));
  eq(marks, h.marks, `percentile marks of ${h.name}`);
  const markText = await texts(`[data-histogram="${h.name}"] [data-mark] text`);
  if (h.mark_text) eq(markText, h.mark_text, `mark labels of ${h.name}`);
  const bars = await page.$$eval(`[data-histogram="${h.name}"] .bar rect`, (els) => els.length);
  check(bars > 0, `${h.name} has bars (${bars})`);
  await fitsScreen('latency view');
  await shot('latency');
  await view('bottlenecks');
  const rows = await page.$$eval('#bottleneck-operations tbody tr', (els) => els.map((e) => e.dataset.bottleneck));
  eq(rows.slice(0, expect.bottlenecks_top.length), expect.bottlenecks_top, 'top bottlenecks');
  const sparks = await page.$$eval('#bottleneck-operations .histogram.small', (els) => els.length);
  check(sparks === rows.length, `a distribution per bottleneck row (${sparks}/${rows.length})`);
  await fitsScreen('bottlenecks view');
  await shot('bottlenecks');
  await view('traces');
  const traceId = await page.$eval('#trace-view', (e) => e.dataset.traceId);
  eq(traceId, expect.slowest_trace, 'the slowest trace is shown first');
  const sections = await page.$$eval('#critical-path [data-cp-section]', (els) => els.map((e) => [e.dataset.cpSection, Number(e.dataset.start), Number(e.dataset.end)]));
  eq(sections, expect.critical_path, 'critical-path sections of the slowest trace');
  const onPath = await page.$$eval('.wf-row.on-path .wf-cp', (els) => els.length);
  check(onPath >= 1, `critical path highlighted in the waterfall (${onPath} insets)`);
  const selfText = await texts('.wf-row .wf-text');
  check(selfText.length > 0 && selfText.every((t) => t.includes('self')), 'self time shown on every row');
  await page.click('.wf-tools button:has-text("Zoom in")');
  const ticks = await texts('.wf-tick');
  check(ticks[0] !== '0ns', `zooming moves the axis (${ticks.join(' ')})`);
  await page.click('.wf-tools button:has-text("Reset")');
  await fitsScreen('trace view');
  await shot('trace');
  if (expect.compare) {
    await view('compare');
    const cmp = await page.$$eval('#compare-table [data-path]', (els) => els.map((e) => [e.dataset.path, e.className.replace('cmp-row ', ''), e.dataset.delta]));
    check(cmp.length >= expect.compare.min_rows, `comparison rows (${cmp.length})`);
    const matched = cmp.filter((r) => r[2] !== '').length;
    check(matched >= expect.compare.min_matched, `spans matched by call path (${matched})`);
    await fitsScreen('compare view');
    await shot('compare');
  }
  if (expect.verdict) {
    await view('verdict');
    const v = await page.$eval('#verdict', (e) => e.dataset.verdict);
    eq(v, expect.verdict.verdict, 'verdict');
    const reason = await page.$eval('#verdict-reason', (e) => e.textContent);
    eq(reason, expect.verdict.reason, 'verdict reason');
    const attr = await page.$$eval('#attribution [data-attribution]', (els) => els.map((e) => [e.dataset.attribution, Number(e.dataset.delta)]));
    eq(attr.slice(0, expect.verdict.attribution.length), expect.verdict.attribution, 'attribution, largest first');
    const series = await page.$$eval('[data-verdict-histogram] [data-series]', (els) => [...new Set(els.map((e) => e.dataset.series))].sort());
    eq(series, ['baseline', 'candidate'], 'side-by-side histograms per judged scope');
    const hists = await page.$$eval('[data-verdict-histogram]', (els) => els.length);
    check(hists >= 1, `histograms for judged scopes (${hists})`);
    await fitsScreen('verdict view');
    await shot('verdict');
  }
  // Keyboard: tabs move with the arrow keys; nodes take Enter.
  await view('graph');
  await page.focus('nav button[data-view="graph"]');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => document.body.dataset.rendered === 'latency');
  await view('graph');
  await page.focus(`#graph [data-node="${expect.select}"]`);
  await page.keyboard.press('Enter');
  const sel = await page.$eval('#service-filter', (e) => e.value);
  eq(sel, expect.select, 'Enter on a focused node selects it');
  // Print: every view is laid out.
  await page.emulateMedia({ media: 'print' });
  await page.evaluate(() => window.dispatchEvent(new Event('beforeprint')));
  const printed = await page.$$eval('main section', (els) => els.map((e) => e.id));
  for (const id of ['graph-view', 'latency-view', 'bottlenecks-view']) check(printed.includes(id), `print layout has ${id}`);
  const navHidden = await page.$eval('nav', (e) => getComputedStyle(e).display === 'none');
  check(navHidden, 'print hides the navigation');
}

async function liveCase() {
  await page.goto(URL_ + '/');
  await page.waitForFunction(() => document.body.dataset.rendered === 'graph');
  const nodes = await attrs('#graph [data-node]', ['data-node']);
  eq(nodes.map((n) => n['data-node']).sort(), expect.nodes, 'live graph nodes');
  const edges = await attrs('#graph [data-edge]', ['data-edge', 'data-calls']);
  eq(edges.map((e) => `${e['data-edge']} ${e['data-calls']}`).sort(), expect.edges, 'live graph edges with calls');
  await shot('live-graph');
  // The service filter goes to the API.
  await page.fill('#since', '1000d');
  await page.selectOption('#service-filter', expect.select);
  await page.click('#refresh');
  await page.waitForFunction((s) => [...document.querySelectorAll('#graph [data-node]')].length > 0 && [...document.querySelectorAll('#graph [data-edge]')].every((e) => e.dataset.edge.split('->').includes(s)), expect.select);
  check(requests.some((r) => r.includes('/api/v1/report?') && r.includes('service=' + expect.select)), 'the service filter is sent to /api/v1/report');
  // Search, then open a trace.
  await page.goto(URL_ + '/search');
  await page.waitForSelector('#search-go');
  await page.fill('#search-service', expect.search.service);
  if (expect.search.min_duration) await page.fill('#search-min_duration', expect.search.min_duration);
  if (expect.search.errors) await page.check('#search-errors');
  await page.fill('#search-since', '1000d');
  await page.click('#search-go');
  await page.waitForSelector('#search-table');
  const found = await page.$$eval('#search-table tbody tr', (els) => els.map((e) => e.dataset.traceId).sort());
  eq(found, expect.search.found, 'search results');
  await shot('live-search');
  await page.click(`#search-table a[href="/trace/${expect.trace.id}"]`);
  await page.waitForSelector('#trace-view');
  const sections = await page.$$eval('#critical-path [data-cp-section]', (els) => els.map((e) => e.dataset.cpSection));
  eq(sections, expect.trace.critical_path, 'live trace page: critical-path sections');
  await shot('live-trace');
  // The verdict form asks /api/v1/verdict and shows its answer.
  await page.goto(URL_ + '/');
  await page.waitForFunction(() => document.body.dataset.rendered === 'graph');
  await view('verdict');
  const beforeVerdict = errors.length;
  await page.fill('#verdict-service', expect.verdict.service);
  await page.fill('#verdict-baseline_version', '1.0.0');
  await page.fill('#verdict-candidate_version', '2.0.0');
  await page.click('#verdict-go');
  await page.waitForSelector('#verdict-error, #verdict');
  const said = await page.$eval('#verdict-error, #verdict', (e) => e.textContent);
  check(said.includes(expect.verdict.says), `the verdict form shows the receiver's answer (${said})`);
  check(requests.some((r) => r.includes('/api/v1/verdict?') && r.includes('service=' + expect.verdict.service)), 'the form asked /api/v1/verdict');
  // The browser logs the API's 400 itself; that one is expected.
  eq(errors.splice(beforeVerdict).filter((e) => !e.includes('400')), [], 'nothing but the 400 logged for a refused verdict');
  // A trace that is not there says so.
  const before = errors.length;
  await page.goto(URL_ + '/trace/00000000000000000000000000000001');
  // It stays once the page's report has loaded behind it.
  await page.waitForSelector('.warning');
  await page.waitForLoadState('networkidle');
  const warn = await page.locator('.warning').first().textContent();
  check(/not among the spans received/.test(warn), `a missing trace says so (${warn})`);
  // The browser logs the API's 404 itself; that one is expected.
  const logged = errors.splice(before);
  eq(logged.filter((e) => !e.includes('404')), [], 'nothing but the 404 logged for a missing trace');
}

// Names that are markup stay text.
async function hostileCase() {
  await page.goto(URL_);
  await page.waitForFunction(() => document.body.dataset.rendered === 'graph');
  const nodes = await page.$$eval('#graph [data-node]', (els) => els.map((e) => e.dataset.node).sort());
  eq(nodes, expect.nodes, 'names drawn as they are');
  for (const v of ['latency', 'bottlenecks', 'traces']) await view(v);
  const pwned = await page.evaluate(() => window.pwned);
  eq(pwned, undefined, 'no name ran as script');
  const title = await page.title();
  eq(title, expect.title, 'the title is text');
}

// Render timings for the benchmark suite: prints one JSON line.
async function benchCase() {
  const t0 = Date.now();
  await page.goto(URL_);
  await page.waitForFunction(() => document.body.dataset.rendered === 'graph', null, { timeout: 60000 });
  const graphMs = Date.now() - t0;
  const inPage = await page.evaluate(() => window.tracelens.timings);
  const nodes = await page.$$eval('#graph [data-node]', (els) => els.length);
  const edges = await page.$$eval('#graph [data-edge]', (els) => els.length);
  const t1 = Date.now();
  await page.click('nav button[data-view="traces"]');
  await page.waitForSelector('#trace-view .wf-row', { timeout: 60000 });
  const traceMs = Date.now() - t1;
  const spans = await page.$eval('#trace-view .waterfall', (e) => Number(e.getAttribute('aria-rowcount')));
  // Scrolling to the end of the waterfall draws its last rows.
  const t2 = Date.now();
  await page.$eval('.wf-scroll', (e) => { e.scrollTop = e.scrollHeight; });
  await page.waitForFunction((n) => !!document.querySelector(`.wf-row[aria-rowindex="${n}"]`), spans);
  const scrollMs = Date.now() - t2;
  console.log(JSON.stringify({ nodes, edges, open_to_graph_ms: graphMs, graph_render_ms: Math.round(inPage['render:graph']), trace_spans: spans, trace_ms: traceMs, scroll_to_end_ms: scrollMs }));
  await shot('bench-trace');
}

try {
  if (CASE === 'report') await reportCase();
  else if (CASE === 'live') await liveCase();
  else if (CASE === 'bench') await benchCase();
  else if (CASE === 'hostile') await hostileCase();
  else throw new Error('unknown case ' + CASE);
} catch (e) {
  failures.push(String(e.stack || e));
  console.log('FAIL ' + String(e.stack || e));
}
check(errors.length === 0, `no script errors (${errors.join(' | ')})`);
check(outside.length === 0, `no request leaves the machine (${outside.length} blocked: ${outside.slice(0, 5).join(' ')})`);
const nonLocal = requests.filter((u) => !(u.startsWith('file:') || u.startsWith('data:') || (origin !== 'null' && u.startsWith(origin + '/'))));
check(nonLocal.length === 0, `every request was local (${requests.length} requests)`);
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}

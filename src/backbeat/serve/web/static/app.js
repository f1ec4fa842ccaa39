/*
 * The backbeat dashboard: KPI tiles, charts and a live event table over the REST API.
 *
 * Data flow: one EventSource on /api/stream (filters of the table as query params) pushes an
 * `update` per committed batch: the KPI tiles and the table follow it at once, and it triggers
 * a refresh of the charts from the aggregate endpoints, at most once every REFRESH_MS. Nothing
 * polls on a timer: with no update, no request. Charts are created once and updated in place.
 * Filters and the window live in the URL query (history.replaceState). At start the page asks
 * /api/capabilities which routes the store answers and hides the panels, tiles and filters
 * of the others (marked data-route / data-filtered in index.html): it never asks them. Tests
 * read `window.backbeat` ({charts, capabilities, lastUpdate, updates, refreshes}). Panels in
 * their own file (foryou.js) use its helpers (api, answers, el, listeners), wait for
 * `backbeat.ready` (capabilities known) and follow the document's events `backbeat:update` (a
 * pushed batch) and `backbeat:rows` (the live table changed).
 * Next: ../index.html (layout), app.css (look), foryou.js, src/backbeat/serve/ (the API).
 */
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const MAX_ROWS = 50;
  const FILTERS = ["artist", "genre", "platform", "country", "mood", "min_rating", "skipped"];
  const WINDOWS = ["5m", "1h", "24h", "all"];
  const ENGAGEMENT_BY = ["platform", "mood", "genre"];
  const SKIPPED_MIN_PLAYS = 10; // "Most skipped": songs played at least this often
  const TOP_GENRES = 8; // the genre chart stacks these; the rest sum into OTHER
  const OTHER = "other";
  const PALETTE = [
    "#22d3ee", "#a78bfa", "#f472b6", "#34d399", "#fbbf24", "#60a5fa",
    "#fb7185", "#a3e635", "#f97316", "#2dd4bf", "#e879f9", "#94a3b8",
  ];
  const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  const state = {
    window: "1h",
    by: "platform",
    filters: {},
    source: null,
    generation: 0, // bumps when the filters change: late answers for old filters are dropped
    retryMs: 1000,
    asOf: null,
    chartBatch: undefined, // batch id the charts last showed
    lastRefresh: 0,
    refreshTimer: null,
    refreshing: false,
    rows: [],
    keys: new Set(),
    history: { streams: [], users: [], eps: [] },
  };
  const backbeat = (window.backbeat = {
    charts: {}, capabilities: null, lastUpdate: null, updates: 0, refreshes: 0,
  });
  let capabilitiesKnown;
  backbeat.ready = new Promise((resolve) => (capabilitiesKnown = resolve));

  // ---------------------------------------------------------------- helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
  const nf = new Intl.NumberFormat("en-US");
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const fmtInt = (n) => (n == null ? "—" : nf.format(n));
  const fmtCompact = (n) => (n == null ? "—" : n >= 10000 ? compact.format(n) : nf.format(n));
  const fmtPct = (x, digits = 1) => (x == null || Number.isNaN(x) ? "—" : `${(x * 100).toFixed(digits)}%`);
  const utcTime = (iso) => (iso ? new Date(iso).toISOString().slice(11, 19) : "");
  const utcMinute = (iso) => new Date(iso).toISOString().slice(11, 16);
  const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const colorOf = (() => {
    const seen = new Map();
    return (key) => {
      if (!seen.has(key)) seen.set(key, PALETTE[seen.size % PALETTE.length]);
      return seen.get(key);
    };
  })();

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "data") Object.assign(node.dataset, v);
      else if (k === "style") node.style.cssText = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  async function api(path, params = {}) {
    const res = await fetch(path + query(params), { headers: { Accept: "application/json" } });
    if (res.status === 401) {
      window.location.assign("/login");
      throw new Error("not signed in");
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${path}: ${body.error || res.status}`);
    return body;
  }

  // ---------------------------------------------------------------- what the store answers
  // null capabilities (not known): everything is asked, as before there were any.
  const answers = (path) => !backbeat.capabilities || backbeat.capabilities.routes.includes(path);
  const filters = (name) => !backbeat.capabilities || backbeat.capabilities.filtered.includes(name);

  async function loadCapabilities() {
    try {
      backbeat.capabilities = await api("/api/capabilities");
    } catch (err) {
      console.warn("backbeat:", err);
    }
    for (const node of $$("[data-route]")) if (!answers(node.dataset.route)) node.hidden = true;
    for (const node of $$("[data-filtered]")) if (!filters(node.dataset.filtered)) node.hidden = true;
    // A filter from the URL that the page cannot show is not applied either (nor kept).
    const form = $("#filters");
    const dropped = FILTERS.filter((f) => state.filters[f] && form.elements[f].closest("[hidden]"));
    for (const f of dropped) state.filters[f] = "";
    if (dropped.length) writeUrl();
    capabilitiesKnown();
  }

  // ---------------------------------------------------------------- URL state
  function readUrl() {
    const q = new URLSearchParams(window.location.search);
    for (const f of FILTERS) state.filters[f] = q.get(f) || "";
    if (WINDOWS.includes(q.get("window"))) state.window = q.get("window");
    if (ENGAGEMENT_BY.includes(q.get("by"))) state.by = q.get("by");
  }

  function writeUrl() {
    const params = { ...state.filters };
    if (state.window !== "1h") params.window = state.window;
    if (state.by !== "platform") params.by = state.by;
    const url = window.location.pathname + query(params) + window.location.hash;
    window.history.replaceState(null, "", url);
  }

  // ---------------------------------------------------------------- charts
  function setupChartDefaults() {
    const d = Chart.defaults;
    d.color = "#8b95a7";
    d.borderColor = "rgba(148, 163, 184, 0.08)";
    d.font.family = getComputedStyle(document.body).fontFamily;
    d.font.size = 11;
    d.maintainAspectRatio = false;
    d.animation.duration = reduceMotion ? 0 : 600;
    d.plugins.legend.labels.boxWidth = 8;
    d.plugins.legend.labels.boxHeight = 8;
    d.plugins.legend.labels.usePointStyle = true;
    d.plugins.tooltip.backgroundColor = "rgba(15, 20, 32, 0.95)";
    d.plugins.tooltip.borderColor = "rgba(148, 163, 184, 0.2)";
    d.plugins.tooltip.borderWidth = 1;
    d.plugins.tooltip.padding = 10;
  }

  const centerText = {
    id: "centerText",
    afterDraw(chart, _args, opts) {
      const text = opts.text && opts.text(chart);
      if (!text) return;
      const { ctx, chartArea: a } = chart;
      ctx.save();
      ctx.fillStyle = "#e6e9ef";
      ctx.font = `600 15px ${Chart.defaults.font.family}`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(text, (a.left + a.right) / 2, (a.top + a.bottom) / 2);
      ctx.restore();
    },
  };

  function rankedBar(canvas, color, labelWidth) {
    return new Chart(canvas, {
      type: "bar",
      data: { labels: [], datasets: [{ label: "plays", data: [], backgroundColor: color, borderRadius: 4, maxBarThickness: 16 }] },
      options: {
        indexAxis: "y",
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => items[0].label, label: (i) => ` ${fmtInt(i.raw)} plays` } },
        },
        scales: {
          x: { beginAtZero: true, ticks: { callback: (v) => fmtCompact(v), maxTicksLimit: 5 } },
          y: {
            grid: { display: false },
            ticks: {
              autoSkip: false,
              callback(value) {
                return truncate(this.getLabelForValue(value), labelWidth());
              },
            },
          },
        },
      },
    });
  }

  function createCharts() {
    setupChartDefaults();
    const c = backbeat.charts;
    const labelWidth = () => (window.innerWidth < 700 ? 16 : 26);
    c.topSongs = rankedBar($("#chart-top-songs"), "#22d3ee", labelWidth);
    c.topArtists = rankedBar($("#chart-top-artists"), "#a78bfa", labelWidth);

    c.genres = new Chart($("#chart-genres"), {
      type: "line",
      data: { labels: [], datasets: [] },
      options: {
        interaction: { mode: "index", intersect: false },
        elements: { point: { radius: 0, hoverRadius: 3 }, line: { tension: 0.35, borderWidth: 1.5 } },
        plugins: {
          legend: {
            position: "bottom",
            labels: { filter: (item, data) => data.datasets[item.datasetIndex].data.some((v) => v > 0) },
          },
          tooltip: { itemSort: (a, b) => b.raw - a.raw, filter: (item) => item.raw > 0 },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => fmtCompact(v), maxTicksLimit: 6 } },
        },
      },
    });

    c.hourly = new Chart($("#chart-hourly"), {
      type: "bar",
      data: {
        labels: Array.from({ length: 24 }, (_, h) => String(h).padStart(2, "0")),
        datasets: [
          { label: "today", data: [], backgroundColor: "rgba(34, 211, 238, 0.75)", borderRadius: 3, order: 2 },
          {
            label: "yesterday", type: "line", data: [], borderColor: "#a78bfa", borderDash: [4, 3],
            borderWidth: 1.5, pointRadius: 0, tension: 0.35, order: 1,
          },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { title: (i) => `${i[0].label}:00 UTC` } } },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 12, maxRotation: 0 } },
          y: { beginAtZero: true, ticks: { callback: (v) => fmtCompact(v), maxTicksLimit: 6 } },
        },
      },
    });

    c.engagement = new Chart($("#chart-engagement"), {
      type: "bar",
      data: {
        labels: [],
        datasets: [
          { label: "completion", data: [], backgroundColor: "#34d399", borderRadius: 3, maxBarThickness: 18 },
          { label: "skip", data: [], backgroundColor: "#fb7185", borderRadius: 3, maxBarThickness: 18 },
        ],
      },
      options: {
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: (i) => ` ${i.dataset.label}: ${fmtPct(i.raw)}` } },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: false, callback(v) { return truncate(this.getLabelForValue(v), 10); } } },
          y: { beginAtZero: true, suggestedMax: 1, ticks: { callback: (v) => fmtPct(v, 0), maxTicksLimit: 6 } },
        },
      },
    });

    const doughnut = (canvas, colors, center) =>
      new Chart(canvas, {
        type: "doughnut",
        data: { labels: [], datasets: [{ data: [], backgroundColor: colors, borderWidth: 0, hoverOffset: 4 }] },
        options: {
          cutout: "70%",
          plugins: {
            legend: { position: "bottom" },
            centerText: { text: center },
            tooltip: {
              callbacks: {
                label: (i) => {
                  const total = i.dataset.data.reduce((a, b) => a + b, 0);
                  return ` ${i.label}: ${fmtInt(i.raw)} (${fmtPct(total ? i.raw / total : null)})`;
                },
              },
            },
          },
        },
        plugins: [centerText],
      });
    const shareOf = (chart, label) => {
      const { labels, datasets } = chart.data;
      const data = datasets[0].data;
      const total = data.reduce((a, b) => a + b, 0);
      const i = labels.indexOf(label);
      return total && i >= 0 ? fmtPct(data[i] / total, 0) : "";
    };
    c.gender = doughnut($("#chart-gender"), ["#f472b6", "#60a5fa", "#94a3b8"], (ch) => shareOf(ch, "female") && `${shareOf(ch, "female")} F`);
    c.level = doughnut($("#chart-level"), ["#fbbf24", "#475569"], (ch) => shareOf(ch, "paid") && `${shareOf(ch, "paid")} paid`);
  }

  const GENDER_LABEL = { F: "female", M: "male" };

  function showTopSongs(body) {
    const ch = backbeat.charts.topSongs;
    ch.data.labels = body.items.map((i) => `${i.song} — ${i.artist}`);
    ch.data.datasets[0].data = body.items.map((i) => i.plays);
    ch.update();
  }

  function showTopArtists(body) {
    const ch = backbeat.charts.topArtists;
    ch.data.labels = body.items.map((i) => i.artist);
    ch.data.datasets[0].data = body.items.map((i) => i.plays);
    ch.update();
  }

  function showGenres(body) {
    const ch = backbeat.charts.genres;
    // Minutes from open_from on are still filling up (read with the rows, in the same
    // snapshot): leave them out rather than draw a dip.
    const open = body.open_from ? Date.parse(body.open_from) : Infinity;
    const closed = body.items.filter((i) => Date.parse(i.window_start) < open);
    const items = closed.length ? closed : body.items;
    const starts = [...new Set(items.map((i) => i.window_start))].sort();
    const at = new Map(starts.map((s, i) => [s, i]));
    const totals = new Map();
    for (const i of items) totals.set(i.genre, (totals.get(i.genre) || 0) + i.plays);
    const top = new Set([...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a)).slice(0, TOP_GENRES));
    const key = (genre) => (top.has(genre) ? genre : OTHER);
    // A dataset per genre ever shown keeps its colour; genres out of the top sum into "other".
    for (const label of [...top, ...(totals.size > top.size ? [OTHER] : [])]) {
      if (ch.data.datasets.some((d) => d.label === label)) continue;
      const color = label === OTHER ? "#64748b" : colorOf(`genre:${label}`);
      ch.data.datasets.push({
        label, data: [], borderColor: color, backgroundColor: `${color}55`, fill: "stack",
        order: label === OTHER ? 1000 : ch.data.datasets.length,
      });
    }
    for (const d of ch.data.datasets) d.data = new Array(starts.length).fill(0);
    const byLabel = new Map(ch.data.datasets.map((d) => [d.label, d.data]));
    for (const i of items) byLabel.get(key(i.genre))[at.get(i.window_start)] += i.plays;
    ch.data.labels = starts.map(utcMinute);
    ch.update();
  }

  function showHourly(body) {
    const ch = backbeat.charts.hourly;
    const byHour = new Map(body.items.map((i) => [i.hour, i]));
    const now = state.asOf && state.asOf.slice(0, 10) === body.today ? new Date(state.asOf).getUTCHours() : 23;
    ch.data.datasets[0].data = ch.data.labels.map((_, h) => (h > now ? null : byHour.get(h)?.today ?? 0));
    ch.data.datasets[1].data = ch.data.labels.map((_, h) => byHour.get(h)?.yesterday ?? 0);
    ch.update();
  }

  function showEngagement(body) {
    const ch = backbeat.charts.engagement;
    const items = [...body.items].sort((a, b) => b.listens - a.listens).slice(0, 10);
    ch.data.labels = items.map((i) => i.value);
    ch.data.datasets[0].data = items.map((i) => i.completion_rate);
    ch.data.datasets[1].data = items.map((i) => i.skip_rate);
    ch.update();
    const total = body.items.reduce((a, i) => a + i.listens, 0);
    const mean = (key) => {
      const rows = body.items.filter((i) => i[key] != null);
      const n = rows.reduce((a, i) => a + i.listens, 0);
      return n ? rows.reduce((a, i) => a + i[key] * i.listens, 0) / n : null;
    };
    const facts = $("#facts");
    const rating = mean("avg_rating");
    $('[data-fact="completion"]', facts).textContent = fmtPct(mean("completion_rate"));
    $('[data-fact="listened"]', facts).textContent = fmtPct(mean("avg_listened"), 0);
    $('[data-fact="rating"]', facts).textContent = rating == null ? "—" : `${rating.toFixed(2)} ★`;
    $('[data-fact="listens"]', facts).textContent = fmtInt(total);
  }

  function showLevels(body) {
    const g = backbeat.charts.gender;
    const genders = [...body.genders].sort((a, b) => String(a.gender).localeCompare(String(b.gender)));
    g.data.labels = genders.map((i) => GENDER_LABEL[i.gender] || (i.gender == null ? "unknown" : i.gender));
    g.data.datasets[0].data = genders.map((i) => i.listens);
    g.update();
    const l = backbeat.charts.level;
    const levels = [...body.levels].sort((a, b) => (a.level === "paid" ? -1 : b.level === "paid" ? 1 : 0));
    l.data.labels = levels.map((i) => i.level);
    l.data.datasets[0].data = levels.map((i) => i.listens);
    l.update();
  }

  // A ranked list (ol.ranked): rank, name, a bar of value / max (default: the largest), the
  // figure, then any more figures (`more`: shown on wide screens); rows are reused from one
  // refresh to the next.
  function showRanked(list, items, row, none) {
    const { name, value, num, max, title = () => "", data = () => ({}), more = () => [] } = row;
    for (const li of $$(":scope > .none", list)) li.remove();
    while (list.children.length > items.length) list.lastElementChild.remove();
    const top = max ?? Math.max(1, ...items.map(value));
    items.forEach((item, i) => {
      let li = list.children[i];
      if (!li) {
        li = el("li", {}, el("span", { class: "rank" }), el("span", { class: "name" }),
          el("span", { class: "bar" }, el("span")), el("span", { class: "num" }),
          ...more(item).map(() => el("span", { class: "num more" })));
        list.append(li);
      }
      more(item).forEach((text, k) => (li.children[4 + k].textContent = text));
      Object.assign(li.dataset, data(item));
      li.title = title(item);
      li.children[0].textContent = String(i + 1);
      li.children[1].textContent = name(item);
      li.children[2].firstChild.style.width = `${(100 * value(item)) / top}%`;
      li.children[3].textContent = num(item);
    });
    if (!items.length) list.replaceChildren(el("li", { class: "none", text: none }));
  }

  function showStates(body) {
    showRanked($("#states"), body.items.slice(0, 12), {
      name: (i) => i.state, value: (i) => i.listens, num: (i) => fmtCompact(i.listens),
      data: (i) => ({ state: i.state }),
    }, "no listens in this window");
  }

  function showSkipped(body) {
    showRanked($("#skipped"), body.items, {
      name: (i) => (i.song ? `${i.song} — ${i.artist}` : i.artist),
      value: (i) => i.skip_rate, max: 1, num: (i) => fmtPct(i.skip_rate, 0),
      title: (i) => `${fmtInt(i.listens)} listens · ${fmtPct(i.skip_rate)} skipped · `
        + `${fmtPct(i.completion_rate)} completed · ${fmtPct(i.avg_listened)} listened on average`,
      more: (i) => [`${fmtCompact(i.listens)} listens`, `${fmtPct(i.completion_rate, 0)} completed`,
        `${fmtPct(i.avg_listened, 0)} listened`],
      data: (i) => ({ track: i.track_id || "" }),
    }, `no song with ${SKIPPED_MIN_PLAYS}+ plays in this window`);
  }

  // ---------------------------------------------------------------- chart refresh (throttled)
  function requestRefresh() {
    if (state.refreshTimer !== null || document.hidden) return;
    const wait = Math.max(0, state.lastRefresh + REFRESH_MS - Date.now());
    state.refreshTimer = window.setTimeout(() => {
      state.refreshTimer = null;
      refreshCharts();
    }, wait);
  }

  async function refreshCharts() {
    if (state.refreshing) {
      state.again = true;
      return;
    }
    state.refreshing = true;
    state.lastRefresh = Date.now();
    loadFilterOptions(); // genres, countries... that appeared since: add them to the selects
    const batch = backbeat.lastUpdate ? backbeat.lastUpdate.batch_id : undefined;
    const w = { window: state.window };
    const jobs = [
      ["/api/top-songs", { ...w, limit: 10 }, showTopSongs],
      ["/api/top-artists", { ...w, limit: 10 }, showTopArtists],
      ["/api/top-skipped", { ...w, limit: 10, min_plays: SKIPPED_MIN_PLAYS }, showSkipped],
      ["/api/genres/windows", {}, showGenres],
      ["/api/activity/hourly", {}, showHourly],
      ["/api/engagement", { ...w, by: state.by }, showEngagement],
      ["/api/levels", w, showLevels],
      ["/api/geo/states", { ...w, limit: 12 }, showStates],
    ].filter(([path]) => answers(path)).map(([path, params, show]) => api(path, params).then(show));
    const results = await Promise.allSettled(jobs);
    const failed = results.filter((r) => r.status === "rejected");
    for (const f of failed) console.warn("backbeat:", f.reason);
    if (!failed.length) state.chartBatch = batch;
    backbeat.refreshes += 1;
    state.refreshing = false;
    if (state.again) {
      state.again = false;
      requestRefresh();
    }
  }

  // ---------------------------------------------------------------- KPI tiles
  function setText(node, text) {
    if (node.textContent === text) return;
    node.textContent = text;
    if (!reduceMotion) {
      node.classList.remove("flash");
      void node.offsetWidth; // restart the animation
      node.classList.add("flash");
    }
  }

  function spark(svg, series) {
    const line = svg.firstElementChild;
    if (series.length < 2) return line.setAttribute("points", "");
    const lo = Math.min(...series);
    const hi = Math.max(...series);
    const span = hi - lo || 1;
    const pts = series.map((v, i) => `${((100 * i) / (series.length - 1)).toFixed(1)},${(22 - (20 * (v - lo)) / span).toFixed(1)}`);
    line.setAttribute("points", pts.join(" "));
  }

  function remember(key, value) {
    const h = state.history[key];
    if (value == null) return h;
    h.push(value);
    if (h.length > 60) h.shift();
    return h;
  }

  function showSummary(s) {
    state.asOf = s.as_of;
    $("#asof").textContent = s.as_of ? `${s.as_of.slice(0, 10)} ${utcTime(s.as_of)} UTC` : "no events yet";

    const streams = $("#kpi-streams");
    setText($('[data-field="value"]', streams), fmtInt(s.streams_last_hour));
    const delta = $('[data-field="delta"]', streams);
    const change = s.streams_prev_hour ? (s.streams_last_hour - s.streams_prev_hour) / s.streams_prev_hour : null;
    delta.textContent = change == null ? "—" : `${change >= 0 ? "▲" : "▼"} ${fmtPct(Math.abs(change))}`;
    delta.dataset.sign = change == null ? "" : change >= 0 ? "up" : "down";
    spark($('[data-field="spark"]', streams), remember("streams", s.streams_last_hour));

    const users = $("#kpi-users");
    setText($('[data-field="value"]', users), fmtInt(s.active_users));
    spark($('[data-field="spark"]', users), remember("users", s.active_users));

    for (const [id, value] of [["#kpi-paid", s.paid_share], ["#kpi-skip", s.skip_rate]]) {
      setText($('[data-field="value"]', $(id)), fmtPct(value));
      $('[data-field="meter"]', $(id)).style.width = `${value == null ? 0 : Math.min(100, value * 100)}%`;
    }

    const eps = $("#kpi-eps");
    const rate = s.events_per_second;
    setText($('[data-field="value"]', eps), rate == null ? "—" : rate >= 100 ? fmtInt(Math.round(rate)) : rate.toFixed(1));
    $('[data-field="total"]', eps).textContent = fmtCompact(s.events_total);
    const dead = $('[data-field="dead"]', eps);
    dead.textContent = fmtInt(s.dead_letters);
    dead.classList.toggle("bad", s.dead_letters > 0);
    spark($('[data-field="spark"]', eps), remember("eps", rate));
  }

  // ---------------------------------------------------------------- live table
  const eventKey = (e) => `${e.ts}|${e.user_id}|${e.track_id || e.song}|${e.artist}`;

  function rowFor(e) {
    const pct = Math.max(0, Math.min(1, e.listen_pct ?? 0));
    const tr = el("tr", {
      data: {
        key: eventKey(e),
        genre: e.genre ?? "", platform: e.platform ?? "", country: e.country ?? "", mood: e.mood ?? "",
        artist: e.artist ?? "", skipped: String(!!e.skipped), rating: e.rating == null ? "" : String(e.rating),
      },
    });
    const genreDot = el("span", { class: "dot", style: `background:${colorOf(`genre:${e.genre}`)}` });
    tr.append(
      el("td", { class: "c-time mono", text: utcTime(e.ts), title: e.ts }),
      el("td", { class: "c-song" }, el("div", { class: "song", text: e.song ?? "" }), el("div", { class: "artist", text: e.artist ?? "" })),
      el("td", { class: "c-genre" }, el("span", { class: "chip" }, genreDot, e.genre ?? "")),
      el("td", { class: "c-platform", text: e.platform ?? "" }),
      el("td", { class: "c-country", text: e.country ?? "" }),
      el("td", { class: "c-mood", text: e.mood ?? "" }),
      el("td", { class: "c-listened" },
        el("span", { class: "pct-bar" }, el("span", { style: `width:${(pct * 100).toFixed(0)}%` })),
        el("span", { class: "mono", text: `${(pct * 100).toFixed(0)}%` })),
      el("td", { class: "c-skip" }, e.skipped ? el("span", { class: "badge skip", text: "skip" }) : ""),
      el("td", { class: "c-rating mono", text: e.rating == null ? "" : `${Number(e.rating).toFixed(1)} ★` }),
      el("td", { class: "c-user" }, el("span", { class: "mono", text: `#${e.user_id}` }), " ",
        e.level === "paid" ? el("span", { class: "badge paid", text: "paid" }) : ""),
    );
    return tr;
  }

  function trimRows() {
    const body = $("#events");
    while (state.rows.length > MAX_ROWS) {
      state.keys.delete(eventKey(state.rows.pop()));
      body.lastElementChild.remove();
    }
    $("#events-empty").hidden = state.rows.length > 0;
    $("#events-count").textContent = `${state.rows.length} latest`;
    document.dispatchEvent(new CustomEvent("backbeat:rows"));
  }

  function prependEvents(events) {
    const fresh = events.filter((e) => !state.keys.has(eventKey(e))).slice(0, MAX_ROWS);
    if (!fresh.length) return;
    const body = $("#events");
    const old = [...body.rows];
    const before = old.length ? old[0].getBoundingClientRect().top : 0;
    const frag = document.createDocumentFragment();
    for (const e of fresh) {
      state.keys.add(eventKey(e));
      const tr = rowFor(e);
      if (!reduceMotion) {
        tr.classList.add("enter");
        tr.addEventListener("animationend", () => tr.classList.remove("enter"), { once: true });
      }
      frag.append(tr);
    }
    body.prepend(frag);
    state.rows.unshift(...fresh);
    trimRows();
    if (reduceMotion || !old.length || !old[0].isConnected) return;
    // FLIP: the rows already there slide down into their new place instead of jumping.
    const dy = old[0].getBoundingClientRect().top - before;
    const moving = old.filter((r) => r.isConnected);
    for (const r of moving) {
      r.style.transition = "none";
      r.style.transform = `translateY(${-dy}px)`;
    }
    requestAnimationFrame(() => {
      for (const r of moving) {
        r.style.transition = "";
        r.style.transform = "";
      }
    });
  }

  function replaceEvents(events) {
    state.rows = [];
    state.keys = new Set();
    $("#events").replaceChildren();
    const unique = events.filter((e) => {
      const k = eventKey(e);
      if (state.keys.has(k)) return false;
      state.keys.add(k);
      return true;
    });
    state.keys = new Set();
    const frag = document.createDocumentFragment();
    for (const e of unique.slice(0, MAX_ROWS)) {
      state.keys.add(eventKey(e));
      state.rows.push(e);
      frag.append(rowFor(e));
    }
    $("#events").append(frag);
    trimRows();
  }

  async function loadEvents(gen) {
    $("#events").classList.add("loading");
    try {
      const body = await api("/api/events", { ...state.filters, limit: MAX_ROWS });
      if (gen !== state.generation) return;
      // Rows the stream delivered meanwhile are newer than or equal to the answer: keep them.
      const merged = [...state.rows, ...body.items].sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0));
      replaceEvents(merged);
    } catch (err) {
      console.warn("backbeat:", err);
    } finally {
      if (gen === state.generation) $("#events").classList.remove("loading");
    }
  }

  // ---------------------------------------------------------------- the stream
  function setStatus(kind) {
    const box = $("#status");
    if (box.dataset.state === kind) return;
    box.dataset.state = kind;
    $("#status-text").textContent = kind;
  }

  function onUpdate(data) {
    backbeat.lastUpdate = data;
    backbeat.updates += 1;
    setStatus("live");
    if (data.summary) showSummary(data.summary);
    if (data.events && data.events.length) prependEvents(data.events);
    if (data.batch_id !== state.chartBatch) requestRefresh();
    document.dispatchEvent(new CustomEvent("backbeat:update", { detail: data }));
  }

  function connect() {
    if (state.source) state.source.close();
    const gen = state.generation;
    const streamParams = { ...state.filters };
    const source = new EventSource(`/api/stream${query(streamParams)}`);
    state.source = source;
    source.onopen = () => {
      if (gen !== state.generation) return;
      state.retryMs = 1000;
      setStatus("live");
    };
    source.addEventListener("update", (msg) => {
      if (gen !== state.generation || state.source !== source) return;
      try {
        onUpdate(JSON.parse(msg.data));
      } catch (err) {
        console.warn("backbeat: bad update", err);
      }
    });
    source.addEventListener("store-error", () => {
      // The store could not answer this time; the next commit tries again.
      if (gen === state.generation && state.source === source) setStatus("store busy");
    });
    source.onerror = () => {
      if (state.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status): try again ourselves, backing off.
        setStatus("offline");
        window.setTimeout(() => state.source === source && connect(), state.retryMs);
        state.retryMs = Math.min(state.retryMs * 2, 30000);
      } else {
        setStatus("reconnecting");
      }
    };
  }

  // ---------------------------------------------------------------- controls
  function readFilters() {
    const form = $("#filters");
    const next = {};
    for (const f of FILTERS) next[f] = form.elements[f].value.trim();
    return next;
  }

  function applyFilters() {
    const next = readFilters();
    if (FILTERS.every((f) => next[f] === state.filters[f])) return;
    state.filters = next;
    state.generation += 1;
    writeUrl();
    markActiveFilters();
    replaceEvents([]);
    connect();
    loadEvents(state.generation);
  }

  function markActiveFilters() {
    for (const f of FILTERS) $("#filters").elements[f].closest("label").classList.toggle("active", !!state.filters[f]);
  }

  function ensureOption(select, value) {
    if (value && ![...select.options].some((o) => o.value === value)) select.append(el("option", { value, text: value }));
    select.value = value;
  }

  async function loadFilterOptions() {
    if (!answers("/api/filters")) return;
    const form = $("#filters");
    try {
      const body = await api("/api/filters");
      for (const name of ["genre", "platform", "country", "mood"]) {
        const select = form.elements[name];
        for (const v of body[name] || []) if (![...select.options].some((o) => o.value === v)) select.append(el("option", { value: v, text: v }));
        ensureOption(select, state.filters[name]);
      }
    } catch (err) {
      console.warn("backbeat:", err);
    }
  }

  function setupControls() {
    const form = $("#filters");
    for (const f of FILTERS) {
      const input = form.elements[f];
      if (input.tagName === "SELECT") ensureOption(input, state.filters[f]);
      else input.value = state.filters[f];
    }
    markActiveFilters();
    form.addEventListener("submit", (ev) => ev.preventDefault());
    form.addEventListener("change", applyFilters);
    let typing = null;
    form.elements.artist.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(applyFilters, 350);
    });
    form.addEventListener("reset", () => window.setTimeout(applyFilters, 0));

    const segmented = (box, attr, current, onPick) => {
      const mark = (value) => {
        for (const b of $$("button", box)) {
          b.setAttribute("aria-checked", String(b.dataset[attr] === value));
          b.classList.toggle("on", b.dataset[attr] === value);
        }
      };
      mark(current);
      box.addEventListener("click", (ev) => {
        const b = ev.target.closest("button");
        if (!b) return;
        mark(b.dataset[attr]);
        onPick(b.dataset[attr]);
      });
    };
    const windowLabels = () => $$("[data-window-label]").forEach((n) => (n.textContent = state.window === "all" ? "all time" : `last ${state.window}`));
    windowLabels();
    $("#skipped-min").textContent = String(SKIPPED_MIN_PLAYS);
    segmented($("#window-select"), "window", state.window, (w) => {
      if (w === state.window) return;
      state.window = w;
      windowLabels();
      writeUrl();
      refreshCharts(); // a click answers at once; only pushed updates are throttled
    });
    segmented($("#engagement-by"), "by", state.by, (by) => {
      if (by === state.by) return;
      state.by = by;
      writeUrl();
      api("/api/engagement", { window: state.window, by }).then(showEngagement, (e) => console.warn("backbeat:", e));
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && backbeat.lastUpdate && backbeat.lastUpdate.batch_id !== state.chartBatch) requestRefresh();
    });
  }

  // ---------------------------------------------------------------- for other panels' files
  Object.assign(backbeat, {
    api, answers, el, fmtPct, utcTime, refreshMs: REFRESH_MS,
    listeners: () => [...new Set(state.rows.map((e) => e.user_id).filter((u) => u != null))],
  });

  async function start() {
    readUrl();
    await loadCapabilities();
    createCharts();
    setupControls();
    loadFilterOptions();
    // Without a live stream (a store that pushes no summary), the charts are drawn once.
    if (answers("/api/stream")) connect();
    else refreshCharts();
    if (answers("/api/events")) loadEvents(state.generation);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

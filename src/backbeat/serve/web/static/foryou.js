/*
 * The "For you" panel: one listener's recent listens and the recommender's tracks for them.
 *
 * The listener is typed or picked from the listeners of the live table (a datalist kept up
 * to date from app.js's `backbeat.listeners()` on each `backbeat:rows`); the first one seen
 * is shown until another is chosen. The panel asks /api/users/{id}/recommendations and /api/users/{id}/listens,
 * again after each pushed batch (the `backbeat:update` event) at most once every
 * `backbeat.refreshMs`, and drops answers for a listener no longer chosen. Hidden, and never
 * asked, when /api/capabilities does not list the recommendations route (app.js hides
 * data-route panels). Tests read `window.backbeat.forYou` ({user, picks, listens, refreshes}).
 * Next: app.js (helpers, the stream), ../index.html (#foryou), src/backbeat/serve/routes/
 * recommend.py (the API).
 */
"use strict";

(() => {
  const PICKS = 10;
  const LISTENS = 10;
  const USER = /^-?[0-9]{1,18}$/;
  const RECOMMENDATIONS = "/api/users/{user_id}/recommendations";
  const LISTENED = "/api/users/{user_id}/listens";
  const MODEL = "/api/recommend/model";
  const REASONS = {
    "similar listeners": "listeners",
    "similar sound": "sound",
    "popular in your genres": "genres",
    "like what you play now": "now",
    popular: "popular",
  };
  const backbeat = window.backbeat;
  const $ = (sel) => document.querySelector(sel);
  const view = (backbeat.forYou = { user: null, picks: 0, listens: 0, refreshes: 0 });
  const state = { timer: null, last: 0, busy: false, again: false, chosen: false, ready: false };

  function pickRow(item, max) {
    const { el } = backbeat;
    const slug = REASONS[item.reason] || "other";
    return el("li", { data: { track: item.track, reason: item.reason } },
      el("span", { class: "rank", text: String(item.rank) }),
      el("span", { class: "what" },
        el("span", { class: "song", text: item.song, title: item.song }),
        el("span", { class: "artist", text: item.genre ? `${item.artist} · ${item.genre}` : item.artist })),
      el("span", { class: `reason r-${slug}`, text: item.reason }),
      el("span", { class: "score", title: `score ${item.score.toFixed(3)}` },
        el("span", { style: `width:${max > 0 ? Math.max(4, (100 * item.score) / max).toFixed(0) : 0}%` })));
  }

  function listenRow(item) {
    const { el, fmtPct, utcTime } = backbeat;
    return el("li", {},
      el("span", { class: "when mono", text: utcTime(item.ts), title: item.ts }),
      el("span", { class: "what" },
        el("span", { class: "song", text: item.song, title: item.song }),
        el("span", { class: "artist", text: item.artist })),
      el("span", { class: "how mono", text: item.listen_pct == null ? "" : fmtPct(item.listen_pct, 0) }),
      item.skipped ? el("span", { class: "badge skip", text: "skip" }) : el("span"));
  }

  function showPicks(body) {
    const max = Math.max(0, ...body.items.map((i) => i.score));
    $("#foryou-picks").replaceChildren(...body.items.map((i) => pickRow(i, max)));
    $("#foryou-picks-empty").hidden = body.items.length > 0;
    $("#foryou-picks-empty").textContent = "Nothing to recommend to this listener yet.";
    $("#foryou-model").textContent = body.model
      ? `model v${body.model.version} · through batch ${body.model.through_batch}` : "no model answer";
    view.picks = body.items.length;
  }

  function showListens(body) {
    $("#foryou-listens").replaceChildren(...body.items.map(listenRow));
    $("#foryou-listens-empty").hidden = body.items.length > 0;
    $("#foryou-listens-empty").textContent = "No listens yet.";
    view.listens = body.items.length;
  }

  function say(node, err) {
    node.hidden = false;
    node.textContent = String(err.message || err).replace(/^[^:]*: /, "");
  }

  async function load() {
    const user = view.user;
    if (user == null) return;
    if (state.busy) {
      state.again = true;
      return;
    }
    state.busy = true;
    state.last = Date.now();
    const path = (route) => route.replace("{user_id}", encodeURIComponent(user));
    if (!state.ready) {  // ask for recommendations only once a model exists (no 503s)
      state.ready = await backbeat.api(MODEL).then((body) => body.ready === true, () => false);
    }
    const jobs = [];
    if (state.ready) {
      jobs.push(backbeat.api(path(RECOMMENDATIONS), { limit: PICKS }).then(
        (body) => user === view.user && showPicks(body),
        (err) => user === view.user && (showPicks({ items: [], model: null }), say($("#foryou-picks-empty"), err))));
    } else if (user === view.user) {
      showPicks({ items: [], model: null });
      $("#foryou-picks-empty").textContent = "No model yet: one is being trained (backbeat recommend train).";
    }
    if (backbeat.answers(LISTENED)) {
      jobs.push(backbeat.api(path(LISTENED), { limit: LISTENS }).then(
        (body) => user === view.user && showListens(body),
        (err) => user === view.user && (showListens({ items: [] }), say($("#foryou-listens-empty"), err))));
    }
    await Promise.allSettled(jobs);
    view.refreshes += 1;
    state.busy = false;
    if (state.again) {
      state.again = false;
      load();
    }
  }

  function later() {
    if (state.timer !== null || document.hidden || view.user == null) return;
    const wait = Math.max(0, state.last + backbeat.refreshMs - Date.now());
    state.timer = window.setTimeout(() => {
      state.timer = null;
      load();
    }, wait);
  }

  function choose(value, byHand) {
    const text = String(value).trim();
    if (!USER.test(text)) return;
    state.chosen = state.chosen || byHand;
    $("#foryou-user").value = text;
    if (Number(text) === view.user) return;
    view.user = Number(text);
    view.picks = 0;
    view.listens = 0;
    $("#foryou-picks").replaceChildren();
    $("#foryou-listens").replaceChildren();
    load();
  }

  function seen() {
    const list = $("#foryou-users");
    const ids = backbeat.listeners().slice(0, 50);
    list.replaceChildren(...ids.map((id) => backbeat.el("option", { value: String(id) })));
    if (!state.chosen && view.user == null && ids.length) choose(ids[0], false);
  }

  async function start() {
    await backbeat.ready;
    if (!backbeat.answers(RECOMMENDATIONS)) return;
    const form = $("#foryou-form");
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      choose(form.elements.user.value, true);
    });
    form.elements.user.addEventListener("change", () => choose(form.elements.user.value, true));
    form.elements.user.addEventListener("focus", seen);
    document.addEventListener("backbeat:rows", seen);
    document.addEventListener("backbeat:update", later);
    seen();
  }

  start();
})();

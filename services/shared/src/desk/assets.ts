/**
 * The Desk's two static assets, served by the service itself under /desk/ (no CDN, no external
 * fonts: the Desk must work on a closed network). They are small enough to keep as text here;
 * the browser caches them, they hold nothing personal.
 *
 * The script only makes a page live: it refreshes the element marked `data-live` from the same
 * URL when the Desk's event stream (named in the body's `data-events`) says something changed,
 * and every 30 s for the times left; without the stream (refused, or no EventSource), about once
 * a second; a stream cut off is reopened. A change told while the tab is hidden, or while a
 * refresh is under way, is fetched when the tab is shown or that refresh is done. It keeps the
 * keyboard focus where it was. Every page works without it.
 */

export const DESK_SCRIPT = `"use strict";
(function () {
  var live = document.querySelector("[data-live]");
  if (!live) return;
  var busy = false;
  // Told of a change while hidden or while a refresh was under way: refresh once more, when
  // shown or when that refresh is done (that refresh may have been read before the change).
  var pending = false;
  function refresh() {
    if (busy || document.hidden) { pending = true; return; }
    pending = false;
    busy = true;
    fetch(location.pathname, { headers: { "x-desk-live": "1" }, cache: "no-store", credentials: "same-origin", redirect: "manual" })
      .then(function (res) { return res.ok ? res.text() : ""; })
      .then(function (html) {
        if (html === "") return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
        if (!next || next.innerHTML === live.innerHTML) return;
        var active = document.activeElement;
        if (active && live.contains(active) && active.matches("input, select, textarea")) return;
        var key = active && live.contains(active) ? active.getAttribute("href") || active.id : null;
        live.replaceChildren.apply(live, Array.prototype.map.call(next.childNodes, function (n) { return document.importNode(n, true); }));
        if (key) {
          var again = live.querySelector('[href="' + CSS.escape(key) + '"]') || document.getElementById(key);
          if (again) again.focus();
        }
      })
      .catch(function () {})
      .then(function () { busy = false; if (pending) refresh(); });
  }
  document.addEventListener("visibilitychange", function () { if (pending) refresh(); });
  function poll(ms) { setInterval(refresh, ms); }
  var events = document.body.getAttribute("data-events");
  if (events && "EventSource" in window) {
    var source = new EventSource(events);
    source.onopen = refresh;
    source.onmessage = refresh;
    // A stream cut off is reopened by the browser (and the page refreshes when it opens); one
    // refused (signed out, past the limits) is closed for good, and the page polls instead.
    source.onerror = function () { if (source.readyState === EventSource.CLOSED) poll(1000); };
    // Times left and deadlines move with the clock, not with events.
    poll(30000);
  } else poll(1000);
})();
`;

export const DESK_STYLE = `:root { color-scheme: light; --ink: #1b1b1b; --muted: #4a4a4a; --line: #8a8a8a; --accent: #0b4f8a; --bad: #a4000f; --ok: #1d6b2a; --bg: #ffffff; --panel: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible, main:focus-visible { outline: 3px solid #e0a000; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem; }
.skip:focus { left: .5rem; }
header { background: var(--accent); color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
header a, header button { color: #fff; }
header .org { font-weight: 700; }
header nav ul { list-style: none; display: flex; gap: 1rem; margin: 0; padding: 0; }
header form { margin: 0; }
header button { background: transparent; border: 1px solid #fff; border-radius: 4px; padding: .2rem .6rem; font: inherit; cursor: pointer; }
main { padding: 1rem; max-width: 72rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
.overdue, .error, .problem { color: var(--bad); font-weight: 600; }
.notice { border-left: 4px solid var(--ok); padding: .4rem .8rem; background: var(--panel); }
.alert { border-left: 4px solid var(--bad); padding: .4rem .8rem; background: #fff3f3; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
form.act { display: inline-block; margin: .5rem 1rem .5rem 0; padding: .5rem; border: 1px solid var(--line); border-radius: 4px; vertical-align: top; }
label { display: block; font-weight: 600; margin-top: .6rem; }
input, select, textarea { font: inherit; padding: .3rem; border: 1px solid var(--muted); border-radius: 3px; max-width: 100%; }
input[type=checkbox] { width: 1.2rem; height: 1.2rem; }
label.inline { display: flex; gap: .5rem; align-items: center; }
button.primary, button.secondary { font: inherit; margin-top: .6rem; padding: .4rem 1rem; border-radius: 4px; cursor: pointer; }
button.primary { background: var(--accent); color: #fff; border: 1px solid var(--accent); }
button.secondary { background: #fff; color: var(--accent); border: 1px solid var(--accent); }
.hint { color: var(--muted); font-size: .95rem; margin: .1rem 0; }
ol.timeline li { margin: .2rem 0; }
`;

// sessionguard timeout.js: warns before a session times out, lets the person
// stay signed in, keeps every tab in step, and saves marked forms so nothing
// typed is lost. Include it with <script src="/auth/timeout.js" defer>.
//
// The server is the truth: deadlines come from GET /auth/status as durations
// and are kept on the monotonic clock (performance.now()), so a wrong
// computer clock changes nothing; before acting on a local deadline the
// script asks the server again. Only real user input and "Stay signed in"
// count as activity; every other request it makes is passive.
(() => {
  'use strict';
  const me = document.currentScript;
  const cfg = (me && me.dataset) || {};
  const STATUS = cfg.statusUrl || '/auth/status';
  const EXTEND = cfg.extendUrl || '/auth/extend';
  const LOGOUT = cfg.logoutUrl || '/auth/logout';
  const LOGIN = cfg.loginUrl || '/auth/login';
  const DRAFTS = cfg.draftsUrl ?? '/auth/drafts'; // "" turns drafts off
  const FINAL = 60e3; // the second notice before the absolute end
  const LATE = 5e3; // the last draft save before the end
  const PRESERVE = 'form[data-sessionguard-preserve][id]';

  const now = () => performance.now();
  let idleEnd = Infinity, absEnd = Infinity; // performance.now() ms
  let warnMs = 120e3, absWarnMs = 300e3, touchMs = 60e3;
  let who = null; // the signed-in user: a different one means this page is stale
  let timer = 0, inflight = null, lastCheck = -Infinity, failures = 0;
  let lastReport = now(), reportTimer = 0, unreported = false, lastPos = null;
  let dlg = null; // the open dialog: {kind, d, count, live, primary, back, slot}
  let absShown = 0; // absolute notices shown: 1 early, 2 final
  let lateSaved = false, ending = false, quiet = false, hint = '';
  const saved = {}, initial = {}; // form id -> fields JSON

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    e.className = 'sessionguard-' + cls;
    if (text) e.textContent = text;
    return e;
  };
  const send = (method, url, passive, body, keepalive) => fetch(url, {
    method, body: body && JSON.stringify(body), keepalive,
    credentials: 'same-origin', cache: 'no-store', redirect: 'manual',
    headers: Object.assign({ Accept: 'application/json' },
      passive && { 'Session-Activity': 'passive' }, body && { 'Content-Type': 'application/json' }),
  });

  // Tabs of one site share one session: what one learns, all learn.
  let bc = null;
  try { bc = new BroadcastChannel('sessionguard'); bc.onmessage = (e) => hear(e.data); } catch (e) { /* storage below */ }
  const post = (m) => {
    if (bc) return bc.postMessage(m);
    try { localStorage.setItem('sessionguard', JSON.stringify(m)); localStorage.removeItem('sessionguard'); } catch (e) { /* private mode */ }
  };
  if (!bc) addEventListener('storage', (e) => { if (e.key === 'sessionguard' && e.newValue) hear(JSON.parse(e.newValue)); });

  function hear(m) {
    if (!m || ending) return;
    if ((m.t === 'extended' || m.t === 'activity') && m.s) { lastReport = now(); accept(m.s, now()); }
    else if (m.t === 'dismissed' && dlg && dlg.kind === 'absolute') close();
    else if (m.t === 'signed-out' || m.t === 'expired') confirmEnd(m.r, 0);
  }

  // Another tab saw the session end; the server confirms it (a sign-out may
  // still be on its way there), so a tab never acts on hearsay alone.
  async function confirmEnd(reason, tries) {
    hint = reason; // the cookie may be gone, and the server's reason with it
    quiet = true;
    const j = await check();
    quiet = false;
    if (j && tries < 4) setTimeout(() => confirmEnd(reason, tries + 1), 500);
    else if (j) hint = ''; // it lives on: the other tab was wrong or signed in again
    else if (j === undefined && !ending) finish(reason);
  }

  // sync calls the server and returns its status: the JSON while the session
  // lives, null when it has ended (and the page is leaving), undefined when
  // the server could not be asked.
  async function sync(method, url, passive) {
    const t = now();
    let r, j;
    try { r = await send(method, url, passive); j = await r.json(); } catch (e) { j = {}; }
    if (r && r.status === 401) {
      const over = Math.min(idleEnd, absEnd) <= now();
      finish(j.reason || hint || (over ? (absEnd <= idleEnd ? 'absolute' : 'idle') : ''));
      return null;
    }
    if (r && r.ok && j.authenticated) { failures = 0; return accept(j, t); }
    failures++;
    return undefined;
  }
  const recheck = () => check().then((j) => { if (j === undefined && !ending) timer = setTimeout(tick, 2e3); });
  function check() {
    lastCheck = now();
    return inflight || (inflight = sync('GET', STATUS, true).finally(() => { inflight = null; }));
  }

  // accept takes a status measured at t (when its request left).
  function accept(j, t) {
    if (ending) return null;
    if (who !== null && j.user !== who) { quiet = true; finish(''); return null; }
    who = j.user;
    const end = Math.min(idleEnd, absEnd);
    idleEnd = t + j.idle_remaining_s * 1e3;
    absEnd = t + j.absolute_remaining_s * 1e3;
    if (j.warn_before_s >= 0) warnMs = j.warn_before_s * 1e3;
    if (j.absolute_warn_before_s >= 0) absWarnMs = j.absolute_warn_before_s * 1e3;
    if (j.touch_interval_s >= 0) touchMs = Math.max(j.touch_interval_s * 1e3, 1e3);
    if (Math.min(idleEnd, absEnd) > end + 1e3) lateSaved = false;
    if (reportTimer) { clearTimeout(reportTimer); reportTimer = setTimeout(report, Math.max(lastReport + touchMs - now(), 0)); }
    tick(true);
    return j;
  }

  function finish(reason) {
    if (ending) return;
    ending = true;
    clearTimeout(timer);
    if (!quiet) post({ t: 'expired', r: reason });
    const q = new URLSearchParams();
    if (reason) q.set('reason', reason);
    q.set('next', location.pathname + location.search);
    location.replace(LOGIN + '?' + q);
  }

  // tick compares the deadlines with the monotonic clock and does what is
  // due. fresh says the deadlines just came from the server.
  function tick(fresh) {
    clearTimeout(timer);
    if (ending || idleEnd === Infinity) return;
    const t = now(), idleLeft = idleEnd - t, absLeft = absEnd - t, left = Math.min(idleLeft, absLeft);
    const absolute = absEnd <= idleEnd;
    if (left <= 0) {
      // Never end on the local clock alone: another tab may have extended.
      // Only a server that stays unreachable well past the end is not asked.
      if (fresh) timer = setTimeout(recheck, 250);
      else if (failures > 2 && left < -10e3) finish(absolute ? 'absolute' : 'idle');
      else recheck();
      return;
    }
    if (left <= LATE && !lateSaved) { lateSaved = true; saveDrafts(); }
    if (!absolute && idleLeft <= warnMs) {
      if (!dlg || dlg.kind !== 'idle') {
        if (!fresh) { recheck(); return; } // warn only if the server agrees
        saveDrafts();
        open('idle');
      }
    } else {
      if (dlg && dlg.kind === 'idle') {
        close();
        dropDrafts(); // extended: the page is alive and holds the text
      }
      // The absolute end cannot move: say so early, and once more near it.
      const level = absLeft <= FINAL ? 2 : absLeft <= absWarnMs ? 1 : 0;
      if (level > absShown) { absShown = level; saveDrafts(); open('absolute'); }
    }
    if (dlg) render();
    const due = [left, left - LATE, idleLeft - warnMs, absLeft - absWarnMs, absLeft - FINAL, 36e5]
      .filter((d) => d > 0);
    if (dlg) due.push((left % 1e3) || 1e3); // the countdown's next second
    timer = setTimeout(tick, Math.max(Math.min(...due), 20));
  }

  // Activity: real input only, reported at most once per touch interval.
  // Scroll events do not count: scripts and layout changes scroll too, and
  // a person scrolls with a wheel, a key, a pointer or a touch anyway.
  function input(e) {
    if (!e.isTrusted || ending || (dlg && dlg.kind === 'idle')) return;
    if (e.type === 'pointermove') {
      // Browsers fire mousemove without movement; only a new position counts.
      const p = e.screenX + ',' + e.screenY, first = lastPos === null;
      if (p === lastPos) return;
      lastPos = p;
      if (first) return;
    }
    unreported = true;
    if (!reportTimer) reportTimer = setTimeout(report, Math.max(lastReport + touchMs - now(), 0));
  }
  async function report() {
    reportTimer = 0;
    if (!unreported || ending || (dlg && dlg.kind === 'idle')) return;
    if (now() < lastReport + touchMs) { reportTimer = setTimeout(report, lastReport + touchMs - now()); return; }
    unreported = false;
    lastReport = now();
    const j = await sync('POST', EXTEND, false);
    if (j) post({ t: 'activity', s: j });
  }
  for (const type of ['keydown', 'pointerdown', 'pointermove', 'touchstart', 'wheel', 'input']) {
    document.addEventListener(type, input, { capture: true, passive: true });
  }

  async function stay() {
    const j = await sync('POST', EXTEND, false);
    if (j) post({ t: 'extended', s: j });
  }
  function dismiss() {
    close();
    post({ t: 'dismissed' });
  }
  async function signOut() {
    ending = true;
    clearTimeout(timer);
    try { await send('POST', LOGOUT, false); } catch (e) { /* the login page tells */ }
    post({ t: 'signed-out', r: 'logout' });
    quiet = true;
    ending = false;
    finish('logout');
  }

  const words = (s) => {
    const m = Math.floor(s / 60), r = s % 60;
    const unit = (n, w) => n + ' ' + w + (n === 1 ? '' : 's');
    return m ? unit(m, 'minute') + (r ? ' ' + unit(r, 'second') : '') : unit(r, 'second');
  };

  function open(kind) {
    if (dlg && dlg.kind === kind) return;
    close();
    const idle = kind === 'idle';
    const d = el('dialog', 'dialog');
    d.setAttribute('role', 'alertdialog');
    d.setAttribute('aria-modal', 'true');
    d.setAttribute('aria-labelledby', 'sessionguard-title');
    d.setAttribute('aria-describedby', 'sessionguard-text');
    const h = el('h2', 'title', idle ? 'You will be signed out soon' : 'Your session is about to end');
    h.id = 'sessionguard-title';
    const p = el('p', 'text', idle ? 'You have not been active for a while. For your security, you will be signed out in '
      : 'Your session reaches its time limit in ');
    p.id = 'sessionguard-text';
    const count = el('strong', 'countdown');
    p.append(count, idle ? '.' : '. It cannot be extended: save your work now, then sign in again to go on.');
    if (!idle) {
      const at = new Date(Date.now() + absEnd - now()); // for display only
      p.append(' It ends at ' + at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + '.');
    }
    const live = el('p', 'sr');
    live.setAttribute('aria-live', 'polite');
    live.setAttribute('aria-atomic', 'true');
    const bar = el('p', 'actions');
    const primary = el('button', 'primary', idle ? 'Stay signed in' : 'Continue working');
    const secondary = el('button', 'secondary', 'Sign out');
    primary.type = secondary.type = 'button';
    primary.onclick = idle ? stay : dismiss;
    secondary.onclick = signOut;
    bar.append(primary, secondary);
    d.append(h, p, live, bar);
    d.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); primary.click(); }
      if (e.key === 'Tab') { // keep focus in the dialog
        e.preventDefault();
        (document.activeElement === primary ? secondary : primary).focus();
      }
    });
    d.addEventListener('cancel', (e) => { e.preventDefault(); primary.click(); });
    dlg = { kind, d, count, live, primary, back: document.activeElement, slot: 0 };
    document.body.append(d);
    d.showModal();
    primary.focus();
  }
  function close() {
    if (!dlg) return;
    const { d, back } = dlg;
    dlg = null;
    d.close();
    d.remove();
    if (back && back.focus && document.contains(back)) back.focus();
  }
  function render() {
    const left = Math.max(0, (dlg.kind === 'idle' ? idleEnd : absEnd) - now());
    const s = Math.ceil(left / 1e3);
    dlg.count.textContent = words(s);
    // Screen readers hear the time every 30 seconds, every 5 in the last 20,
    // not every second: a per-second announcement drowns the buttons.
    const slot = s > 20 ? Math.ceil(s / 30) : 100 + Math.ceil(s / 5);
    if (dlg.slot && slot !== dlg.slot) {
      dlg.live.setAttribute('aria-live', s > 20 ? 'polite' : 'assertive');
      dlg.live.textContent = (dlg.kind === 'idle' ? 'You will be signed out in ' : 'Your session ends in ') + words(s) + '.';
    }
    dlg.slot = slot;
  }

  // Drafts: marked forms go to the server shortly before the end, never to
  // browser storage (the unattended device is the threat), and come back
  // after the same user signs in again.
  const forms = () => Array.from(document.querySelectorAll(PRESERVE));
  // What the page says of a field. The server drops secret fields by these
  // marks and by name, whatever it is sent; this script sends none it knows.
  const marks = (e) => [e.type === 'password' ? 'password' : '', e.getAttribute('autocomplete') || '',
    e.closest('[data-sessionguard-sensitive]') ? 'sensitive' : ''].join(' ').trim();
  const keep = (e) => e.name && !/^(password|file|hidden|submit|button|reset|image|select-multiple)$/.test(e.type) &&
    !/csrf|xsrf|token|secret|passw/i.test(e.name) && !/one-time-code|(^|\s)cc-|sensitive/i.test(marks(e));
  const markSet = (f) => {
    const out = {};
    for (const e of f.elements) if (keep(e) && marks(e)) out[e.name] = marks(e);
    return out;
  };
  const fields = (f) => {
    const out = {};
    for (const e of f.elements) {
      if (!keep(e)) continue;
      if (e.type === 'radio' || e.type === 'checkbox') { if (e.checked) out[e.name] = e.value; } else out[e.name] = e.value;
    }
    return out;
  };
  const draftURL = (form) => DRAFTS + '?path=' + encodeURIComponent(location.pathname) +
    (form ? '&form=' + encodeURIComponent(form) : '');
  function saveDrafts() {
    if (!DRAFTS) return;
    for (const f of forms()) {
      const fs = fields(f), s = JSON.stringify(fs);
      if (s === (saved[f.id] || initial[f.id])) continue; // nothing unsaved
      saved[f.id] = s;
      send('POST', DRAFTS, true, { form: f.id, path: location.pathname, fields: fs, marks: markSet(f) }).catch(() => { delete saved[f.id]; });
    }
  }
  function dropDrafts(only) {
    for (const id of Object.keys(saved)) {
      if (only && id !== only) continue;
      delete saved[id];
      send('DELETE', draftURL(id), true, undefined, true).catch(() => {});
    }
  }
  async function restore() {
    const fs = forms();
    if (!DRAFTS || !fs.length) return;
    let list;
    try {
      const r = await send('GET', draftURL(), true);
      if (!r.ok) return;
      list = (await r.json()).drafts || [];
    } catch (e) { return; }
    for (const d of list) {
      const f = fs.find((x) => x.id === d.form);
      if (!f) continue;
      for (const e of f.elements) {
        if (!keep(e)) continue;
        if (e.type === 'radio' || e.type === 'checkbox') e.checked = d.fields[e.name] === e.value;
        else if (Object.hasOwn(d.fields, e.name)) e.value = d.fields[e.name];
      }
      const note = el('p', 'restored');
      note.setAttribute('role', 'status');
      f.before(note);
      // Filled after insertion, so that screen readers announce it.
      setTimeout(() => { note.textContent = 'Your unsaved text was restored. Save it to keep it.'; }, 100);
      send('DELETE', draftURL(d.form), true).catch(() => {});
    }
  }

  document.addEventListener('submit', (e) => {
    const f = e.target;
    const path = (u) => new URL(u, location.href).pathname;
    if (path(f.action) === path(LOGOUT)) {
      ending = true; // this page is leaving; the others follow
      clearTimeout(timer);
      post({ t: 'signed-out', r: 'logout' });
    } else if (f.matches(PRESERVE)) dropDrafts(f.id);
  }, true);

  // A background tab's timers are throttled and a sleeping computer's
  // monotonic clock may stop: ask the server whenever the page comes back.
  const wake = () => { if (!document.hidden && !ending && now() - lastCheck > 1e3) check(); };
  document.addEventListener('visibilitychange', wake);
  addEventListener('focus', wake);
  addEventListener('pageshow', (e) => { if (e.persisted) { ending = false; check(); } });

  if (me && me.src && !document.querySelector('link[data-sessionguard]')) {
    const l = document.createElement('link');
    l.rel = 'stylesheet';
    l.href = me.src.replace(/\.js(\?.*)?$/, '.css');
    l.dataset.sessionguard = '';
    document.head.append(l);
  }
  for (const f of forms()) initial[f.id] = JSON.stringify(fields(f));
  const start = () => check().then((j) => {
    if (j) restore();
    else if (j === undefined) setTimeout(start, 5e3);
  });
  start();
})();

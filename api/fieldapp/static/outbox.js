// The outbox: every patrol, report and photo made on the phone waits here until the service has
// acknowledged it. Each step of an item carries an id made on the device as its Idempotency-Key,
// so a retry after a lost answer gets the object already made instead of a second one. A refusal
// (4xx) keeps the item with the service's reason; nothing leaves the outbox unless the member
// deletes it. Shared by the page and the service worker (Background Sync).
(function (root) {
  "use strict";
  var MP = root.MP = root.MP || {};
  var store = MP.store;
  var channel = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel("mp-outbox") : null;
  var MAX_BACKOFF_MS = 5 * 60 * 1000;

  function changed() { if (channel) channel.postMessage({ type: "outbox" }); if (MP.onOutbox) MP.onOutbox(); }

  // waiting → sending → sent; or refused (kept, with the reason, until edited or deleted).
  function backoff(attempts, retryAfterS) {
    if (retryAfterS) return Math.min(retryAfterS * 1000, MAX_BACKOFF_MS);
    var base = Math.min(5000 * Math.pow(2, attempts), MAX_BACKOFF_MS);
    return base / 2 + Math.random() * base / 2;  // jitter: phones at one station do not retry in step
  }

  function AuthExpired() { this.name = "AuthExpired"; }
  function Transient(message, retryAfter) { this.name = "Transient"; this.message = message; this.retryAfter = retryAfter; }
  function Refused(status, problem) {
    this.name = "Refused"; this.status = status; this.problem = problem;
  }

  async function call(method, path, token, options) {
    var headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    if (options.key) headers["Idempotency-Key"] = options.key;
    if (options.json) headers["Content-Type"] = "application/json";
    var response;
    try {
      response = await fetch(path, {
        method: method, headers: headers, cache: "no-store",
        body: options.json ? JSON.stringify(options.json) : options.form,
      });
    } catch (e) {
      throw new Transient("无网络 no network");
    }
    var body = null, readable = true;
    try { body = await response.json(); } catch (e) { readable = false; }
    // An answer cut off on its way back: the service may have made the object, so ask again with
    // the same key and get that object.
    if (response.ok && !readable) throw new Transient("回复中断 the answer was lost");
    if (response.ok) return body;
    if (response.status === 401) throw new AuthExpired();
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      var after = parseInt(response.headers.get("Retry-After") || "", 10);
      throw new Transient("服务器忙 the service is busy (" + response.status + ")", isFinite(after) ? after : null);
    }
    throw new Refused(response.status, body || { title: response.statusText });
  }

  // One step at a time, each saved as soon as it is acknowledged: a crash between steps resumes
  // at the next one.
  async function sendPatrol(item, token) {
    var form = new FormData();
    form.append("file", item.file, item.filename);
    form.append("transport", item.fields.transport);
    form.append("datum", item.fields.datum || "wgs84");
    (item.fields.members || []).forEach(function (m) { form.append("members", m); });
    if (item.fields.notes) form.append("notes", item.fields.notes);
    var body = await call("POST", "/api/v1/patrols", token, { form: form, key: item.key });
    item.result = { id: body.id, created: body.created };
  }

  async function sendIncident(item, token, items) {
    if (!item.result) {
      var body = Object.assign({}, item.body);
      var patrol = await patrolOf(item, items);
      if (patrol && patrol.result) body.patrol_id = patrol.result.id;
      var made = await call("POST", "/api/v1/incidents", token, { json: body, key: item.key });
      item.result = { id: made.id, grid: made.grid, status: made.status, linked: body.patrol_id || null };
      await store.putItem(item);
      changed();
    }
    await sendPhotos(item, item.result.id, token);
    await linkPatrol(item, token, items);
  }

  async function sendPhotos(item, incidentId, token) {
    for (var i = 0; i < item.photos.length; i++) {
      var photo = item.photos[i];
      if (photo.sent) continue;
      var form = new FormData();
      form.append("file", photo.blob, photo.name);
      var made = await call("POST", "/api/v1/incidents/" + incidentId + "/photos", token, {
        form: form, key: item.id + ".photo." + photo.id,
      });
      photo.sent = made.id;
      photo.blob = null;  // the service has it: free the phone's storage
      await store.putItem(item);
      changed();
    }
  }

  // The queued patrol a report was found on: "gone" when its recording was deleted instead.
  async function patrolOf(item, items) {
    var found = item.foundOn;
    if (!found) return null;
    if (found.item) return items[found.item] || "gone";
    for (var id in items) {
      if (items[id].kind === "patrol" && items[id].summary && items[id].summary.recording === found.recording) return items[id];
    }
    var recording = (await store.recordings()).some(function (r) { return r.id === found.recording; });
    return recording ? null : "gone";  // null: still being recorded
  }

  // Found on the patrol being recorded: the report went out at once (its time limit runs), and is
  // linked to the patrol once that patrol has been uploaded.
  async function linkPatrol(item, token, items) {
    item.waitingFor = null;
    if (!item.foundOn || item.result.linked) return;
    var patrol = await patrolOf(item, items);
    if (patrol === "gone") { item.foundOn = null; return; }
    if (!patrol || !patrol.result) { item.waitingFor = "patrol"; return; }
    var done = await call("POST", "/api/v1/incidents/" + item.result.id + "/patrol", token, {
      json: { patrol_id: patrol.result.id },
    });
    item.result.linked = done.patrol_id;
  }

  async function sendPhotoItem(item, token) {
    await sendPhotos(item, item.incidentId, token);
  }

  function complete(item) {
    if (item.kind === "incident") return !!(item.result && item.photos.every(function (p) { return p.sent; }));
    if (item.kind === "photo") return item.photos.every(function (p) { return p.sent; });
    return !!item.result;
  }

  async function flushUnlocked(options) {
    var session = await store.get("session");
    if (!session || !session.token) return { signIn: true };
    var list = await store.items(), byId = {}, now = Date.now();
    list.forEach(function (i) { byId[i.id] = i; });
    var tally = { sent: 0, patrolSent: false };
    var stop = await sendEach(list, session, byId, tally, function (item) {
      if (item.user !== session.username || item.state === "refused") return false;
      if (item.state === "sent" && !item.linkPending) return false;
      return options.force || !item.nextTry || item.nextTry <= now;
    });
    // A patrol went out: the reports found on it (sent before it, at once) are linked now.
    if (!stop && tally.patrolSent) {
      stop = await sendEach(list, session, byId, tally, function (item) { return item.linkPending && item.user === session.username; });
    }
    return Object.assign({ sent: tally.sent }, stop || {});
  }

  // Sends the wanted items in order; stops early (and says why) when the rest would fail too.
  async function sendEach(list, session, byId, tally, wanted) {
    for (var n = 0; n < list.length; n++) {
      if (!wanted(list[n])) continue;
      var stop = await sendOne(list[n], session, byId, tally);
      if (stop) return stop;
    }
    return null;
  }

  async function sendOne(item, session, byId, tally) {
    var stop = null;
    if (item.state !== "sent") item.state = "sending";
    await store.putItem(item);
    changed();
    try {
      if (item.kind === "patrol") await sendPatrol(item, session.token);
      else if (item.kind === "incident") await sendIncident(item, session.token, byId);
      else await sendPhotoItem(item, session.token);
      if (complete(item) && !item.sentAt) {
        item.sentAt = Date.now();
        tally.sent++;
        tally.patrolSent = tally.patrolSent || item.kind === "patrol";
      }
      item.state = complete(item) ? "sent" : "waiting";
      // Sent, but the patrol it was found on is still being recorded: linked on a later pass.
      item.linkPending = item.waitingFor === "patrol";
      item.error = null;
      item.attempts = 0;
      item.nextTry = item.state === "waiting" || item.linkPending ? Date.now() + 30000 : null;
    } catch (e) {
      var sentAlready = item.state === "sent";  // only linking its patrol failed
      if (e instanceof AuthExpired) {
        if (!sentAlready) {
          item.state = "waiting";
          item.error = { title: "登录已过期 Signed out", detail: "请重新登录后自动发送 Sign in again; it is then sent." };
        }
        session.expired = true;
        await store.put("session", session);
        stop = { signIn: true };
      } else if (e instanceof Transient) {
        if (!sentAlready) {
          item.state = "waiting";
          item.error = { title: e.message, detail: "将自动重试 will be retried", transient: true };
        }
        item.attempts = (item.attempts || 0) + 1;
        item.nextTry = Date.now() + backoff(item.attempts, e.retryAfter);
        stop = { offline: true };  // the rest would fail the same way
      } else if (e instanceof Refused) {
        if (sentAlready) {
          item.linkPending = false;
          item.error = { title: "未能关联巡护 Could not link its patrol", detail: describe(e.problem) };
        } else {
          item.state = "refused";
          item.error = { status: e.status, title: (e.problem && e.problem.title) || "被拒绝 Refused", detail: describe(e.problem) };
        }
      } else {
        if (!sentAlready) item.state = "waiting";
        item.attempts = (item.attempts || 0) + 1;
        item.nextTry = Date.now() + backoff(item.attempts);
        item.error = { title: "出错 Error", detail: String((e && e.message) || e), transient: true };
      }
    }
    await store.putItem(item);
    changed();
    return stop;
  }

  // The service's problem+json, as one line a member can act on.
  function describe(problem) {
    if (!problem) return "";
    var parts = [problem.detail || problem.title || ""];
    (problem.errors || problem.problems || []).slice(0, 3).forEach(function (p) {
      parts.push(typeof p === "string" ? p : (p.message || p.msg || JSON.stringify(p)));
    });
    return parts.filter(Boolean).join("; ");
  }

  // One sender at a time across the page and the service worker.
  function flush(options) {
    options = options || {};
    if (root.navigator && navigator.locks) {
      return navigator.locks.request("mp-outbox", function () { return flushUnlocked(options); });
    }
    return flushUnlocked(options);
  }

  function nextTry(items, username) {
    var times = items.filter(function (i) {
      return i.user === username && (i.state === "waiting" || i.state === "sending" || i.linkPending);
    }).map(function (i) { return i.nextTry || 0; });
    return times.length ? Math.min.apply(null, times) : null;
  }

  MP.outbox = {
    flush: flush, changed: changed, nextTry: nextTry, describe: describe,
    channel: channel,
  };
})(self);

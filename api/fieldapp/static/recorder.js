// Recording a patrol: the browser's geolocation feeds fixes that are committed to IndexedDB one by
// one as they arrive, so a reload, a crash or a closed tab loses nothing already recorded. The
// recording's state lives there too: after a reload it carries on where it was.
(function (root) {
  "use strict";
  var MP = root.MP = root.MP || {};
  var store = MP.store, geo = MP.geo;
  // Fixes less accurate than this are kept on the phone but not used for distance or the upload:
  // a phone indoors or under a mangrove canopy can report positions hundreds of metres off.
  var USABLE_ACCURACY_M = 100;

  function Recorder(onChange) {
    this.onChange = onChange || function () {};
    this.rec = null;        // {id, user, startedAt, state: recording|paused, segment, seq, distance, last, usable}
    this.watch = null;
    this.wakeLock = null;
    this.lastFix = null;    // the latest fix, usable or not (accuracy readout)
    this.error = null;
    var self = this;
    document.addEventListener("visibilitychange", function () {
      // A screen wake lock is released when the page is hidden: ask again when it is back.
      if (document.visibilityState === "visible" && self.rec && self.rec.state === "recording") self.keepAwake();
    });
  }

  // The recording in progress (if any) of this member, as it was before a reload.
  Recorder.prototype.restore = async function (user) {
    var list = (await store.recordings()).filter(function (r) { return r.user === user; });
    this.rec = list.length ? list[0] : null;
    if (this.rec) {
      // The totals were saved every 10 fixes: recount them from the fixes themselves, so that new
      // fixes never take the number of one already stored.
      var fixes = await store.fixes(this.rec.id), rec = this.rec, last = null;
      rec.seq = fixes.length ? fixes[fixes.length - 1].seq : 0;
      rec.total = fixes.length;
      rec.usable = 0;
      rec.distance = 0;
      fixes.forEach(function (f) {
        if (f.acc > USABLE_ACCURACY_M) return;
        if (last && last.segment === f.segment) rec.distance += geo.metres(last, f);
        last = f;
        rec.usable += 1;
      });
      if (rec.state === "recording") {
        // Time while the page was gone counts only up to the last fix stored.
        if (fixes.length) rec.activeMs += Math.max(0, fixes[fixes.length - 1].t - rec.resumedAt);
        rec.segment += 1;
        rec.resumedAt = Date.now();
        rec.last = null;
        await store.putRecording(rec);
        this.listen();
        this.keepAwake();
      }
    }
    this.onChange();
    return this.rec;
  };

  Recorder.prototype.start = async function (user) {
    if (!("geolocation" in navigator)) throw new Error("此浏览器不能定位 This browser cannot give positions.");
    this.rec = {
      id: MP.newId(), user: user, startedAt: Date.now(), state: "recording", segment: 0, seq: 0,
      distance: 0, last: null, usable: 0, total: 0, activeMs: 0, resumedAt: Date.now(),
    };
    await store.putRecording(this.rec);
    this.listen();
    this.keepAwake();
    this.onChange();
  };

  Recorder.prototype.pause = async function () {
    if (!this.rec || this.rec.state !== "recording") return;
    this.stopListening();
    this.rec.activeMs += Date.now() - this.rec.resumedAt;
    this.rec.state = "paused";
    this.rec.last = null;  // no distance across the pause
    await store.putRecording(this.rec);
    this.releaseWake();
    this.onChange();
  };

  Recorder.prototype.resume = async function () {
    if (!this.rec || this.rec.state !== "paused") return;
    this.rec.state = "recording";
    this.rec.segment += 1;
    this.rec.resumedAt = Date.now();
    await store.putRecording(this.rec);
    this.listen();
    this.keepAwake();
    this.onChange();
  };

  Recorder.prototype.elapsedMs = function () {
    if (!this.rec) return 0;
    return this.rec.activeMs + (this.rec.state === "recording" ? Date.now() - this.rec.resumedAt : 0);
  };

  Recorder.prototype.listen = function () {
    var self = this;
    this.stopListening();
    this.watch = navigator.geolocation.watchPosition(
      function (position) { self.fix(position); },
      function (error) {
        self.error = error.code === 1
          ? "未允许定位：请在浏览器设置中允许本站使用位置。Location is not allowed: allow it for this site in the browser's settings."
          : "暂时没有定位 No position yet (" + error.message + ")";
        self.onChange();
      },
      { enableHighAccuracy: true, maximumAge: 0, timeout: 60000 }
    );
  };

  Recorder.prototype.stopListening = function () {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
  };

  Recorder.prototype.fix = async function (position) {
    var rec = this.rec;
    if (!rec || rec.state !== "recording") return;
    var c = position.coords;
    var fix = {
      rec: rec.id, seq: rec.seq + 1, segment: rec.segment, t: position.timestamp || Date.now(),
      lon: c.longitude, lat: c.latitude, acc: c.accuracy, alt: c.altitude, speed: c.speed,
    };
    rec.seq = fix.seq;
    rec.total += 1;
    this.lastFix = fix;
    this.error = null;
    if (fix.acc <= USABLE_ACCURACY_M) {
      if (rec.last) rec.distance += geo.metres(rec.last, fix);
      rec.last = { lon: fix.lon, lat: fix.lat };
      rec.usable += 1;
    }
    try {
      await store.addFix(fix);
      // The running totals are saved every 10 fixes; after a crash they are recomputed from the fixes.
      if (fix.seq % 10 === 0) await store.putRecording(rec);
    } catch (e) {
      this.error = String(e.message || e);
    }
    this.onChange();
  };

  // Stop: the recorded fixes become one queued upload (GPX), in the same transaction that removes
  // the recording. Fails, leaving the recording as it is, when no fix is usable.
  Recorder.prototype.finish = async function (fields) {
    var rec = this.rec;
    this.stopListening();
    if (rec.state === "recording") { rec.activeMs += Date.now() - rec.resumedAt; rec.state = "paused"; }
    await store.putRecording(rec);
    this.releaseWake();
    var fixes = (await store.fixes(rec.id)).filter(function (f) { return f.acc <= USABLE_ACCURACY_M; });
    if (fixes.length < 2) {
      this.onChange();
      throw new Error("这次记录没有可用的定位点（" + fixes.length + " 个精度优于 " + USABLE_ACCURACY_M +
        " 米）。No usable fixes were recorded (fewer than 2 better than " + USABLE_ACCURACY_M +
        " m): go outside, wait for the accuracy to drop, then resume — or delete this recording.");
    }
    var distance = 0;
    for (var i = 1; i < fixes.length; i++) if (fixes[i].segment === fixes[i - 1].segment) distance += geo.metres(fixes[i - 1], fixes[i]);
    var name = "巡护 " + geo.chinaTime(rec.startedAt);
    var text = geo.gpx(name, fixes);
    var item = {
      id: MP.newId(), kind: "patrol", user: rec.user, created: Date.now(), state: "waiting",
      attempts: 0, nextTry: 0, fields: fields,
      file: new Blob([text], { type: "application/gpx+xml" }),
      filename: "patrol-" + geo.chinaTime(rec.startedAt).replace(/[ :]/g, "-") + ".gpx",
      summary: { fixes: fixes.length, distance: distance, startedAt: rec.startedAt, endedAt: fixes[fixes.length - 1].t, recording: rec.id },
    };
    item.key = item.id;
    await store.queueRecording(rec.id, item);
    this.rec = null;
    this.lastFix = null;
    this.onChange();
    return item;
  };

  Recorder.prototype.discard = async function () {
    if (!this.rec) return;
    this.stopListening();
    this.releaseWake();
    await store.dropRecording(this.rec.id);
    this.rec = null;
    this.onChange();
  };

  Recorder.prototype.keepAwake = async function () {
    if (!("wakeLock" in navigator) || this.wakeLock) return;
    try {
      this.wakeLock = await navigator.wakeLock.request("screen");
      var self = this;
      this.wakeLock.addEventListener("release", function () { self.wakeLock = null; self.onChange(); });
    } catch (e) {
      this.wakeLock = null;  // refused (battery saver, hidden page): the page says so
    }
    this.onChange();
  };

  Recorder.prototype.releaseWake = function () {
    if (this.wakeLock) this.wakeLock.release();
    this.wakeLock = null;
  };

  MP.Recorder = Recorder;
  MP.USABLE_ACCURACY_M = USABLE_ACCURACY_M;
})(self);

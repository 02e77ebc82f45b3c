// The field app's page: signing in, the four views (patrol, report, outbox, mine) and keeping the
// member's data on the phone. Storage, geometry, the outbox and the recorder are in their own
// scripts (store.js, geo.js, outbox.js, recorder.js).
(function () {
  "use strict";
  var MP = self.MP, store = MP.store, geo = MP.geo;
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else if (k.indexOf("on") === 0) node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  var STATUS = {
    reported: "已报告 Reported", accepted: "已受理 Accepted", in_progress: "处理中 In progress",
    resolved: "已办结 Resolved", closed: "已关闭 Closed", rejected: "不予受理 Rejected", duplicate: "重复 Duplicate",
  };
  var ACTIONS = {
    reported: "报告 Reported", accept: "受理 Accepted", start: "开始处理 Started", resolve: "办结 Resolved",
    close: "关闭 Closed", reject: "不予受理 Rejected", duplicate: "标为重复 Marked duplicate", reopen: "重新打开 Reopened",
    refer: "移交 Referred", joint: "纳入联合案件 Joint case", link_patrol: "关联巡护 Linked to its patrol",
  };
  var FINISHED = ["closed", "rejected", "duplicate", "resolved"];
  var STATE = { waiting: "等待发送 Waiting", sending: "发送中 Sending", sent: "已发送 Sent", refused: "被拒绝 Refused" };
  var PHOTO_MAX_PX = 1600, PHOTO_QUALITY = 0.8;
  var TILE_CAP_BYTES = 200 * 1024 * 1024, TILE_CAP_COUNT = 20000;

  var categoryLabels = {};  // code → "中文 English"
  var session = null;       // {token, username, expires_at, me, expired}
  var grids = new geo.GridIndex(null);
  var recorder = null;
  var reportPoint = null;   // {lon, lat, source}
  var reportPhotos = [];    // [{id, blob, name, size, url}]
  var editing = null;       // the outbox item being edited, if any
  var map = null, marker = null, gridLayer = null, tileLayer = null;
  var currentView = null;

  // --- messages -----------------------------------------------------------------------------------
  function notice(text, kind) {
    var box = $("notice");
    box.textContent = text;
    box.className = "banner " + (kind || "info") + (text ? "" : " hidden");
    if (text && kind !== "danger") setTimeout(function () { if (box.textContent === text) notice(""); }, 6000);
  }
  function fieldError(name, text) {
    var node = document.querySelector('.field-error[data-for="' + name + '"]');
    if (node) node.textContent = text || "";
  }
  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (n) { n.textContent = ""; });
  }

  // --- network and the service ------------------------------------------------------------------
  function setNet() {
    var online = navigator.onLine;
    var net = $("net");
    net.textContent = online ? "在线 Online" : "离线 Offline";
    net.className = "net " + (online ? "online" : "offline");
  }

  function ApiError(status, problem) { this.status = status; this.problem = problem; this.message = MP.outbox.describe(problem); }

  async function api(path) {
    var response = await fetch(path, { headers: { Authorization: "Bearer " + session.token, Accept: "application/json" }, cache: "no-store" });
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) { await sessionExpired(); throw new ApiError(401, body); }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  async function sessionExpired() {
    if (!session) return;
    session.expired = true;
    await store.put("session", session);
    showExpired();
  }
  function showExpired() {
    var box = $("notice");
    box.className = "banner danger";
    box.textContent = "";
    box.appendChild(document.createTextNode("登录已过期：发件箱里的内容都还在，重新登录后自动发送。Your session has ended: everything queued is kept and sent after you sign in again. "));
    box.appendChild(el("button", { type: "button", text: "重新登录 Sign in", onclick: function () { show("signin"); } }));
  }

  // --- signing in ---------------------------------------------------------------------------------
  async function signIn(event) {
    event.preventDefault();
    var username = $("username").value.trim(), password = $("password").value;
    var out = $("signin-error");
    out.textContent = "";
    if (!username || !password) { out.textContent = "请输入用户名和密码 Enter your username and password."; return; }
    if (!navigator.onLine) { out.textContent = "登录需要网络：请到有信号的地方再试。Signing in needs the network: try again where there is signal."; return; }
    var response;
    try {
      response = await fetch("/api/v1/auth/token", {
        method: "POST", body: new URLSearchParams({ username: username, password: password }), cache: "no-store",
      });
    } catch (e) {
      out.textContent = "连不上服务器，请稍后再试。Cannot reach the service; try again shortly."; return;
    }
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      out.textContent = (response.status === 401 ? "用户名或密码不对。Wrong username or password." :
        response.status === 429 ? "尝试次数太多，请 " + (body && body.retry_after || "") + " 秒后再试。Too many attempts: wait and try again." :
        response.status === 423 ? "账号已锁定，请联系管理员。The account is locked: ask an admin to unlock it." :
        MP.outbox.describe(body) || "登录失败 Sign-in failed (" + response.status + ")");
      return;
    }
    var token = body.access_token, previous = session;
    var me = await (await fetch("/api/v1/auth/me", { headers: { Authorization: "Bearer " + token }, cache: "no-store" })).json();
    session = { token: token, username: me.username, issued_at: new Date().toISOString(), expires_at: body.expires_at, me: me, expired: false };
    await store.put("session", session);
    $("password").value = "";
    if (previous && previous.username !== me.username) {
      grids = new geo.GridIndex(null);
      if (gridLayer) { gridLayer.remove(); gridLayer = null; }
    }
    notice("已登录 Signed in as " + me.display_name, "ok");
    await startSignedIn();
    sendSoon(true);
  }

  async function signOut() {
    var items = (await store.items()).filter(function (i) { return i.user === session.username && i.state !== "sent"; });
    var recording = recorder && recorder.rec;
    if ((items.length || recording) && !confirm("还有 " + items.length + " 项未发送" + (recording ? "，并且正在记录巡护" : "") +
        "。退出后它们留在手机上，重新登录同一账号后再发送。确定退出？\n" + items.length + " items are not sent yet" +
        (recording ? " and a patrol is being recorded" : "") + ". They stay on this phone and are sent when you sign in again. Sign out?")) return;
    if (recording) await recorder.pause();
    try {
      if (navigator.onLine) await fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + session.token } });
    } catch (e) { /* offline: the session ends on the service when it expires */ }
    await store.remove("session");
    session = null;
    show("signin");
  }

  // --- data kept on the phone ---------------------------------------------------------------------
  function key(name) { return name + ":" + session.username; }

  async function loadCached() {
    var cachedGrids = await store.get("grids:" + session.me.side);
    if (cachedGrids) setGrids(cachedGrids.data);
    renderCategories((await store.get("categories") || {}).data || []);
    await renderMine();
    await renderTiles();
  }

  // Past half its life, the token is swapped for a fresh one whenever the phone is online: a
  // member who works offline for days comes back signed in, with the outbox sent.
  async function renewIfOld() {
    var issued = Date.parse(session.issued_at || 0), expires = Date.parse(session.expires_at);
    if (!(expires - Date.now() < (expires - issued) / 2)) return;
    var response = await fetch("/api/v1/auth/renew", { method: "POST", headers: { Authorization: "Bearer " + session.token }, cache: "no-store" });
    if (response.status === 401) { await sessionExpired(); return; }
    if (!response.ok) return;  // try again next time
    var body = await response.json();
    // Under the outbox's lock: a send in progress finishes with the old token first.
    await withOutboxLock(async function () {
      session = Object.assign(await store.get("session"), { token: body.access_token, issued_at: new Date().toISOString(), expires_at: body.expires_at });
      await store.put("session", session);
    });
  }
  function withOutboxLock(work) {
    return navigator.locks ? navigator.locks.request("mp-outbox", work) : work();
  }

  // Everything the app shows offline, fetched again whenever the phone is online.
  async function refresh() {
    if (!session || session.expired || !navigator.onLine) return;
    try {
      await renewIfOld();
      if (session.expired) return;
      var side = session.me.side;
      var g = await api("/api/v1/grids?side=" + encodeURIComponent(side));
      await store.put("grids:" + side, { at: Date.now(), data: g });
      setGrids(g);
      var categories = (await api("/api/v1/incident-categories")).categories;
      await store.put("categories", { at: Date.now(), data: categories });
      renderCategories(categories);
      var patrols = await api("/api/v1/patrols?limit=20&member=" + encodeURIComponent(session.username));
      // Only what the list shows: the tracks themselves stay on the service.
      await store.put(key("patrols"), { at: Date.now(), data: patrols.features.map(function (f) {
        var p = f.properties;
        return { id: f.id, started_at: p.started_at, distance_km: p.distance_km, transport: p.transport,
          grids: (p.grids || []).map(function (g) { return g.grid; }) };
      }) });
      var reports = await api("/api/v1/incidents?mine=true&limit=30");
      var list = reports.features.map(function (f) { return Object.assign({ id: f.id }, f.properties); });
      await store.put(key("reports"), { at: Date.now(), data: list });
      await renderMine();
      await refreshDetails(list);
      try {
        var tiles = await api("/api/v1/tiles");
        await store.put("tilesets", { at: Date.now(), data: tiles.tilesets });
      } catch (e) { if (e.status !== 404) throw e; }
      await renderTiles();
      fillFoundOn();
    } catch (e) {
      if (!(e instanceof ApiError) || e.status === 401) return;  // offline or signed out: the cache stays
      notice("更新数据失败 Could not update the data: " + e.message, "warn");
    }
  }

  // Each report's history, kept for reading offline; fetched again only when its version changed.
  async function refreshDetails(list) {
    for (var i = 0; i < list.length; i++) {
      var cached = await store.get("report:" + list[i].id);
      if (cached && cached.version === list[i].version) continue;
      try { await store.put("report:" + list[i].id, await api("/api/v1/incidents/" + list[i].id)); } catch (e) { return; }
    }
  }

  function setGrids(collection) {
    grids = new geo.GridIndex(collection);
    if (map) drawGrids(collection);
  }

  function renderCategories(categories) {
    categories.forEach(function (c) { categoryLabels[c.code] = c.label_zh + " " + c.label_en; });
    var select = $("category"), chosen = select.value;
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: categories.length ? "— 请选择 choose —" : "— 联网一次以下载类别 connect once to get the categories —" }));
    categories.filter(function (c) { return c.active !== false; }).forEach(function (c) {
      select.appendChild(el("option", { value: c.code, text: c.label_zh + " " + c.label_en }));
    });
    select.value = chosen;
  }

  // --- views --------------------------------------------------------------------------------------
  function show(name) {
    document.querySelectorAll(".view").forEach(function (v) { v.classList.add("hidden"); });
    $("view-" + name).classList.remove("hidden");
    document.querySelectorAll(".tabs button").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-view") === name);
      b.setAttribute("aria-current", b.getAttribute("data-view") === name ? "page" : "false");
    });
    document.querySelector(".tabs").classList.toggle("hidden", name === "signin");
    currentView = name;
    if (name === "signin") {
      $("username").value = session ? session.username : $("username").value;
      $("signin-why").textContent = session && session.expired
        ? "登录已过期，请重新登录；发件箱里的内容不会丢失。Your session has ended; sign in again. Nothing queued is lost."
        : "第一次使用需要联网登录。Signing in needs the network once.";
    }
    if (name === "report") { ensureMap(); fillFoundOn(); if (!$("observed").value) $("observed").value = geo.chinaInputValue(new Date()); }
    if (name === "outbox") renderOutbox();
    if (name === "mine") renderMine();
    window.scrollTo(0, 0);
  }

  // --- recording ----------------------------------------------------------------------------------
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function renderRecorder() {
    var rec = recorder.rec, fix = recorder.lastFix;
    var ms = recorder.elapsedMs(), s = Math.floor(ms / 1000);
    $("elapsed").textContent = Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60);
    $("distance").textContent = ((rec ? rec.distance : 0) / 1000).toFixed(2) + " km";
    $("fixcount").textContent = rec ? rec.usable + (rec.total > rec.usable ? " / " + rec.total : "") : "0";
    var acc = $("accuracy");
    acc.textContent = fix ? "±" + Math.round(fix.acc) + " m" : "—";
    acc.className = "big " + (fix ? (fix.acc <= 20 ? "good" : fix.acc <= MP.USABLE_ACCURACY_M ? "fair" : "poor") : "");
    var grid = fix ? grids.find(fix.lon, fix.lat) : null;
    $("grid-now").textContent = fix ? (grid ? gridName(grid) : "不在本方网格内 outside your side's grids") : "—";
    var state = !rec ? "idle" : rec.state;
    $("rec-start").classList.toggle("hidden", state !== "idle");
    $("rec-pause").classList.toggle("hidden", state !== "recording");
    $("rec-resume").classList.toggle("hidden", state !== "paused");
    $("rec-stop").classList.toggle("hidden", state === "idle");
    $("rec-state").textContent = state === "recording"
      ? "正在记录，定位点逐个保存在手机上。Recording: every fix is saved on the phone as it arrives." +
        (recorder.wakeLock ? " 屏幕保持常亮 The screen stays on." : " 此浏览器不能保持屏幕常亮，请勿锁屏 This browser cannot keep the screen on: do not lock it.")
      : state === "paused" ? "已暂停 Paused." : "";
    $("rec-error").textContent = recorder.error || (fix && fix.acc > MP.USABLE_ACCURACY_M
      ? "定位精度差（±" + Math.round(fix.acc) + " m），这些点不计入。Poor accuracy: these fixes are not used until it is better than " + MP.USABLE_ACCURACY_M + " m." : "");
  }

  function gridName(feature) {
    var p = feature.properties || {};
    return (feature.id || p.code) + " " + (p.name_zh || "") + (p.name_en ? " · " + p.name_en : "");
  }

  async function finishRecording(event) {
    event.preventDefault();
    $("finish-error").textContent = "";
    var crew = $("crew").value.split(/[,，\s]+/).map(function (s) { return s.trim(); }).filter(Boolean);
    var fields = {
      transport: $("transport").value, notes: $("notes").value.trim(),
      members: [session.username].concat(crew.filter(function (c) { return c !== session.username; })),
    };
    try {
      await recorder.finish(fields);
    } catch (e) {
      $("finish-error").textContent = e.message;
      return;
    }
    $("finish").classList.add("hidden");
    $("notes").value = "";
    notice("巡护已放入发件箱 The patrol is queued for upload.", "ok");
    sendSoon(true);
    show("outbox");
  }

  async function importFile(event) {
    event.preventDefault();
    var file = $("import-file").files[0];
    $("import-error").textContent = "";
    if (!file) { $("import-error").textContent = "请选择文件 Choose a file."; return; }
    if (!/\.(gpx|kml|kmz|geojson|json|csv)$/i.test(file.name)) {
      $("import-error").textContent = "只能导入 GPX、KML、KMZ、GeoJSON 或 CSV。Only GPX, KML, KMZ, GeoJSON or CSV files."; return;
    }
    var item = {
      id: MP.newId(), kind: "patrol", user: session.username, created: Date.now(), state: "waiting", attempts: 0, nextTry: 0,
      fields: { transport: $("import-transport").value, datum: $("import-datum").value, members: [session.username] },
      // A copy in IndexedDB: the picked file itself may be gone by the time the network is back.
      file: new Blob([await file.arrayBuffer()], { type: file.type || "application/octet-stream" }),
      filename: file.name, summary: { imported: true, size: file.size },
    };
    item.key = item.id;
    try { await store.putItem(item); } catch (e) { $("import-error").textContent = e.message; return; }
    $("import").reset();
    notice("文件已放入发件箱 The file is queued for upload.", "ok");
    sendSoon(true);
  }

  // --- reporting ----------------------------------------------------------------------------------
  // Leaflet is loaded when the report view first needs the map, not before: the patrol view opens
  // sooner on a slow phone. The service worker keeps it, so this works offline too.
  var leafletLoading = null;
  function loadLeaflet() {
    if (typeof L !== "undefined") return Promise.resolve();
    if (leafletLoading) return leafletLoading;
    leafletLoading = new Promise(function (resolve, reject) {
      var css = el("link", { rel: "stylesheet", href: "/static/maps/vendor/leaflet/leaflet.css" });
      document.head.insertBefore(css, document.head.querySelector('link[href="/app/app.css"]'));
      var script = el("script", { src: "/static/maps/vendor/leaflet/leaflet.js" });
      script.onload = resolve;
      script.onerror = function () { leafletLoading = null; reject(new Error("地图库未能加载 The map library did not load")); };
      document.body.appendChild(script);
    });
    return leafletLoading;
  }

  function ensureMap() {
    if (map) return;
    loadLeaflet().then(createMap, function (e) { fieldError("position", e.message + "：请用定位。Use your location instead."); });
  }

  function createMap() {
    if (map) return;
    map = L.map("map", { zoomControl: true, attributionControl: false, tap: true });
    map.setView([21.6, 109.7], 10);
    map.on("click", function (e) { setPoint(e.latlng.lng, e.latlng.lat, "map"); });
    store.get("grids:" + session.me.side).then(function (g) { if (g) drawGrids(g.data); });
    setTileLayer();
  }

  async function setTileLayer() {
    if (!map) return;
    var sets = ((await store.get("tilesets")) || {}).data || [];
    if (tileLayer) { tileLayer.remove(); tileLayer = null; }
    if (!sets.length) return;
    var t = sets[0];
    // Only where the file has tiles: no requests (or cache misses) outside its bounds and zooms.
    tileLayer = L.tileLayer(t.tiles, {
      minNativeZoom: t.minzoom, maxNativeZoom: t.maxzoom, maxZoom: 19,
      bounds: [[t.bounds[1], t.bounds[0]], [t.bounds[3], t.bounds[2]]],
    }).addTo(map);
    tileLayer.bringToBack();
  }

  function drawGrids(collection) {
    if (gridLayer) gridLayer.remove();
    gridLayer = L.geoJSON(collection, {
      style: { color: "#1f5f3b", weight: 2, fillColor: "#7fbf8f", fillOpacity: 0.25 },
      interactive: false,
    }).addTo(map);
    var b = grids.bounds();
    if (b && !reportPoint) map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8] });
  }

  function setPoint(lon, lat, source, accuracy) {
    reportPoint = { lon: lon, lat: lat, source: source, accuracy: accuracy };
    fieldError("position", "");
    var grid = grids.find(lon, lat);
    $("position").textContent = lon.toFixed(6) + ", " + lat.toFixed(6) + " (WGS84" + (accuracy ? ", ±" + Math.round(accuracy) + " m" : "") + ") · " +
      (grid ? "网格 Grid " + gridName(grid) : "不在本方网格内 outside your side's grids");
    if (map) {
      if (marker) marker.setLatLng([lat, lon]);
      else marker = L.circleMarker([lat, lon], { radius: 10, color: "#b3261e", weight: 3, fillOpacity: 0.6 }).addTo(map);
      if (source !== "map") map.setView([lat, lon], Math.max(map.getZoom(), 14));
    }
  }

  function locate() {
    if (!("geolocation" in navigator)) { fieldError("position", "此浏览器不能定位，请在地图上点选。This browser cannot give a position: tap the map."); return; }
    $("position").textContent = "正在定位… Finding your position…";
    var fix = recorder && recorder.lastFix;
    if (fix && Date.now() - fix.t < 30000) { setPoint(fix.lon, fix.lat, "gps", fix.acc); return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      setPoint(p.coords.longitude, p.coords.latitude, "gps", p.coords.accuracy);
    }, function (error) {
      $("position").textContent = "";
      fieldError("position", error.code === 1
        ? "未允许定位：请在浏览器设置中允许，或在地图上点选。Location is not allowed: allow it in the browser's settings, or tap the map."
        : "暂时无法定位，请在地图上点选。No position now: tap the map.");
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 10000 });
  }

  // Photos are shrunk on the phone before they are stored: a 5 MB camera photo becomes ~300 KB,
  // which a weak signal can carry.
  async function resize(file) {
    var bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      throw new Error("“" + file.name + "” 不是图片或无法读取。“" + file.name + "” is not an image this phone can read.");
    }
    var scale = Math.min(1, PHOTO_MAX_PX / Math.max(bitmap.width, bitmap.height));
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close && bitmap.close();
    var blob = await new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", PHOTO_QUALITY); });
    if (!blob) throw new Error("照片无法处理 The photo could not be processed.");
    return { id: MP.newId(), blob: blob, name: file.name.replace(/\.[^.]*$/, "") + ".jpg", size: blob.size };
  }

  async function addPhotos(input, list, render, errorOut) {
    errorOut("");
    var files = Array.prototype.slice.call(input.files || []);
    for (var i = 0; i < files.length; i++) {
      try { list.push(await resize(files[i])); } catch (e) { errorOut(e.message); }
    }
    input.value = "";
    render();
  }

  function renderPhotos() {
    var box = $("photo-list");
    box.textContent = "";
    reportPhotos.forEach(function (p, i) {
      if (!p.url) p.url = URL.createObjectURL(p.blob);
      box.appendChild(el("figure", {}, [
        el("img", { src: p.url, alt: "照片 Photo " + (i + 1) }),
        el("figcaption", {}, [Math.round(p.size / 1024) + " KB ",
          el("button", { type: "button", class: "small", text: "删除 Remove", onclick: function () { reportPhotos.splice(i, 1); renderPhotos(); } })]),
      ]));
    });
  }

  async function fillFoundOn() {
    if (!session) return;
    var select = $("found-on"), chosen = select.value;
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "— 不属于某次巡护 not on a patrol —" }));
    if (recorder && recorder.rec) select.appendChild(el("option", { value: "rec:" + recorder.rec.id, text: "正在记录的巡护 The patrol being recorded" }));
    var items = (await store.items()).filter(function (i) { return i.kind === "patrol" && i.user === session.username && !i.result; });
    items.forEach(function (i) {
      select.appendChild(el("option", { value: "item:" + i.id, text: "待上传的巡护 Queued patrol " + (i.summary && i.summary.startedAt ? geo.chinaTime(i.summary.startedAt) : i.filename) }));
    });
    var patrols = ((await store.get(key("patrols"))) || {}).data || [];
    patrols.slice(0, 10).forEach(function (p) {
      select.appendChild(el("option", { value: "patrol:" + p.id, text: "巡护 Patrol #" + p.id + " " + geo.chinaTime(p.started_at) }));
    });
    if (recorder && recorder.rec && !chosen && !editing) select.value = "rec:" + recorder.rec.id;
    else select.value = chosen;
  }

  function foundOn(value) {
    if (!value) return null;
    var i = value.indexOf(":"), kind = value.slice(0, i), id = value.slice(i + 1);
    if (kind === "rec") return { recording: id };
    if (kind === "item") return { item: id };
    return { patrol: parseInt(id, 10) };
  }

  async function saveReport(event) {
    event.preventDefault();
    var form = $("report");
    clearErrors(form);
    var ok = true;
    var category = $("category").value;
    if (!category) { fieldError("category", "请选择类别 Choose what you found."); ok = false; }
    if (!reportPoint) { fieldError("position", "请用定位或在地图上点选位置 Use your location or tap the map."); ok = false; }
    else {
      var b = grids.bounds(), margin = 0.5;  // about 50 km around the side's grids
      if (b && (reportPoint.lon < b[0] - margin || reportPoint.lon > b[2] + margin || reportPoint.lat < b[1] - margin || reportPoint.lat > b[3] + margin)) {
        fieldError("position", "这个位置离本方网格很远（超过约 50 公里），请检查。This position is far outside the region (over ~50 km from your side's grids): check it."); ok = false;
      }
    }
    var observed = $("observed").value;
    if (!observed) { fieldError("observed", "请填写发现时间 Enter when you saw it."); ok = false; }
    else if (new Date(geo.fromChinaInput(observed)) > new Date(Date.now() + 10 * 60000)) { fieldError("observed", "发现时间不能在将来 The time seen cannot be in the future."); ok = false; }
    if (!ok) { $("report-error").textContent = "未保存，请看上面的提示 Not saved: see the messages above."; return; }
    var found = foundOn($("found-on").value);
    var body = {
      category: category, severity: $("severity").value, lon: +reportPoint.lon.toFixed(7), lat: +reportPoint.lat.toFixed(7),
      observed_at: geo.fromChinaInput(observed), description: $("description").value.trim(),
    };
    if (found && found.patrol) body.patrol_id = found.patrol;
    var grid = grids.find(reportPoint.lon, reportPoint.lat);
    var item = editing || { id: MP.newId(), kind: "incident", user: session.username, created: Date.now() };
    Object.assign(item, {
      state: "waiting", attempts: 0, nextTry: 0, error: null, body: body,
      foundOn: found && !found.patrol ? found : null,
      photos: reportPhotos.map(function (p) { return { id: p.id, blob: p.blob, name: p.name, size: p.size, sent: p.sent || null }; }),
      summary: { grid: grid ? grid.id : null, category: $("category").selectedOptions[0].textContent },
    });
    // A changed report is a new request: a new key, so the service does not take it for a repeat.
    if (!item.result) item.key = MP.newId();
    try { await store.putItem(item); } catch (e) { $("report-error").textContent = e.message; return; }
    reportPhotos.forEach(function (p) { if (p.url) URL.revokeObjectURL(p.url); });
    reportPhotos = [];
    editing = null;
    form.reset();
    renderPhotos();
    reportPoint = null;
    if (marker) { marker.remove(); marker = null; }
    $("position").textContent = "还没有位置 No position yet.";
    $("observed").value = geo.chinaInputValue(new Date());
    notice("已保存在手机上" + (grid ? "（网格 " + gridName(grid) + "）" : "") + "，有网络时自动发送。Saved on the phone" + (grid ? " (grid " + (grid.id || "") + ")" : "") + "; it is sent when there is a network.", "ok");
    sendSoon(true);
    show("outbox");
  }

  function editItem(item) {
    if (item.kind === "incident") {
      editing = item;
      show("report");
      $("category").value = item.body.category;
      $("severity").value = item.body.severity;
      $("observed").value = geo.chinaInputValue(new Date(item.body.observed_at));
      $("description").value = item.body.description || "";
      reportPhotos = item.photos.map(function (p) { return Object.assign({}, p); });
      renderPhotos();
      setPoint(item.body.lon, item.body.lat, "edit");
      $("report-error").textContent = item.error ? "服务器的理由 The service said: " + item.error.detail : "";
    }
  }

  // --- the outbox ---------------------------------------------------------------------------------
  function describeItem(item) {
    if (item.kind === "patrol") {
      var s = item.summary || {};
      return s.imported ? "导入轨迹 Imported track " + item.filename
        : "巡护 Patrol " + geo.chinaTime(s.startedAt) + " · " + (s.distance / 1000).toFixed(2) + " km · " + s.fixes + " 点 fixes";
    }
    if (item.kind === "photo") return "照片 " + item.photos.length + " photo(s) for incident #" + item.incidentId;
    var sum = item.summary || {};
    return "事件 " + (sum.category || item.body.category) + (sum.grid ? " · " + sum.grid : "") +
      (item.photos.length ? " · " + item.photos.length + " 张照片 photo(s)" : "");
  }

  async function renderOutbox() {
    if (!session) return;
    var items = (await store.items()).reverse();
    var list = $("outbox");
    list.textContent = "";
    var pending = 0, others = 0;
    items.forEach(function (item) {
      if (item.user !== session.username) { others++; return; }
      if (item.state !== "sent") pending++;
      var state = el("span", { class: "state " + item.state, text: STATE[item.state] || item.state });
      var lines = [el("strong", { text: describeItem(item) }), " ", state];
      if (item.result && item.result.id) lines.push(el("span", { class: "muted", text: " #" + item.result.id }));
      lines.push(el("div", { class: "muted", text: "创建 Made " + geo.chinaTime(item.created) + (item.sentAt ? " · 发送 Sent " + geo.chinaTime(item.sentAt) : "") }));
      if (item.linkPending) lines.push(el("div", { class: "muted", text: "巡护上传后再关联 Linked to its patrol once the patrol is uploaded." }));
      if (item.error) lines.push(el("div", { class: item.state === "refused" ? "field-error" : "muted", text: item.error.title + (item.error.detail ? ": " + item.error.detail : "") }));
      if (item.state === "waiting" && item.nextTry > Date.now()) lines.push(el("div", { class: "muted", text: "下次尝试 Next try " + geo.chinaTime(item.nextTry, true) }));
      var buttons = el("div", { class: "buttons" });
      if (item.state === "refused") {
        if (item.kind === "incident" && !item.result) buttons.appendChild(el("button", { type: "button", text: "修改 Edit", onclick: function () { editItem(item); } }));
        item.photos && item.photos.forEach(function (p, i) {
          if (!p.sent && item.result) buttons.appendChild(el("button", { type: "button", text: "去掉照片 Drop photo " + (i + 1), onclick: async function () {
            item.photos.splice(i, 1); item.state = "waiting"; item.error = null; await store.putItem(item); renderOutbox(); sendSoon(true);
          } }));
        });
        buttons.appendChild(el("button", { type: "button", text: "重新发送 Send again", onclick: async function () {
          item.state = "waiting"; item.error = null; item.nextTry = 0; await store.putItem(item); renderOutbox(); sendSoon(true);
        } }));
      }
      buttons.appendChild(el("button", { type: "button", class: item.state === "sent" ? "" : "danger-button", text: item.state === "sent" ? "清除 Clear" : "删除 Delete", onclick: async function () {
        if (item.state !== "sent" && !confirm("删除后这项不会发送，也无法恢复。确定删除？\nDelete this item? It will not be sent and cannot be recovered.")) return;
        await store.dropItem(item.id); renderOutbox();
      } }));
      lines.push(buttons);
      list.appendChild(el("li", { class: "item " + item.state, "data-id": item.id }, lines));
    });
    $("outbox-summary").textContent = pending ? pending + " 项待发送 waiting to be sent" : "全部已发送 Everything is sent.";
    if (others) $("outbox-summary").textContent += " · " + others + " 项属于其他账号，登录该账号后发送 items belong to another account and are sent when it signs in.";
    $("outbox-count").textContent = pending ? "(" + pending + ")" : "";
  }

  var timer = null;
  function sendSoon(force) {
    clearTimeout(timer);
    timer = setTimeout(function () { send(force); }, force ? 0 : 1000);
  }
  async function send(force) {
    if (!session || session.expired) { if (session && session.expired) showExpired(); return schedule(); }
    var result;
    try { result = await MP.outbox.flush({ force: !!force }); } catch (e) { notice(String(e.message || e), "warn"); }
    if (result && result.signIn) { session = await store.get("session"); showExpired(); }
    if (result && result.sent) { notice(result.sent + " 项已发送 sent.", "ok"); refresh(); }
    if (result && result.offline && "serviceWorker" in navigator) {
      // Where the browser has Background Sync, it sends when the network is back even if the app is closed.
      navigator.serviceWorker.ready.then(function (r) { return r.sync && r.sync.register("mp-outbox"); }).catch(function () {});
    }
    renderOutbox();
    schedule();
  }
  // Periodic retry: the earliest next try of a waiting item, but at least every 15 s look again.
  async function schedule() {
    clearTimeout(timer);
    if (!session) return;
    var next = MP.outbox.nextTry(await store.items(), session.username);
    if (next === null) return;
    timer = setTimeout(function () { send(false); }, Math.max(1000, Math.min(15000, next - Date.now())));
  }

  // --- mine ---------------------------------------------------------------------------------------
  async function renderMine() {
    if (!session) return;
    var reports = (await store.get(key("reports"))) || { data: [] };
    var patrols = (await store.get(key("patrols"))) || { data: [] };
    $("mine-updated").textContent = reports.at ? "更新于 Updated " + geo.chinaTime(reports.at) + (navigator.onLine ? "" : " · 离线 offline") : "联网后显示 Shown once online.";
    var list = $("my-reports");
    list.textContent = "";
    var unsent = (await store.items()).filter(function (i) { return i.kind === "incident" && i.user === session.username && !i.result; });
    unsent.forEach(function (i) {
      list.appendChild(el("li", { class: "item" }, [el("strong", { text: describeItem(i) }), " ", el("span", { class: "state waiting", text: "未发送 Not sent yet" })]));
    });
    reports.data.forEach(function (r) {
      list.appendChild(el("li", { class: "item" }, [el("button", { type: "button", class: "link", onclick: function () { openReport(r.id); } }, [
        el("strong", { text: "#" + r.id + " " + (categoryLabels[r.category] || r.category) }), " ",
        el("span", { class: "state " + r.status, text: STATUS[r.status] || r.status }),
        el("div", { class: "muted", text: geo.chinaTime(r.observed_at) + (r.grid ? " · " + r.grid : "") + (r.overdue ? " · 已超时 overdue" : "") }),
      ])]));
    });
    if (!unsent.length && !reports.data.length) list.appendChild(el("li", { class: "muted", text: "还没有 None yet." }));
    var plist = $("my-patrols");
    plist.textContent = "";
    patrols.data.forEach(function (p) {
      plist.appendChild(el("li", { class: "item" }, [el("strong", { text: "#" + p.id + " " + geo.chinaTime(p.started_at) }),
        el("div", { class: "muted", text: (p.distance_km || 0).toFixed(2) + " km · " + (p.transport === "boat" ? "乘船 boat" : "步行 foot") + (p.grids && p.grids.length ? " · " + p.grids.join(", ") : "") })]));
    });
    if (!patrols.data.length) plist.appendChild(el("li", { class: "muted", text: "还没有 None yet." }));
    $("me").textContent = session.me.display_name + " (" + session.username + ") · " + session.me.side;
  }

  var openId = null;
  async function openReport(id) {
    openId = id;
    show("detail");
    var detail = await store.get("report:" + id);
    if (navigator.onLine && !session.expired) {
      try { detail = await api("/api/v1/incidents/" + id); await store.put("report:" + id, detail); } catch (e) { /* the cached copy */ }
    }
    $("detail-title").textContent = "事件 Incident #" + id;
    var box = $("detail");
    box.textContent = "";
    if (!detail) { box.appendChild(el("p", { class: "muted", text: "离线时没有这条记录的详情 Not kept on the phone: open it once online." })); return; }
    box.appendChild(el("table", {}, [
      row("状态 Status", STATUS[detail.status] || detail.status),
      row("类别 Category", categoryLabels[detail.category] || detail.category),
      row("网格 Grid", detail.grid || "—"),
      row("发现 Seen", geo.chinaTime(detail.observed_at)),
      row("受理期限 Accept by", geo.chinaTime(detail.accept_due)),
      row("办结期限 Resolve by", geo.chinaTime(detail.resolve_due)),
      row("照片 Photos", String((detail.photos || []).length)),
    ]));
    box.appendChild(el("h2", { text: "经过 History" }));
    var history = el("ol", { class: "history" });
    (detail.history || []).forEach(function (h) {
      history.appendChild(el("li", {}, [geo.chinaTime(h.at) + " · " + h.by + " · " + (ACTIONS[h.action] || h.action) + (h.note ? " · " + h.note : "")]));
    });
    box.appendChild(history);
    box.appendChild(el("p", { class: "muted", text: "时间均为北京时间 All times are China time." }));
    $("add-photo").classList.toggle("hidden", FINISHED.indexOf(detail.status) >= 0);
  }
  function row(label, value) { return el("tr", {}, [el("th", { text: label }), el("td", { text: value })]); }

  var morePhotos = [];
  async function queuePhotos(event) {
    event.preventDefault();
    var out = $("add-photo-error");
    out.textContent = "";
    await addPhotos($("more-photos"), morePhotos, function () {}, function (t) { out.textContent = t; });
    if (!morePhotos.length) { if (!out.textContent) out.textContent = "请选择照片 Choose a photo."; return; }
    var item = { id: MP.newId(), kind: "photo", user: session.username, created: Date.now(), state: "waiting", attempts: 0, nextTry: 0, incidentId: openId, photos: morePhotos };
    morePhotos = [];
    try { await store.putItem(item); } catch (e) { out.textContent = e.message; return; }
    notice("照片已放入发件箱 The photo is queued.", "ok");
    sendSoon(true);
  }

  // --- the station's basemap, kept on the phone ---------------------------------------------------
  async function renderTiles() {
    var sets = ((await store.get("tilesets")) || {}).data || [];
    var kept = await store.get("tiles-kept");
    $("tiles-status").textContent = sets.length
      ? "本站底图 Station basemap: " + sets[0].name + (kept ? " · 已保存 " + kept.count + " 张 (" + (kept.bytes / 1048576).toFixed(1) + " MB) kept on this phone" : "")
      : "本站没有底图文件 The station has no tile file.";
    $("tiles-cache").classList.toggle("hidden", !sets.length);
    setTileLayer();
  }

  function tileRange(b, z) {
    var n = Math.pow(2, z);
    function x(lon) { return Math.floor((lon + 180) / 360 * n); }
    function y(lat) { var r = lat * Math.PI / 180; return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * n); }
    return { x0: x(b[0]), x1: x(b[2]), y0: y(b[3]), y1: y(b[1]) };
  }

  async function cacheTiles() {
    var sets = ((await store.get("tilesets")) || {}).data || [];
    var b = grids.bounds();
    if (!sets.length || !b) return;
    var t = sets[0], urls = [];
    var box = [Math.max(b[0], t.bounds[0]), Math.max(b[1], t.bounds[1]), Math.min(b[2], t.bounds[2]), Math.min(b[3], t.bounds[3])];
    for (var z = t.minzoom; z <= t.maxzoom && urls.length < TILE_CAP_COUNT; z++) {
      var r = tileRange(box, z);
      for (var x = r.x0; x <= r.x1; x++) for (var y = r.y0; y <= r.y1; y++) urls.push(t.tiles.replace("{z}", z).replace("{x}", x).replace("{y}", y));
    }
    urls = urls.slice(0, TILE_CAP_COUNT);
    var cache = await caches.open("mp-tiles"), bytes = 0, count = 0, progress = $("tiles-progress");
    progress.classList.remove("hidden");
    progress.max = urls.length;
    for (var i = 0; i < urls.length; i++) {
      progress.value = i + 1;
      $("tiles-status").textContent = "正在下载底图 Keeping the basemap: " + (i + 1) + " / " + urls.length + " · " + (bytes / 1048576).toFixed(1) + " MB";
      if (bytes > TILE_CAP_BYTES) { notice("底图已达 200 MB 上限 The basemap reached the 200 MB cap on this phone.", "warn"); break; }
      try {
        var hit = await cache.match(urls[i]);
        if (hit) { bytes += (await hit.clone().blob()).size; count++; continue; }
        var response = await fetch(urls[i]);
        if (!response.ok) continue;  // no tile there: the file does not cover it
        bytes += (await response.clone().blob()).size;
        await cache.put(urls[i], response);
        count++;
      } catch (e) {
        notice(e.name === "QuotaExceededError" ? "手机存储已满，底图只保存了一部分。Device storage is full: only part of the basemap is kept." : "下载中断 Interrupted: " + e.message, "warn");
        break;
      }
    }
    await store.put("tiles-kept", { count: count, bytes: bytes, at: Date.now() });
    progress.classList.add("hidden");
    renderTiles();
  }

  // --- start --------------------------------------------------------------------------------------
  async function startSignedIn() {
    await loadCached();
    recorder = recorder || new MP.Recorder(renderRecorder);
    await recorder.restore(session.username);
    if (recorder.rec && recorder.rec.state === "recording") notice("上次的巡护记录已恢复，继续记录中。The recording in progress was restored and carries on.", "ok");
    show(recorder.rec ? "patrol" : (currentView && currentView !== "signin" ? currentView : "patrol"));
    if (session.expired) showExpired();
    refresh();
    renderOutbox();
  }

  async function main() {
    setNet();
    if (!window.isSecureContext) $("insecure").classList.remove("hidden");
    if ("serviceWorker" in navigator && window.isSecureContext) {
      navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(function (e) {
        notice("离线功能未能启用 Offline use could not be set up: " + e.message, "warn");
      });
    }
    // Ask the browser not to evict the outbox when the phone runs short of space.
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(function () {});
    window.addEventListener("online", function () { setNet(); refresh(); sendSoon(true); });
    window.addEventListener("offline", setNet);
    if (MP.outbox.channel) MP.outbox.channel.onmessage = function () { if (currentView === "outbox") renderOutbox(); };
    MP.onOutbox = function () { if (currentView === "outbox") renderOutbox(); };
    document.querySelectorAll(".tabs button").forEach(function (b) { b.addEventListener("click", function () { show(b.getAttribute("data-view")); }); });
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("rec-start").addEventListener("click", function () {
      recorder.start(session.username).catch(function (e) { $("rec-error").textContent = e.message; });
    });
    $("rec-pause").addEventListener("click", function () { recorder.pause(); });
    $("rec-resume").addEventListener("click", function () { recorder.resume(); });
    $("rec-stop").addEventListener("click", function () { recorder.pause().then(function () { $("finish").classList.remove("hidden"); $("finish").scrollIntoView(); }); });
    $("finish-cancel").addEventListener("click", function () { $("finish").classList.add("hidden"); });
    $("rec-discard").addEventListener("click", function () {
      if (confirm("删除这次记录的所有定位点？无法恢复。\nDelete every fix of this recording? This cannot be undone.")) { recorder.discard(); $("finish").classList.add("hidden"); }
    });
    $("finish").addEventListener("submit", finishRecording);
    $("import").addEventListener("submit", importFile);
    $("report").addEventListener("submit", saveReport);
    $("locate").addEventListener("click", locate);
    $("photos").addEventListener("change", function () {
      addPhotos($("photos"), reportPhotos, renderPhotos, function (t) { fieldError("photos", t); });
    });
    $("add-photo").addEventListener("submit", queuePhotos);
    $("detail-back").addEventListener("click", function () { show("mine"); });
    $("send-now").addEventListener("click", function () { sendSoon(true); });
    $("tiles-cache").addEventListener("click", cacheTiles);
    setInterval(function () { if (recorder && recorder.rec && recorder.rec.state === "recording") renderRecorder(); }, 1000);

    session = await store.get("session");
    if (!session) { show("signin"); ready(); return; }
    await startSignedIn();
    ready();
    sendSoon(true);
  }

  // When the first view can be used (the benchmark's "time to interactive").
  function ready() {
    if (!window.mangroveAppReady) window.mangroveAppReady = performance.now();
  }

  main().catch(function (e) { notice("启动失败 The app could not start: " + (e.message || e), "danger"); });
})();

// The incident report page (api/templates/incident_report.html): tap the grid map or use the
// phone's position, zoom, check the photo's size, and send once. A file, not inline code: the
// pages' Content-Security-Policy runs scripts from the service only.
(function () {
  "use strict";
  function $(id) { return document.getElementById(id); }
  var lon = $("lon"), lat = $("lat"), datum = $("datum"), status = $("locstatus");
  var svg = $("map"), marker = $("marker");
  function say(text) { status.textContent = text; }

  // --- the map: tap to set the point; zoom around it ---
  var W = 0, H = 0, zoom = 1, cx = 0, cy = 0, point = null, lon0, lat0, kx, ky;
  if (svg) {
    var vb = svg.viewBox.baseVal;
    W = vb.width; H = vb.height; cx = W / 2; cy = H / 2;
    lon0 = parseFloat(svg.getAttribute("data-lon0")); lat0 = parseFloat(svg.getAttribute("data-lat0"));
    kx = parseFloat(svg.getAttribute("data-kx")); ky = parseFloat(svg.getAttribute("data-ky"));
  }
  function labels() {
    var width = svg.getBoundingClientRect().width || 320;
    var px = width / (W / zoom);  // screen pixels per map unit
    var all = svg.querySelectorAll("text.label");
    for (var i = 0; i < all.length; i++) {
      var base = parseFloat(all[i].getAttribute("data-size"));
      var size = Math.min(base, 15 / px);
      all[i].setAttribute("font-size", size.toFixed(2));
      all[i].setAttribute("stroke-width", (size * 0.2).toFixed(2));
      all[i].style.display = base * px < 7 ? "none" : "";
    }
  }
  function showMarker() {
    if (!svg) return;
    if (!point) { marker.classList.add("hidden"); return; }
    marker.setAttribute("transform", "translate(" + point[0] + " " + point[1] + ") scale(" + (1 / zoom) + ")");
    marker.classList.remove("hidden");
  }
  function view() {
    var w = W / zoom, h = H / zoom;
    cx = Math.min(Math.max(cx, w / 2), W - w / 2);
    cy = Math.min(Math.max(cy, h / 2), H - h / 2);
    svg.setAttribute("viewBox", (cx - w / 2) + " " + (cy - h / 2) + " " + w + " " + h);
    showMarker();
    labels();
  }
  function zoomBy(factor) {
    if (point) { cx = point[0]; cy = point[1]; }
    zoom = Math.min(Math.max(zoom * factor, 1), 64);
    view();
  }
  // Mark the typed position (WGS84 only: the map is drawn in WGS84).
  function typed() {
    if (!svg) return;
    var x = (parseFloat(lon.value) - lon0) * kx, y = (lat0 - parseFloat(lat.value)) * ky;
    point = datum.value === "wgs84" && isFinite(x) && isFinite(y) && x >= 0 && y >= 0 && x <= W && y <= H ? [x, y] : null;
    showMarker();
  }
  function setPosition(lo, la) {
    lon.value = lo.toFixed(6); lat.value = la.toFixed(6); datum.value = "wgs84";
    typed();
  }
  if (svg) {
    svg.addEventListener("click", function (event) {
      var p = svg.createSVGPoint();
      p.x = event.clientX; p.y = event.clientY;
      p = p.matrixTransform(svg.getScreenCTM().inverse());
      setPosition(lon0 + p.x / kx, lat0 - p.y / ky);
      say("已在地图上选点 Point set on the map: " + lon.value + ", " + lat.value + ". 可放大后再点 Zoom in to place it more exactly.");
    });
    $("zoomin").addEventListener("click", function () { zoomBy(2); });
    $("zoomout").addEventListener("click", function () { zoomBy(0.5); });
    $("zoomall").addEventListener("click", function () { zoom = 1; view(); });
    window.addEventListener("resize", labels);
    lon.addEventListener("input", typed); lat.addEventListener("input", typed);
    datum.addEventListener("change", typed);
    typed();
    view();
  }

  // --- the phone's own position ---
  $("locate").addEventListener("click", function () {
    if (!navigator.geolocation) { say("此浏览器不能定位 This browser cannot give a location: tap the map or type the coordinates."); return; }
    if (window.isSecureContext === false) { say("定位需要 HTTPS 连接 Location needs an HTTPS connection: tap the map or type the coordinates."); return; }
    say("定位中… Finding your position…");
    navigator.geolocation.getCurrentPosition(function (pos) {
      setPosition(pos.coords.longitude, pos.coords.latitude);
      if (point) { zoom = Math.max(zoom, 4); cx = point[0]; cy = point[1]; view(); }
      say("已定位 Located: " + lon.value + ", " + lat.value + " (±" + Math.round(pos.coords.accuracy) + " m)" +
          (point ? "" : " — 在地图范围外 outside the map shown"));
    }, function (err) {
      var why = err.code === 1 ? "未允许定位 Location permission was refused"
        : err.code === 3 ? "定位超时 Finding the position took too long" : "无法定位 The position is not available";
      say(why + ". 请在地图上点选或输入经纬度 Tap the map or type the coordinates.");
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
  });

  // --- the photo: too large is refused before a long upload; show what was chosen ---
  var photo = $("photo"), preview = $("preview");
  photo.addEventListener("change", function () {
    var file = photo.files && photo.files[0], max = parseInt(photo.getAttribute("data-max"), 10);
    if (file && file.size > max) {
      photo.value = ""; preview.classList.add("hidden");
      alert("照片太大 The photo is too large (" + (file.size / 1048576).toFixed(1) + " MiB; max " + (max / 1048576).toFixed(1) + " MiB)");
      return;
    }
    if (file && window.URL && URL.createObjectURL) { preview.src = URL.createObjectURL(file); preview.classList.remove("hidden"); }
    else { preview.classList.add("hidden"); }
  });

  // --- one tap, one report ---
  var form = $("report"), submit = $("submit");
  form.addEventListener("submit", function () { submit.disabled = true; submit.textContent = "提交中… Sending…"; });
  window.addEventListener("pageshow", function () { submit.disabled = false; submit.textContent = "提交 Submit"; });
})();

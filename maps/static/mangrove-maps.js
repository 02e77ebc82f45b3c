/* Mangrove Patrol map layers: small builders that turn the compact data the server embeds into
 * Leaflet layers. Served by the service (/static/maps/) or inlined into exported maps; no network.
 * Coordinates of lines arrive delta-encoded in 1e-5 degree steps (≈ 1 m), [lon0, lat0, dlon, dlat…],
 * which is about a third of the size of decimal degrees. */
(function () {
  "use strict";

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // [lon0, lat0, dlon1, dlat1, ...] (integers, 1e-5 degrees) -> [[lat, lon], ...]
  function decode(deltas) {
    var out = new Array(deltas.length / 2), lon = 0, lat = 0;
    for (var i = 0; i < deltas.length; i += 2) {
      lon += deltas[i];
      lat += deltas[i + 1];
      out[i / 2] = [lat / 1e5, lon / 1e5];
    }
    return out;
  }

  function table(rows) {
    var html = "<table class='mp-table'>";
    rows.forEach(function (r) {
      if (r[1] !== null && r[1] !== undefined && r[1] !== "") {
        html += "<tr><th>" + esc(r[0]) + "</th><td>" + r[1] + "</td></tr>";
      }
    });
    return html + "</table>";
  }

  // One canvas for the grids and the tracks of a map. Tracks must lie above the grids and be
  // clickable inside them, and grids clickable everywhere else: two renderers in stacked panes
  // cannot do both (a canvas catches every click over its whole area, so the lower one would never
  // get any), while in one canvas Leaflet hands a click to the topmost shape under it.
  var sharedCanvas = null;
  function vectorCanvas() {
    if (!sharedCanvas) sharedCanvas = L.canvas({ padding: 0.5, tolerance: 4 });
    return sharedCanvas;
  }

  // Polygons (grids, zones, bands) with their style, popup and tooltip given per feature.
  // options.underTracks: drawn in the tracks' canvas, always beneath them (even when re-shown).
  // options.overGrids: likewise, but above the underTracks groups (a layer that recolours the
  // grids, as the encounter rates do, must show over the effort colours when switched on).
  var underGroups = [];
  function polygons(collection, options) {
    var over = !!(options && options.overGrids);
    var under = over || !!(options && options.underTracks);
    var group = L.geoJSON(collection, {
      renderer: under ? vectorCanvas() : undefined,
      style: function (f) { return f.properties.style; },
      onEachFeature: function (f, layer) {
        if (f.properties.popup) layer.bindPopup(f.properties.popup, { maxWidth: 320 });
        if (f.properties.tooltip) layer.bindTooltip(f.properties.tooltip, { sticky: true });
      }
    });
    if (under && !over) underGroups.push(group);
    if (under) group.on("add", function () {
      group.bringToBack();
      if (over) underGroups.forEach(function (g) { if (g._map) g.bringToBack(); });
    });
    return group;
  }

  // Text labels that do not catch clicks: rows of [lat, lon, html], the most important first.
  // Thinned to what can be read: none below options.minZoom, and of labels that would overlap on
  // screen only the first is shown (recomputed at every zoom).
  function labels(rows, options) {
    var minZoom = (options && options.minZoom) || 0;
    var group = L.layerGroup(), markers = [];
    rows.forEach(function (r) {
      var marker = L.marker([r[0], r[1]], {
        interactive: false, keyboard: false,
        icon: L.divIcon({ className: "mp-label-anchor", html: "<span class='mp-label'>" + r[2] + "</span>", iconSize: [0, 0] })
      }).addTo(group);
      markers.push(marker);
    });
    function thin() {
      var map = group._map;
      if (!map) return;
      var low = map.getZoom() < minZoom, placed = [];
      markers.forEach(function (marker) {
        var el = marker.getElement(), label = el && el.firstChild;
        if (!label) return;
        if (low) { el.style.visibility = "hidden"; return; }
        el.style.visibility = "";
        if (!marker.mpSize) marker.mpSize = [label.offsetWidth + 4, label.offsetHeight + 2];
        var p = map.latLngToLayerPoint(marker.getLatLng()), w = marker.mpSize[0] / 2, h = marker.mpSize[1] / 2;
        var box = [p.x - w, p.y - h, p.x + w, p.y + h];
        var clash = placed.some(function (b) { return box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]; });
        if (clash) el.style.visibility = "hidden"; else placed.push(box);
      });
    }
    group.on("add", function () { group._map.on("zoomend", thin); thin(); });
    group.on("remove", function (e) { e.target._map && e.target._map.off("zoomend", thin); });
    group.mpThin = thin;
    return group;
  }

  // Patrol tracks: data = {teams: [{zh, en, color}], rows: [[team, id, date, km, members, transport, parts]]}
  function tracks(data) {
    var renderer = vectorCanvas();
    var group = L.featureGroup();
    data.rows.forEach(function (r) {
      var team = data.teams[r[0]];
      var line = L.polyline(r[6].map(decode), {
        renderer: renderer, color: team.color, weight: 2.5, opacity: 0.8
      });
      line.bindPopup(function () {
        return "<b>巡护 Patrol #" + r[1] + "</b>" + table([
          ["队伍 Team", esc(team.zh) + "<br>" + esc(team.en)],
          ["队员 Members", esc(r[4])],
          ["日期 Date", esc(r[2])],
          ["距离 Distance", r[3] + " km"],
          ["方式 Transport", esc(r[5])]
        ]) + (data.replay ? "<a href='" + esc(data.replay + r[1]) + "'>回放 Replay ▶</a>" : "");
      });
      line.addTo(group);
    });
    return group;
  }

  // Incident markers for a marker cluster: lookups = {categories: [{glyph, zh, en}],
  // statuses: [{code, zh, en, color}], sides: [{code, zh, en, color}], colorBy: "status"|"side",
  // link: URL prefix or ""}. Rows: [lat, lon, id, category, status, overdue, observed, due, grid,
  // side, flags] where flags is a string of letters: j joint case, r referred, n near the border.
  function incidentMarker(lookups) {
    return function (row) {
      var category = lookups.categories[row[3]], status = lookups.statuses[row[4]];
      var side = lookups.sides[row[9]];
      // Filled by status (open or settled shows at a glance); on the joint map ringed by side.
      var ring = lookups.colorBy === "side" ? ";border-color:" + side.color : "";
      var flags = row[10] || "";
      var classes = "mp-inc" + (row[5] ? " mp-overdue" : "") +
        (flags.indexOf("j") >= 0 ? " mp-joint" : "") + (flags.indexOf("r") >= 0 ? " mp-referred" : "") +
        (flags.indexOf("n") >= 0 ? " mp-near" : "");
      var marker = L.marker([row[0], row[1]], {
        icon: L.divIcon({
          className: "", iconSize: [22, 22], iconAnchor: [11, 11],
          html: "<span class='" + classes + (ring ? " mp-ringed" : "") + "' style='background:" + status.color + ";color:" + status.ink + ring + "'>" + esc(category.glyph) + "</span>"
        }),
        title: category.zh + " " + category.en
      });
      marker.mpOpen = status.open;
      marker.mpOverdue = !!row[5];
      marker.bindPopup(function () {
        var id = lookups.link ? "<a href='" + esc(lookups.link + row[2]) + "' target='_blank' rel='noopener'>#" + esc(row[2]) + "</a>" : "#" + esc(row[2]);
        var notes = [];
        if (flags.indexOf("j") >= 0) notes.push("联合案件 Joint case");
        if (flags.indexOf("r") >= 0) notes.push("已移交 Referred");
        if (flags.indexOf("n") >= 0) notes.push("近省界 Near the border");
        return "<b>事件 Incident " + id + "</b>" + table([
          ["类别 Category", esc(category.zh) + "<br>" + esc(category.en)],
          ["状态 Status", "<span class='mp-dot' style='background:" + status.color + "'></span>" + esc(status.zh) + " " + esc(status.en)],
          ["时限 Due", esc(row[7]) + (row[5] ? " <b class='mp-late'>超时 overdue</b>" : "")],
          ["发现 Observed", esc(row[6])],
          ["网格 Grid", row[8] ? esc(row[8]) + (lookups.gridNames && lookups.gridNames[row[8]] ? "<br>" + esc(lookups.gridNames[row[8]]) : "") : "—"],
          ["一方 Side", esc(side.zh) + " " + esc(side.en)],
          ["", esc(notes.join(" · "))]
        ]);
      });
      return marker;
    };
  }

  // Clusters coloured by what they hold: red if any open incident is overdue, orange if any is
  // open, grey when all are settled.
  function clusterIcon(cluster) {
    var children = cluster.getAllChildMarkers(), open = false, late = false;
    for (var i = 0; i < children.length; i++) {
      if (children[i].mpOverdue) { late = true; break; }
      if (children[i].mpOpen) open = true;
    }
    var n = cluster.getChildCount();
    var size = n < 10 ? 30 : n < 100 ? 36 : n < 1000 ? 42 : 48;
    return L.divIcon({
      html: "<div><span>" + n + "</span></div>",
      className: "marker-cluster mp-cluster " + (late ? "mp-cluster-late" : open ? "mp-cluster-open" : "mp-cluster-done"),
      iconSize: L.point(size, size)
    });
  }

  // Point markers with a ready-made icon and popup: rows of [lat, lon, iconHtml, popupHtml].
  function cases(rows) {
    var group = L.featureGroup();
    rows.forEach(function (r) {
      L.marker([r[0], r[1]], {
        icon: L.divIcon({ className: "", html: r[2], iconSize: [26, 26], iconAnchor: [13, 13] }),
        zIndexOffset: 1000
      }).bindPopup(r[3], { maxWidth: 320 }).addTo(group);
    });
    return group;
  }

  function control(map, position, html, className) {
    var c = L.control({ position: position });
    c.onAdd = function () {
      var div = L.DomUtil.create("div", "mp-control " + (className || ""));
      div.innerHTML = html;
      // On a phone the legend and filters start folded, leaving the map visible.
      if (window.innerWidth < 640) {
        Array.prototype.forEach.call(div.querySelectorAll("details[open]"), function (d) { d.open = false; });
      }
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    c.addTo(map);
    return c;
  }

  // The initial view: the data's bounds ([[s, w], [n, e]]), fitted now to the whole map and again in
  // ready() to the part the boxes in its corners leave free.
  function frame(map, bounds) {
    map.mpFrame = L.latLngBounds(bounds);
    map.fitBounds(map.mpFrame, { animate: false });
  }

  var MARGIN = 8; // px between the data (or a popup) and a box

  // How far the controls in each corner reach into the map: {topleft: {w, h}, …} in px.
  function cornerExtents(map) {
    var box = map.getContainer().getBoundingClientRect(), out = {};
    ["topleft", "topright", "bottomleft", "bottomright"].forEach(function (pos) {
      var w = 0, h = 0, corner = map._controlCorners[pos];
      Array.prototype.forEach.call(corner ? corner.children : [], function (c) {
        var r = c.getBoundingClientRect();
        if (!r.width || !r.height) return;
        w = Math.max(w, pos.indexOf("left") > 0 ? r.right - box.left : box.right - r.left);
        h = Math.max(h, pos.indexOf("top") === 0 ? r.bottom - box.top : box.bottom - r.top);
      });
      out[pos] = { w: w, h: h };
    });
    return out;
  }

  // The ways to leave out the boxes in the map's corners: each corner's boxes by a margin either on
  // their side (left/right) or on their edge (top/bottom). Each: {left, top, right, bottom, w, h}.
  function freeChoices(map) {
    var size = map.getSize(), e = cornerExtents(map), out = [];
    for (var mask = 0; mask < 16; mask++) {
      var bySide = [0, 1, 2, 3].map(function (i) { return (mask >> i) & 1; });
      var pad = {
        left: Math.max(bySide[0] ? e.topleft.w : 0, bySide[2] ? e.bottomleft.w : 0),
        right: Math.max(bySide[1] ? e.topright.w : 0, bySide[3] ? e.bottomright.w : 0),
        top: Math.max(bySide[0] ? 0 : e.topleft.h, bySide[1] ? 0 : e.topright.h),
        bottom: Math.max(bySide[2] ? 0 : e.bottomleft.h, bySide[3] ? 0 : e.bottomright.h)
      };
      pad.w = size.x - pad.left - pad.right - 2 * MARGIN;
      pad.h = size.y - pad.top - pad.bottom - 2 * MARGIN;
      if (pad.w > 0 && pad.h > 0) out.push(pad);
    }
    return out.length ? out : [{ left: 0, top: 0, right: 0, bottom: 0, w: size.x, h: size.y }];
  }

  // The free part where a box of ``want`` ({x, y} px, a popup) fits, the largest such; if it fits
  // nowhere, where it comes nearest.
  function freePadding(map, want) {
    var best = null;
    freeChoices(map).forEach(function (c) {
      var score = [Math.min(1, c.w / Math.max(want.x, 1), c.h / Math.max(want.y, 1)), c.w * c.h];
      if (!best || score[0] > best.score[0] || (score[0] === best.score[0] && score[1] > best.score[1])) {
        best = { score: score, pad: c };
      }
    });
    return best.pad;
  }

  function paddingOptions(pad) {
    return {
      paddingTopLeft: L.point(pad.left + MARGIN, pad.top + MARGIN),
      paddingBottomRight: L.point(pad.right + MARGIN, pad.bottom + MARGIN)
    };
  }

  // Fits the data's frame to the free part of the map where it shows largest (at whole zooms; of
  // equal ones, the largest part, so the data sits in the open rather than against a box).
  function fitFree(map) {
    if (!map.mpFrame) return;
    var best = null;
    freeChoices(map).forEach(function (c) {
      var zoom = map.getBoundsZoom(map.mpFrame, false, L.point(c.left + c.right + 2 * MARGIN, c.top + c.bottom + 2 * MARGIN));
      if (!best || zoom > best.zoom || (zoom === best.zoom && c.w * c.h > best.pad.w * best.pad.h)) best = { zoom: zoom, pad: c };
    });
    map.fitBounds(map.mpFrame, L.extend({ animate: false }, paddingOptions(best.pad)));
  }

  // A popup taller than the free part scrolls inside instead (a grid's popup is longer than a
  // phone's map once the title and filters take their share).
  var updateLayout = L.Popup.prototype._updateLayout;
  L.Popup.prototype._updateLayout = function () {
    var map = this._map;
    if (map && map._controlCorners) {
      var pad = freePadding(map, { x: 320, y: 320 });
      var free = map.getSize().y - pad.top - pad.bottom - 2 * MARGIN - 40; // less the tip and close button
      if (!this.mpMaxHeight) this.mpMaxHeight = this.options.maxHeight || Infinity;
      this.options.maxHeight = Math.max(120, Math.min(this.mpMaxHeight, free));
    }
    return updateLayout.apply(this, arguments);
  };

  var adjustPan = L.Popup.prototype._adjustPan;
  L.Popup.prototype._adjustPan = function () {
    var map = this._map;
    if (map && this._container && map._controlCorners) {
      var pad = freePadding(map, { x: this._container.offsetWidth, y: this._container.offsetHeight });
      var opts = paddingOptions(pad);
      this.options.autoPanPaddingTopLeft = opts.paddingTopLeft;
      this.options.autoPanPaddingBottomRight = opts.paddingBottomRight;
    }
    return adjustPan.apply(this, arguments);
  };

  // Marks the first full render for tests and benchmarks: layers are added synchronously by the
  // page's script, drawn on the next frame.
  function ready(map) {
    fitFree(map);
    window.mangroveMap = map;
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { window.mangroveRenderedAt = performance.now(); });
    });
  }

  // Patrol replay: tracks = [{id, color, label, coords (delta-encoded), t (seconds since start)}],
  // visits = [[trackIndex, grid, enter, exit]] (seconds since start), start = epoch seconds.
  function replay(map, gridLayer, data) {
    var crossedStyle = { weight: 4, color: "#d35400", fillColor: "#f5b041", fillOpacity: 0.45 };
    var gridsByCode = {};
    gridLayer.eachLayer(function (l) { gridsByCode[l.feature.properties.code] = l; });
    var duration = 0;
    var items = data.tracks.map(function (t) {
      var latlngs = decode(t.coords);
      duration = Math.max(duration, t.t[t.t.length - 1] || 0);
      L.polyline(latlngs, { color: t.color, weight: 2, opacity: 0.35, dashArray: "4 4" }).addTo(map);
      var trail = L.polyline([], { color: t.color, weight: 4, opacity: 0.9 }).addTo(map);
      var head = L.circleMarker(latlngs[0], { radius: 7, color: "#fff", weight: 2, fillColor: t.color, fillOpacity: 1 })
        .bindTooltip(esc(t.label)).addTo(map);
      return { t: t.t, latlngs: latlngs, trail: trail, head: head };
    });
    var panel = control(map, "bottomleft",
      "<div class='mp-replay'><button type='button' class='mp-play' aria-label='播放 Play'><span class='mp-icon-play'></span></button>" +
      "<input type='range' class='mp-slider' min='0' max='" + Math.ceil(duration) + "' step='1' value='0'>" +
      "<select class='mp-speed'><option value='30'>30×</option><option value='120' selected>120×</option>" +
      "<option value='600'>600×</option></select><div class='mp-clock'></div><div class='mp-now-grid'></div></div>",
      "mp-replay-panel");
    var root = panel.getContainer();
    var slider = root.querySelector(".mp-slider"), clock = root.querySelector(".mp-clock");
    var button = root.querySelector(".mp-play"), speed = root.querySelector(".mp-speed");
    var nowGrid = root.querySelector(".mp-now-grid");

    function upTo(times, s) { // index of the last fix at or before s
      var lo = 0, hi = times.length - 1;
      if (s < times[0]) return -1;
      while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (times[mid] <= s) lo = mid; else hi = mid - 1; }
      return lo;
    }
    function show(s) {
      items.forEach(function (it) {
        var i = upTo(it.t, s);
        it.trail.setLatLngs(i < 0 ? [] : it.latlngs.slice(0, i + 1));
        if (i >= 0) it.head.setLatLng(it.latlngs[i]);
      });
      var inside = {};
      data.visits.forEach(function (v) { if (v[2] <= s && s <= v[3]) inside[v[1]] = true; });
      var passed = {};
      data.visits.forEach(function (v) { if (v[2] <= s) passed[v[1]] = true; });
      Object.keys(gridsByCode).forEach(function (code) {
        var layer = gridsByCode[code];
        layer.setStyle(inside[code] ? { weight: 5, color: "#c0392b", fillColor: "#e74c3c", fillOpacity: 0.5 }
          : passed[code] ? crossedStyle : layer.feature.properties.style);
      });
      var when = new Date((data.start + s) * 1000 + 8 * 3600 * 1000); // China time
      clock.textContent = when.toISOString().slice(0, 19).replace("T", " ") + " (UTC+8)";
      nowGrid.textContent = Object.keys(inside).length ? "网格 Grid " + Object.keys(inside).join(", ") : "";
    }
    var timer = null, last = null;
    function frame(ts) {
      if (timer === null) return;
      if (last !== null) {
        var next = Number(slider.value) + (ts - last) / 1000 * Number(speed.value);
        if (next >= duration) { next = duration; stop(); }
        slider.value = next;
        show(next);
      }
      last = ts;
      if (timer !== null) timer = requestAnimationFrame(frame);
    }
    function icon(playing) {
      button.innerHTML = playing ? "<span class='mp-icon-pause'></span>" : "<span class='mp-icon-play'></span>";
      button.setAttribute("aria-label", playing ? "暂停 Pause" : "播放 Play");
    }
    function stop() { if (timer !== null) cancelAnimationFrame(timer); timer = null; last = null; icon(false); }
    button.addEventListener("click", function () {
      if (timer !== null) { stop(); return; }
      if (Number(slider.value) >= duration) slider.value = 0;
      icon(true);
      timer = requestAnimationFrame(frame);
    });
    slider.addEventListener("input", function () { show(Number(slider.value)); });
    show(0);
    return { show: show, duration: duration, visits: data.visits };
  }

  // On a phone the layer list starts folded behind its button (folium asks for it unfolded, which
  // suits a desk but would cover a phone's map).
  var layersInit = L.Control.Layers.prototype.initialize;
  L.Control.Layers.prototype.initialize = function (baseLayers, overlays, options) {
    if (window.innerWidth < 640) options = L.extend({}, options, { collapsed: true });
    layersInit.call(this, baseLayers, overlays, options);
  };

  window.MangroveMaps = {
    esc: esc, decode: decode, table: table, polygons: polygons, labels: labels, tracks: tracks,
    cases: cases, incidentMarker: incidentMarker, clusterIcon: clusterIcon, control: control, ready: ready, replay: replay,
    frame: frame, freePadding: freePadding
  };
})();

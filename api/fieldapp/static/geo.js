// Geometry on the device, without a library: distance along a track, which grid a point is in
// (point in polygon against the cached grids), and the GPX a recording is uploaded as.
(function (root) {
  "use strict";
  var MP = root.MP = root.MP || {};
  var R = 6371008.8;  // mean Earth radius (m)

  function metres(a, b) {  // haversine: a few metres off over a patrol, plenty for a readout
    var rad = Math.PI / 180, dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function inRing(x, y, ring) {  // even–odd ray casting
    var inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  function inPolygon(x, y, rings) {
    if (!inRing(x, y, rings[0])) return false;
    for (var k = 1; k < rings.length; k++) if (inRing(x, y, rings[k])) return false;  // a hole
    return true;
  }

  function bounds(geometry) {
    var polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    polys.forEach(function (p) {
      p[0].forEach(function (c) {
        b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]);
        b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
      });
    });
    return b;
  }

  // An index over a FeatureCollection of grids: bounding boxes first, rings only for candidates.
  function GridIndex(collection) {
    this.entries = ((collection && collection.features) || []).filter(function (f) {
      return f.geometry && (f.geometry.type === "Polygon" || f.geometry.type === "MultiPolygon");
    }).map(function (f) { return { feature: f, box: bounds(f.geometry) }; });
  }
  GridIndex.prototype.find = function (lon, lat) {
    for (var i = 0; i < this.entries.length; i++) {
      var e = this.entries[i], b = e.box;
      if (lon < b[0] || lon > b[2] || lat < b[1] || lat > b[3]) continue;
      var g = e.feature.geometry, polys = g.type === "Polygon" ? [g.coordinates] : g.coordinates;
      for (var k = 0; k < polys.length; k++) if (inPolygon(lon, lat, polys[k])) return e.feature;
    }
    return null;
  };
  GridIndex.prototype.bounds = function () {
    if (!this.entries.length) return null;
    return this.entries.reduce(function (b, e) {
      return [Math.min(b[0], e.box[0]), Math.min(b[1], e.box[1]), Math.max(b[2], e.box[2]), Math.max(b[3], e.box[3])];
    }, [Infinity, Infinity, -Infinity, -Infinity]);
  };

  function escapeXml(text) {
    return String(text).replace(/[<>&"']/g, function (c) {
      return { "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" }[c];
    });
  }

  // GPX 1.1 with one <trkseg> per stretch between a pause and the next resume. Times are UTC.
  function gpx(name, fixes) {
    var segments = [], current = null, last = null;
    fixes.forEach(function (f) {
      if (f.segment !== last) { current = []; segments.push(current); last = f.segment; }
      current.push(f);
    });
    var out = ['<?xml version="1.0" encoding="UTF-8"?>',
      '<gpx version="1.1" creator="Mangrove Patrol field app" xmlns="http://www.topografix.com/GPX/1/1">',
      "<trk><name>" + escapeXml(name) + "</name>"];
    segments.forEach(function (seg) {
      out.push("<trkseg>");
      seg.forEach(function (f) {
        out.push('<trkpt lat="' + f.lat.toFixed(7) + '" lon="' + f.lon.toFixed(7) + '">' +
          (f.alt != null && isFinite(f.alt) ? "<ele>" + f.alt.toFixed(1) + "</ele>" : "") +
          "<time>" + new Date(f.t).toISOString() + "</time></trkpt>");
      });
      out.push("</trkseg>");
    });
    out.push("</trk></gpx>");
    return out.join("\n");
  }

  // Numbers in China time, whatever zone the phone is set to.
  var CHINA = "Asia/Shanghai";
  function chinaTime(value, withSeconds) {
    var d = value instanceof Date ? value : new Date(value);
    if (isNaN(d)) return "";
    var parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: CHINA, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute +
      (withSeconds ? ":" + parts.second : "");
  }
  // The value of a datetime-local input showing `d` in China time, and back (the input is read as
  // China time, as its label says).
  function chinaInputValue(d) { return chinaTime(d).replace(" ", "T"); }
  function fromChinaInput(value) { return value ? value + ":00+08:00" : null; }

  MP.geo = {
    metres: metres, GridIndex: GridIndex, gpx: gpx, chinaTime: chinaTime,
    chinaInputValue: chinaInputValue, fromChinaInput: fromChinaInput,
  };
})(self);

"""GPX 1.0 and 1.1 (any namespace, or none): track points per ``trkseg``; routes when there is no track.

One streaming pass with lxml ``iterparse`` filtered to the few tags that matter; each point's
``ele``/``time`` are its direct children, read before the point is cleared. Handled elements are
cleared at once and their empty shells dropped every ``DROP_EVERY`` points, so memory stays flat
whatever the file size.
"""

from __future__ import annotations

from lxml import etree

from geodata.fixes import TrackFixes
from geodata.trackio.sink import FixSink, refuse
from geodata.trackio.xmlsafe import drop_previous, iterparse, local_name, malformed

# Namespace wildcards: GPX 1.0, 1.1 and namespace-less files all match.
TAGS = ["{*}trkpt", "{*}trkseg", "{*}trk", "{*}rtept", "{*}rte", "{*}wpt"]
DROP_EVERY = 1024  # points between two sweeps of cleared siblings
NAN = float("nan")


def read_gpx(source, *, max_fixes: int) -> TrackFixes:
    """Read a GPX file (path or binary file object). The DTD check must already have been done."""
    track = FixSink(max_fixes=max_fixes, source_format="GPX")
    route = FixSink(max_fixes=max_fixes, source_format="GPX")
    sinks = {"trkpt": track, "rtept": route}
    adders = {"trkpt": track.appenders(), "rtept": route.appenders()}
    # full tag → (local name, the same namespace's ele and time tags): children are matched by
    # plain string equality, the cheapest test lxml allows.
    names: dict[str, tuple[str, str, str]] = {}
    waypoints = 0
    handled = 0
    it = iterparse(source, TAGS)
    try:
        for _, el in it:
            tag = el.tag
            name = names.get(tag)
            if name is None:
                namespace = tag[: tag.rfind("}") + 1]
                name = names[tag] = (local_name(tag), namespace + "ele", namespace + "time")
            local, ele_tag, time_tag = name
            if local == "trkpt" or local == "rtept":
                lon_add, lat_add, ele_add, time_add, line_add = adders[local]
                line_add(el.sourceline)
                text = el.get("lat")
                try:
                    lat_add(float(text))
                    text = el.get("lon")
                    lon_add(float(text))
                except (TypeError, ValueError):
                    raise _bad_position(sinks[local], text) from None
                ele = NAN
                when = ""
                for child in el:
                    ctag = child.tag
                    if ctag == ele_tag:
                        text = child.text
                        if text is not None and not text.isspace():
                            try:
                                ele = float(text)
                            except ValueError:
                                sink = sinks[local]
                                raise sink.bad_value(len(sink.lines) - 1, "elevation", text) from None
                    elif ctag == time_tag:
                        when = child.text or ""
                ele_add(ele)
                time_add(when)
                el.clear()
                handled += 1
                if not handled % DROP_EVERY:
                    drop_previous(el)
                    for sink in (track, route):
                        sink.check_count()
                        sink.flush_times()
                continue
            if local == "trkseg" or local == "trk":
                track.end_segment()
            elif local == "rte":
                route.end_segment()
            elif local == "wpt":
                waypoints += 1
            el.clear()
            drop_previous(el)
    except etree.XMLSyntaxError as exc:
        raise malformed(exc) from None

    version = it.root.get("version") if it.root is not None else None
    label = f"GPX {version}" if version in ("1.0", "1.1") else "GPX"
    track.source_format = route.source_format = label
    if len(track):
        return track.finish()
    if len(route):
        route.warn(
            "route-as-track",
            f"the file has no track, only a planned route: its {len(route):,} route points were "
            "read as the track (a route has no times, so no effort can be counted in time)",
            count=len(route),
        )
        return route.finish()
    if waypoints:
        plural = "waypoint" if waypoints == 1 else "waypoints"
        raise refuse("no-track", f"no track in file: only {waypoints} {plural}", waypoints=waypoints)
    raise refuse("no-track", "no track in file: it has no track points, route points or waypoints")


def _bad_position(sink: FixSink, text):
    i = len(sink.lines) - 1
    what = "latitude" if len(sink.lat) == i else "longitude"
    return sink.bad_value(i, what, text)

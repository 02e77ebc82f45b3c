"""Author the reference geodata the project ships: ``python -m geodata.reference.build [OUT_DIR]``.

Everything here is drawn by hand from the facts in the project's domain brief (domain.md); nothing
is copied from a survey. The output is approximate and is meant to be replaced by an official layer
through the grids import. The script is deterministic: running it again rewrites the same bytes.

How a grid is drawn: mangroves fringe the tidal flats, so each town's grids are cells of a *belt*
laid along an approximated shoreline. The shoreline is a hand-placed polyline (smoothed a little);
the belt reaches from it towards the sea, with a width scaled so the town's grids add up to the
area the brief gives. Cuts across the shoreline and, for wide stands, a split into a landward and a
seaward row turn the belt into grids. All cells of one belt come from a single lattice of points, so
neighbouring grids share their edge vertex for vertex (no slivers, no overlaps after rounding).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from geodata.crs import METRIC, WGS84, transformer
from geodata.geojson import DECIMALS, geometry_dicts
from geodata.reference import BORDER_CODE, METADATA

DATA_DIR = Path(__file__).parent / "data"
MU_PER_HA = 15  # domain.md: 15 mu = 1 ha
SAMPLE_M = 100  # spacing of the points along a shoreline
NUMBERS = "{:02d}"


# --- Facts ------------------------------------------------------------------------------------------

# domain.md, "Provincial border": coast (south) to the inland tri-point with Bobai county (north).
BORDER = (
    (109.7813, 21.4595),
    (109.7846, 21.4881),
    (109.7699, 21.5102),
    (109.7686, 21.5338),
    (109.7550, 21.5529),
    (109.7516, 21.5759),
    (109.7438, 21.5977),
    (109.7419, 21.6204),
    (109.7538, 21.6434),
    (109.7624, 21.6669),
    (109.7621, 21.6706),
)

SIDES = (
    {"code": "GD-LJ", "name_zh": "广东·廉江", "name_en": "Guangdong · Lianjiang"},
    {"code": "GX-HP", "name_zh": "广西·合浦", "name_en": "Guangxi · Hepu"},
)

# domain.md, "Town seats (est., ±5 km)". Shatian's seat is not in the brief: it is the project's
# estimate (mid Shatian peninsula, between Dandou Sea and Yingluo harbour).
TOWNS = (
    ("GQ", "高桥镇", "Gaoqiao", "GD-LJ", (109.79, 21.57)),
    ("YZ", "营仔镇", "Yingzi", "GD-LJ", (109.86, 21.47)),
    ("CB", "车板镇", "Cheban", "GD-LJ", (109.90, 21.55)),
    ("AP", "安铺镇", "Anpu", "GD-LJ", (110.03, 21.46)),
    ("LD", "良垌镇", "Liangdong", "GD-LJ", (110.17, 21.50)),
    ("SK", "山口镇", "Shankou", "GX-HP", (109.72, 21.60)),
    ("ST", "沙田镇", "Shatian", "GX-HP", (109.73, 21.52)),
)
TOWN_NOTES = {"ST": "Seat not in the domain brief: the project's estimate (±5 km)."}


# --- Belts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of cells across the belt: ``t0``–``t1`` are fractions of the belt's width from the
    shoreline (0) to its seaward edge (1); ``cuts`` are fractions of the shoreline's length."""

    t0: float
    t1: float
    cuts: tuple[float, ...]


@dataclass(frozen=True)
class Belt:
    """A mangrove belt along ``shore`` (lon/lat, walked with the sea on the right)."""

    town: str
    place_zh: str
    place_en: str
    shore: tuple[tuple[float, float], ...]
    area_ha: float  # the belt's cells together; the width is scaled to meet it
    rows: tuple[Row, ...]
    width: tuple[float, ...] = (1.0,)  # relative width profile, spread evenly along the shore
    heading: str = "ns"  # how sections are named: "ns" north→south, "we" west→east


ONE = (Row(0.0, 1.0, (0.0, 1.0)),)

# Lianjiang. Order along the coast from the border: Gaoqiao (Yingluo Bay east shore), Cheban (the
# bay mouth's east corner: the town faces Yingluo harbour, Yingzi lies to its south), Yingzi (open
# coast), Anpu and Liangdong (north shore of the Anpu Bay inlet). Gaps between towns stand for
# river mouths, harbours and pond embankments; they also keep different towns' grids apart.
LIANJIANG = (
    # "Gaoqiao mangrove core: east shore of Yingluo Bay, about 109.78–109.83 E, 21.47–21.55 N" and
    # "about 40,000 mu": two rows (foot patrol along the dike, boat patrol along the outer creeks).
    Belt(
        "GQ",
        "英罗湾东岸",
        "Yingluo Bay east shore",
        shore=(
            (109.812, 21.553),
            (109.818, 21.538),
            (109.823, 21.522),
            (109.826, 21.505),
            (109.826, 21.488),
            (109.823, 21.471),
        ),
        area_ha=40_000 / MU_PER_HA,
        width=(0.8, 1.0, 1.1, 1.0, 0.9),
        rows=(Row(0.0, 0.45, (0.0, 0.27, 0.52, 0.76, 1.0)), Row(0.45, 1.0, (0.0, 0.22, 0.48, 0.74, 1.0))),
    ),
    # Cheban: no area in the brief; a few hundred hectares is the project's assumption.
    Belt(
        "CB",
        "英罗湾口东角",
        "Yingluo Bay mouth east corner",
        shore=((109.829, 21.463), (109.836, 21.452), (109.848, 21.447), (109.862, 21.444)),
        area_ha=360.0,
        rows=(Row(0.0, 0.5, (0.0, 0.55, 1.0)), Row(0.5, 1.0, (0.0, 0.45, 1.0))),
        heading="we",
    ),
    # "Lianjiang's coast runs east ... (109.78, 21.46) → (109.94, 21.43)"; Yingzi "about 30,000 mu".
    Belt(
        "YZ",
        "营仔沿海",
        "Yingzi coast",
        shore=((109.870, 21.443), (109.895, 21.438), (109.920, 21.433), (109.945, 21.430), (109.968, 21.431)),
        area_ha=30_000 / MU_PER_HA,
        width=(0.9, 1.1, 1.0, 0.9),
        rows=(Row(0.0, 0.5, (0.0, 0.34, 0.67, 1.0)), Row(0.5, 1.0, (0.0, 0.25, 0.5, 0.75, 1.0))),
        heading="we",
    ),
    # "then into the deep Anpu Bay inlet around 110.0–110.3 E": Anpu at its mouth (Jiuzhou river)...
    Belt(
        "AP",
        "安铺港西北岸",
        "Anpu Bay north-west shore",
        shore=((109.990, 21.437), (110.010, 21.446), (110.030, 21.452), (110.055, 21.460)),
        area_ha=380.0,
        width=(1.0, 1.2, 0.9),
        rows=(Row(0.0, 1.0, (0.0, 0.24, 0.5, 0.76, 1.0)),),
        heading="we",
    ),
    # ... and Liangdong further up the inlet.
    Belt(
        "LD",
        "安铺港北岸",
        "Anpu Bay north shore",
        shore=((110.135, 21.480), (110.160, 21.486), (110.185, 21.489), (110.205, 21.488)),
        area_ha=280.0,
        rows=(Row(0.0, 1.0, (0.0, 0.35, 0.68, 1.0)),),
        heading="we",
    ),
)

# Hepu: Shankou Mangrove National Nature Reserve, "109°37′E–109°47′E, 21°28′22″N–21°37′N ... about
# 730 ha of mangrove ... on both sides of the Shatian peninsula; its largest block is about
# 1,400 m × 700 m of Rhizophora ... on the west shore of Yingluo harbour". One zone per belt.
HEPU = (
    # East side of the peninsula (Yingluo harbour west shore), walked north: the sea is east.
    Belt(
        "ST",
        "英罗港西岸南段",
        "Yingluo harbour west shore, south",
        shore=((109.756, 21.479), (109.761, 21.488)),
        area_ha=100.0,
        rows=ONE,
    ),
    # The largest block: a 1,400 m stretch of shore, 98 ha, so the belt comes out 700 m wide.
    Belt(
        "SK",
        "英罗港西岸主林块",
        "Yingluo harbour west shore, main Rhizophora block",
        shore=((109.762, 21.491), (109.764, 21.5036)),
        area_ha=98.0,
        rows=ONE,
    ),
    Belt(
        "SK",
        "英罗港西岸北段",
        "Yingluo harbour west shore, north",
        shore=((109.760, 21.508), (109.755, 21.520), (109.752, 21.535)),
        area_ha=160.0,
        rows=ONE,
    ),
    # West side of the peninsula (Dandou Sea east shore), walked south: the sea is west.
    Belt(
        "ST",
        "丹兜海东岸南段",
        "Dandou Sea east shore, south",
        shore=((109.700, 21.540), (109.705, 21.522), (109.710, 21.505)),
        area_ha=170.0,
        rows=ONE,
    ),
    Belt(
        "SK",
        "丹兜海东岸北段",
        "Dandou Sea east shore, north",
        shore=((109.693, 21.572), (109.697, 21.556)),
        area_ha=110.0,
        rows=ONE,
    ),
    # Head of Dandou Sea below Shankou, walked east: the sea is south.
    Belt(
        "SK",
        "丹兜海湾顶",
        "Dandou Sea head",
        shore=((109.668, 21.596), (109.684, 21.589)),
        area_ha=92.0,
        rows=ONE,
    ),
)

# Section names by how many cells a row has, in walking order.
SECTIONS = {
    "ns": {
        1: [("", "")],
        2: [("北段", "north"), ("南段", "south")],
        3: [("北段", "north"), ("中段", "middle"), ("南段", "south")],
        4: [("北段", "north"), ("中北段", "north-middle"), ("中南段", "south-middle"), ("南段", "south")],
    },
    "we": {
        1: [("", "")],
        2: [("西段", "west"), ("东段", "east")],
        3: [("西段", "west"), ("中段", "middle"), ("东段", "east")],
        4: [("西段", "west"), ("中西段", "west-middle"), ("中东段", "east-middle"), ("东段", "east")],
    },
}
ROWS = {1: [("", "")], 2: [("近岸", "landward"), ("外缘", "seaward")]}


# --- Geometry ---------------------------------------------------------------------------------------


def _chaikin(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Round off the corners of a hand-placed polyline, keeping its ends."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.vstack([points[:1], np.stack([q, r], axis=1).reshape(-1, 2), points[-1:]])
    return points


def _stations(cuts: np.ndarray, length: float) -> np.ndarray:
    """Positions along the shore as fractions of its length: every cut exactly, plus evenly spaced
    points (≤ SAMPLE_M apart) between cuts."""
    pieces = [
        np.linspace(a, b, max(2, int(np.ceil((b - a) * length / SAMPLE_M)) + 1))[:-1]
        for a, b in zip(cuts[:-1], cuts[1:])
    ]
    return np.concatenate([*pieces, cuts[-1:]])


def _lattice(belt: Belt, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Metric points of the belt: ``lattice[i, j]`` is shore station ``u[i]`` pushed seawards to
    width fraction ``levels[j]``. Returns ``lattice, u, levels``."""
    x, y = transformer(WGS84, METRIC).transform(*np.asarray(belt.shore, dtype=float).T)
    shore = _chaikin(np.column_stack([x, y]))
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(shore, axis=0).T))])
    length = along[-1]

    u = _stations(np.unique(np.concatenate([row.cuts for row in belt.rows])), length)
    s = u * length
    points = np.column_stack([np.interp(s, along, shore[:, 0]), np.interp(s, along, shore[:, 1])])
    tangent = np.gradient(points, s, axis=0)
    tangent /= np.hypot(*tangent.T)[:, None]
    seaward = np.column_stack([tangent[:, 1], -tangent[:, 0]])  # right of the walking direction

    profile = np.asarray(belt.width, dtype=float)
    width = scale * np.interp(u, np.linspace(0, 1, len(profile)), profile)
    levels = np.unique([t for row in belt.rows for t in (row.t0, row.t1)])
    offset = width[:, None, None] * levels[None, :, None] * seaward[:, None, :]
    return points[:, None, :] + offset, u, levels


def _cells(belt: Belt, lattice: np.ndarray, u: np.ndarray, levels: np.ndarray):
    """(row, section, polygon) for every cell: out along the row's inner edge, across, back along
    its outer edge. Cells index one lattice, so neighbours share their edge vertex for vertex."""
    cells = []
    for r, row in enumerate(belt.rows):
        inner, outer = np.searchsorted(levels, [row.t0, row.t1])
        stops = np.searchsorted(u, row.cuts)  # the cuts are in ``u`` exactly
        for k, (a, b) in enumerate(zip(stops[:-1], stops[1:])):
            ring = np.concatenate([lattice[a : b + 1, inner], lattice[a : b + 1, outer][::-1]])
            cells.append((r, k, shapely.polygons(ring)))
    return cells


def metric_area_ha(geometries: np.ndarray) -> np.ndarray:
    """Area in hectares of WGS84 geometries, measured in UTM 49N."""
    to_metric = transformer(WGS84, METRIC)
    metric = shapely.transform(geometries, lambda xy: np.column_stack(to_metric.transform(*xy.T)))
    return shapely.area(metric) / 10_000


def belt_cells(belt: Belt) -> list[tuple[int, int, shapely.Polygon]]:
    """The belt's cells in WGS84, rounded as they will be stored, its width scaled to ``area_ha``."""
    scale = 1_000.0
    for _ in range(8):  # area grows almost linearly with width: a few fixed-point steps converge
        lattice, u, levels = _lattice(belt, scale)
        whole = shapely.polygons(np.concatenate([lattice[:, 0], lattice[::-1, -1]]))
        scale *= belt.area_ha * 10_000 / shapely.area(whole)
    lattice, u, levels = _lattice(belt, scale)
    # Transform and round the whole lattice at once, so shared vertices stay identical.
    lonlat = np.column_stack(transformer(METRIC, WGS84).transform(*lattice.reshape(-1, 2).T))
    return _cells(belt, np.round(lonlat, DECIMALS).reshape(lattice.shape), u, levels)


# --- Features ---------------------------------------------------------------------------------------


def _names(belt: Belt, row: int, section: int, number: int, what_zh: str, what_en: str):
    rows = ROWS[len(belt.rows)][row]
    count = len(belt.rows[row].cuts) - 1
    part_zh, part_en = SECTIONS[belt.heading][count][section]
    zh = belt.place_zh + part_zh + (f"·{rows[0]}" if rows[0] else "")
    en = ", ".join(p for p in (belt.place_en, part_en, rows[1]) if p)
    return f"{what_zh} {NUMBERS.format(number)}（{zh}）", f"{what_en} {NUMBERS.format(number)} ({en})"


def lianjiang_grids() -> list[dict]:
    town_names = {code: (zh, en) for code, zh, en, *_ in TOWNS}
    features = []
    for belt in LIANJIANG:
        zh, en = town_names[belt.town]
        for number, (row, section, geom) in enumerate(belt_cells(belt), start=1):
            name_zh, name_en = _names(
                belt, row, section, number, f"{zh}红树林保护网格", f"{en} mangrove protection grid"
            )
            features.append(
                {
                    "code": f"LJ-{belt.town}-{NUMBERS.format(number)}",
                    "name_zh": name_zh,
                    "name_en": name_en,
                    "side": "GD-LJ",
                    "town": belt.town,
                    "team": f"LJ-T-{belt.town}",
                    "station": f"LJ-S-{belt.town}",
                    "kind": "grid",
                    "geometry": geom,
                }
            )
    return features


def hepu_zones() -> list[dict]:
    features = []
    for number, belt in enumerate(HEPU, start=1):
        [(row, section, geom)] = belt_cells(belt)
        name_zh, name_en = _names(
            belt, row, section, number, "山口红树林保护区巡护区", "Shankou mangrove reserve patrol zone"
        )
        features.append(
            {
                "code": f"HP-SK-{NUMBERS.format(number)}",
                "name_zh": name_zh,
                "name_en": name_en,
                "side": "GX-HP",
                "town": belt.town,
                "team": "HP-T-SK",
                "station": "HP-S-SK",
                "kind": "zone",
                "geometry": geom,
            }
        )
    return features


def _station(code: str, name_zh: str, name_en: str, town: str, location, note: str) -> dict:
    side = next(side for town_code, _, _, side, _ in TOWNS if town_code == town)
    return {
        "code": code,
        "name_zh": name_zh,
        "name_en": name_en,
        "side": side,
        "town": town,
        "location": list(location),
        "approximate": True,  # every position here is an estimate
        "note": note,
    }


def places() -> dict:
    seats = {code: seat for code, *_, seat in TOWNS}
    lianjiang = [(code, zh, en) for code, zh, en, side, _ in TOWNS if side == "GD-LJ"]
    stations = [
        # domain.md: "The Gaoqiao management station (高桥管理站) of the national reserve is in Gaoqiao."
        _station(
            "LJ-S-GQ",
            "高桥管理站",
            "Gaoqiao management station",
            "GQ",
            (109.822, 21.552),
            "Gaoqiao management station of the Zhanjiang Mangrove National Nature Reserve; position "
            "estimated on the shore at the north end of the Gaoqiao stand.",
        ),
        *(
            _station(
                f"LJ-S-{code}",
                f"{zh}红树林保护站",
                f"{en} mangrove protection station",
                code,
                seats[code],
                "Assumption of the project: one mangrove protection station per town, placed at the "
                "town seat until the real arrangement is known.",
            )
            for code, zh, en in lianjiang
            if code != "GQ"
        ),
        _station(
            "HP-S-SK",
            "山口红树林保护区管理站",
            "Shankou mangrove reserve station",
            "SK",
            seats["SK"],
            "Station of the Shankou Mangrove National Nature Reserve; position assumed at the "
            "Shankou town seat.",
        ),
    ]
    # domain.md: "Five Party-member patrol vanguard teams (党员护林先锋队)", one per Lianjiang town.
    teams = [
        {
            "code": f"LJ-T-{code}",
            "name_zh": f"{zh}党员护林先锋队",
            "name_en": f"{en} Party-member patrol vanguard team",
            "side": "GD-LJ",
            "town": code,
            "station": f"LJ-S-{code}",
        }
        for code, zh, en in lianjiang
    ]
    teams.append(
        {
            "code": "HP-T-SK",
            "name_zh": "山口红树林保护区巡护队",
            "name_en": "Shankou mangrove reserve patrol team",
            "side": "GX-HP",
            "town": "SK",
            "station": "HP-S-SK",
        }
    )
    towns = [
        {
            "code": code,
            "name_zh": zh,
            "name_en": en,
            "side": side,
            "seat": list(seat),
            **({"note": TOWN_NOTES[code]} if code in TOWN_NOTES else {}),
        }
        for code, zh, en, side, seat in TOWNS
    ]
    return {
        "metadata": {**METADATA, "content": "sides, towns, stations and patrol teams"},
        "sides": list(SIDES),
        "towns": towns,
        "stations": stations,
        "teams": teams,
    }


# --- Output -----------------------------------------------------------------------------------------


def _dumps(document: dict) -> str:
    """JSON with one line per list item (a feature, a town, a team), so a diff shows what changed."""
    members = []
    for key, value in document.items():
        if isinstance(value, list):
            text = "[\n" + ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value) + "\n ]"
        else:
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
        members.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}\n"


def _collection(features: list[dict], content: str) -> str:
    geometries = geometry_dicts([f["geometry"] for f in features])  # CCW rings, 6 decimals
    return _dumps(
        {
            "type": "FeatureCollection",
            "metadata": {**METADATA, "content": content},
            "features": [
                {
                    "type": "Feature",
                    "id": f["code"],
                    "properties": {k: v for k, v in f.items() if k != "geometry"},
                    "geometry": geometry,
                }
                for f, geometry in zip(features, geometries, strict=True)
            ],
        }
    )


def _with_area(features: list[dict]) -> list[dict]:
    """Add ``area_ha`` measured on the geometry as stored (oriented, rounded), in UTM 49N."""
    stored = shapely.from_geojson([json.dumps(g) for g in geometry_dicts([f["geometry"] for f in features])])
    areas = metric_area_ha(stored)
    ordered = ("code", "name_zh", "name_en", "side", "town", "team", "station", "area_ha", "kind")
    out = []
    for feature, geometry, area in zip(features, stored, areas, strict=True):
        props = {**feature, "area_ha": round(float(area), 2)}
        out.append({**{k: props[k] for k in ordered}, "geometry": geometry})
    return out


def _check(features: list[dict], east: bool) -> None:
    """Refuse to write grids that are invalid or have a vertex on the wrong side of the border (the
    tests check whole polygons against the border line)."""
    border = np.asarray(BORDER)
    for feature in features:
        geom = feature["geometry"]
        if not shapely.is_valid(geom):
            raise ValueError(f"{feature['code']}: {shapely.is_valid_reason(geom)}")
        lon, lat = shapely.get_coordinates(geom).T
        border_lon = np.interp(lat, border[:, 1], border[:, 0])  # latitude rises along the border
        if not np.all((lon > border_lon) if east else (lon < border_lon)):
            raise ValueError(f"{feature['code']} crosses the provincial border")


def build(out_dir: Path = DATA_DIR) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    grids, zones = _with_area(lianjiang_grids()), _with_area(hepu_zones())
    _check(grids, east=True)
    _check(zones, east=False)
    border = [
        {
            "code": BORDER_CODE,
            "name_zh": "粤桂省界（廉江—合浦）",
            "name_en": "Guangdong–Guangxi provincial border (Lianjiang–Hepu)",
            "approximate": True,
            "geometry": shapely.linestrings(BORDER),
        }
    ]
    texts = {
        "lianjiang_grids.geojson": _collection(grids, "Lianjiang mangrove protection grids (26)"),
        "hepu_zones.geojson": _collection(zones, "Shankou mangrove reserve patrol zones (Hepu)"),
        "border.geojson": _collection(border, "Guangdong–Guangxi provincial border"),
        "places.json": _dumps(places()),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = out_dir / name
        paths[name].write_text(text, encoding="utf-8", newline="\n")
    return paths


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    for path in build(Path(argv[0]) if argv else DATA_DIR).values():
        print(path)


if __name__ == "__main__":
    main()

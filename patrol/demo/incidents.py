"""A season of demo incidents on the demo patrols, followed through the real incident lifecycle.

Patrol members report what they find along their synthetic patrols (a point on the stored line
where the patrol passed through a grid, a few metres aside, a few minutes after they saw it); the
station manager and the enforcement officers of each side then accept, work, resolve, reject or
mark them duplicate, and a second person verifies and closes. Most are handled within the time
limits, some late, some are still open and overdue now. A dozen incidents near the provincial
border in Yingluo Bay follow scripted stories: referrals to the other side and three joint cases
(五联) with actions of the five mechanisms.

Everything goes through ``patrol.incidents`` and ``patrol.joint`` with explicit ``now=`` times on
one global timeline, so every history is in time order and nothing lies in the future; a step
that would fall after ``now`` is not taken (the incident stays where it is). Deterministic for the
same patrols, ``now`` and seed. Invented data: never real incidents or people.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata import reference
from patrol.accounts import Principal
from patrol.incidents import IncidentReport, aware, refer, report_incident, transition
from patrol.joint import add_action, close_joint_case, open_joint_case
from patrol.models import Boundary, Incident, IncidentCategory, JointCase, Patrol, PatrolVisit, User
from patrol.settings import IncidentSettings

# The demo member who reports for each team (see patrol.demo.patrols.TEAM_MEMBERS).
MEMBERS = ("gq-member-07", "yz-member-12", "cb-member-02", "ap-member-05", "ld-member-09", "sk-member-03")
WORKERS = ("gq-manager", "lj-officer", "hp-officer", "admin")

PER_PATROL = 0.22  # incidents a patrol finds on average: about 2 in 10 patrols

# How often each kind of finding turns up along the patrols (rubbish and cordgrass all the time,
# cutting and illegal ponds now and then, fire rarely).
CATEGORY_WEIGHTS = {
    "rubbish": 0.28,
    "cordgrass": 0.20,
    "fishing_digging": 0.10,
    "pests": 0.08,
    "facilities": 0.07,
    "pollution": 0.07,
    "bird_disturbance": 0.05,
    "cutting": 0.05,
    "aquaculture": 0.05,
    "other": 0.03,
    "fire": 0.02,
}
SEVERITY = {  # (low, medium, high, critical)
    "rubbish": (0.55, 0.40, 0.05, 0.0),
    "cordgrass": (0.25, 0.60, 0.15, 0.0),
    "fishing_digging": (0.20, 0.60, 0.20, 0.0),
    "pests": (0.20, 0.55, 0.25, 0.0),
    "facilities": (0.70, 0.30, 0.0, 0.0),
    "pollution": (0.0, 0.45, 0.45, 0.10),
    "bird_disturbance": (0.30, 0.60, 0.10, 0.0),
    "cutting": (0.0, 0.25, 0.55, 0.20),
    "aquaculture": (0.0, 0.40, 0.50, 0.10),
    "other": (0.60, 0.40, 0.0, 0.0),
    "fire": (0.0, 0.20, 0.50, 0.30),
}
SERIOUS = frozenset({"cutting", "aquaculture", "pollution", "fire"})  # handled higher up, by officers
LEVELS_USUAL = (0.74, 0.20, 0.06)  # village, town, county
LEVELS_SERIOUS = (0.30, 0.45, 0.25)
ESCALATE = {"village": "town", "town": "county"}

DESCRIPTIONS = {
    "rubbish": (
        "林缘堆积塑料瓶、泡沫浮球等海漂垃圾 (plastic bottles and foam floats washed up at the forest edge)",
        "红树枝上缠挂废弃渔网 (discarded fishing net tangled in the mangroves)",
        "堤岸旁有人倾倒建筑垃圾 (construction waste dumped beside the dike)",
        "退潮后滩涂上散落大量生活垃圾 (household rubbish strewn on the flat at low tide)",
    ),
    "cordgrass": (
        "光滩上出现新的互花米草斑块，约 50 平方米 (new Spartina patch of about 50 m² on the open flat)",
        "互花米草向林缘扩散，已侵入幼林 (Spartina spreading into the young mangroves)",
        "去年清除的互花米草复萌 (Spartina regrowing where it was cleared last year)",
    ),
    "fishing_digging": (
        "退潮时多人在林内挖沙虫 (several people digging for peanut worms inside the mangrove at low tide)",
        "潮沟内设有地笼网 (cage nets set across the tidal creek)",
        "有人用耙子大面积耙螺 (large-scale raking for shellfish on the flat)",
        "林缘发现电鱼工具 (electro-fishing gear found at the forest edge)",
    ),
    "pests": (
        "白骨壤叶片大面积被啃食，疑似广州小斑螟 (Avicennia leaves widely eaten, suspected Guangzhou moth)",
        "红树根部发现团水虱蛀洞 (isopod borings in the mangrove roots)",
        "成片红树叶片发黄卷曲 (a stand of mangroves with yellowing, curling leaves)",
    ),
    "facilities": (
        "保护区界桩倾倒 (reserve boundary post knocked over)",
        "宣传牌被损坏 (information sign damaged)",
        "护林围栏被拆除一段 (a section of the protection fence removed)",
    ),
    "pollution": (
        "养殖尾水直排入潮沟，水色发黑有异味 (pond effluent running into the creek, dark and smelly)",
        "潮沟水面有油膜 (oil film on the tidal creek)",
        "生活污水管口排向林区 (domestic sewage pipe draining into the forest)",
    ),
    "bird_disturbance": (
        "有人在林边燃放鞭炮驱鸟 (firecrackers set off to drive birds away)",
        "无人机低飞惊扰鹭鸟群 (a drone flying low over an egret colony)",
        "林内发现捕鸟网 (a mist net for catching birds found in the forest)",
    ),
    "cutting": (
        "林缘数株白骨壤被砍断，断口新鲜 (several Avicennia stems freshly cut at the forest edge)",
        "约 20 株红树幼苗被踩踏、拔除 (about 20 mangrove seedlings trampled or pulled up)",
        "有人砍伐红海榄枝条搭建棚架 (Rhizophora branches cut to build a shelter)",
    ),
    "aquaculture": (
        "滩涂上新围一段网箔，疑似非法围塘 (new net fence on the flat, suspected illegal enclosure)",
        "养殖塘堤坝向红树林内扩建 (a pond dike being extended into the mangrove)",
        "林内插设蚝排竹竿 (oyster-rack poles staked inside the mangrove)",
    ),
    "other": (
        "林内有不明船只停靠 (an unknown boat moored inside the forest)",
        "滩涂上有车辆碾压痕迹 (vehicle tracks across the flat)",
    ),
    "fire": (
        "林缘堤岸有焚烧垃圾的火堆 (a rubbish fire on the dike at the forest edge)",
        "堤上杂草起火，距红树林约 30 米 (grass fire on the dike about 30 m from the mangroves)",
    ),
}
RESOLUTIONS = {
    "rubbish": "已组织清理，约 0.3 吨 (cleared, about 0.3 t)",
    "cordgrass": "已人工拔除并覆盖遮光布 (pulled up by hand and covered with shade cloth)",
    "fishing_digging": "已劝离并收缴网具 (people sent away, gear confiscated)",
    "pests": "已请林业部门防治 (forestry department treated the stand)",
    "facilities": "已修复 (repaired)",
    "pollution": "排口已封堵，责令整改 (outlet sealed, operator ordered to comply)",
    "bird_disturbance": "已劝阻并宣传保护规定 (stopped, rules explained)",
    "cutting": "已立案调查并补植 (case opened, seedlings replanted)",
    "aquaculture": "违建围网已拆除 (illegal enclosure removed)",
    "other": "已核查处理 (checked and dealt with)",
    "fire": "明火已扑灭，未伤及红树林 (fire put out, no mangroves burnt)",
}
REJECTIONS = {
    "fishing_digging": "现场核查为村民正常赶海，不属违规 (checked: ordinary shellfish gathering, allowed)",
    "aquaculture": "为已登记的养殖设施，不在保护范围内 (a registered farm outside the protected area)",
    "cutting": "核查为台风折断的枯枝，非人为砍伐 (checked: storm-broken dead wood, not cutting)",
    "pests": "复查叶片为正常季节性落叶 (checked: normal seasonal leaf fall)",
    "bird_disturbance": "为保护区批准的鸟类监测活动 (a bird survey approved by the reserve)",
}
REJECT_DEFAULT = "现场核查未发现所报情况 (checked on site: nothing found as reported)"
CLOSE_NOTES = ("复查确认已处理 (checked on site: done)", None, "回访确认 (confirmed on a follow-up visit)")
REOPEN_NOTE = "复查发现未处理彻底，请继续 (follow-up found it not fully dealt with: please continue)"


def load_demo_incidents(
    session: Session,
    *,
    days: int,
    settings: IncidentSettings,
    now: datetime | None = None,
    seed: int = 2026,
) -> int:
    """Incidents found on the demo patrols of the last ``days`` days plus the border stories, and
    how they were handled up to ``now``; the number of incidents created. A database that has any
    incident already is left alone, and so is one without demo patrols. The caller commits."""
    settings = getattr(settings, "incidents", settings)  # a whole Settings works too
    now = aware(now) or datetime.now(UTC)
    if days <= 0 or session.scalar(select(func.count(Incident.id))):
        return 0
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(MEMBERS + WORKERS)))}
    if set(WORKERS) - set(users):
        return 0
    season = _Season(session, settings, now, np.random.default_rng(seed), users)
    patrols = season.demo_patrols(days)
    if not patrols:
        return 0  # the demo incidents hang on the demo patrols
    season.plan_patrol_incidents(patrols)
    season.plan_border_stories(days)
    season.run()
    session.flush()
    return len(season.incidents)


@dataclass
class _Finding:
    """An incident a patrol member will report, and what becomes of it."""

    key: str
    reporter: str
    observed: datetime
    reported: datetime
    category: str
    severity: str
    level: str
    lon: float
    lat: float
    description: str
    patrol_id: int | None = None
    grid_id: int | None = None
    outcome: str = "on_time"  # on_time, late, slow, stuck, rejected, duplicate, scripted
    duplicate_of: str | None = None


@dataclass
class _Visit:
    patrol_id: int
    grid_id: int
    entered: datetime
    exited: datetime
    line: shapely.LineString


@dataclass
class _PatrolRow:
    id: int
    reporter: str
    visits: list[_Visit] = field(default_factory=list)


class _Season:
    def __init__(self, session: Session, settings: IncidentSettings, now: datetime, rng, users):
        self.session = session
        self.settings = settings
        self.now = now
        self.rng = rng
        self.principals = {name: Principal.of(user, channel="cli") for name, user in users.items()}
        self.queue: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.order = itertools.count()
        self.findings: list[_Finding] = []
        self.incidents: dict[str, Incident] = {}
        self.cases: dict[str, JointCase] = {}
        active = set(session.scalars(select(IncidentCategory.code).where(IncidentCategory.active)))
        weights = {c: w for c, w in CATEGORY_WEIGHTS.items() if c in active}
        self.categories = list(weights)
        self.weights = np.array(list(weights.values())) / sum(weights.values())

    # --- the timeline ------------------------------------------------------------------------

    def at(self, when: datetime, step: Callable[[datetime], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.order), step))

    def run(self) -> None:
        """Take every step in time order up to ``now``. A step only ever schedules later steps,
        so the first one after ``now`` ends the season."""
        while self.queue:
            when, _, step = heapq.heappop(self.queue)
            if when > self.now:
                break
            step(when)

    # --- where the patrols went --------------------------------------------------------------

    def demo_patrols(self, days: int) -> list[_PatrolRow]:
        """Demo members' patrols that ended within the last ``days`` days, with their passes
        through grids (line and times), oldest first."""
        start = self.now - timedelta(days=days)
        rows = self.session.execute(
            select(Patrol.id, Patrol.started_at, Patrol.ended_at, User.username)
            .join(User, User.id == Patrol.uploaded_by)
            .where(User.username.in_(MEMBERS), Patrol.team.is_not(None))
            .order_by(Patrol.started_at, Patrol.id)
        ).all()
        patrols = {
            r.id: _PatrolRow(r.id, r.username)
            for r in rows
            if r.started_at is not None
            and r.ended_at is not None
            and aware(r.started_at) >= start
            and aware(r.ended_at) <= self.now - timedelta(minutes=30)
        }
        if not patrols:
            return []
        visits = self.session.execute(
            select(
                PatrolVisit.patrol_id,
                PatrolVisit.grid_id,
                PatrolVisit.entered_at,
                PatrolVisit.exited_at,
                func.ST_AsBinary(PatrolVisit.geom),
            )
            .where(
                PatrolVisit.patrol_id.in_(list(patrols)),
                PatrolVisit.grid_id.is_not(None),
                PatrolVisit.geom.is_not(None),
                PatrolVisit.distance_m > 50,
            )
            .order_by(PatrolVisit.patrol_id, PatrolVisit.seq)
        ).all()
        for patrol_id, grid_id, entered, exited, wkb in visits:
            if entered is None or exited is None or wkb is None:
                continue
            line = shapely.from_wkb(bytes(wkb))
            patrols[patrol_id].visits.append(_Visit(patrol_id, grid_id, aware(entered), aware(exited), line))
        return [p for p in patrols.values() if p.visits]

    # --- findings along the patrols ----------------------------------------------------------

    def plan_patrol_incidents(self, patrols: list[_PatrolRow]) -> None:
        rng = self.rng
        for patrol in patrols:
            for _ in range(min(3, int(rng.poisson(PER_PATROL)))):
                finding = self._finding_on(patrol)
                self.findings.append(finding)
                self.at(finding.reported, self._reporter(finding))

    def _finding_on(self, patrol: _PatrolRow) -> _Finding:
        rng = self.rng
        lengths = np.array([v.line.length for v in patrol.visits])
        visit = patrol.visits[int(rng.choice(len(patrol.visits), p=lengths / lengths.sum()))]
        fraction = float(rng.uniform(0.05, 0.95))
        key = f"P{len(self.findings)}"
        observed = visit.entered + (visit.exited - visit.entered) * fraction
        earlier = [
            f
            for f in self.findings
            if f.grid_id == visit.grid_id
            and f.outcome not in ("rejected", "duplicate")
            and observed - timedelta(days=6) <= f.reported <= observed - timedelta(hours=1)
        ]
        if earlier and rng.random() < 0.4:
            # Someone else's report of the same thing: the point of this patrol nearest to it.
            original = earlier[int(rng.integers(len(earlier)))]
            fraction = float(
                shapely.line_locate_point(
                    visit.line, shapely.Point(original.lon, original.lat), normalized=True
                )
            )
            observed = visit.entered + (visit.exited - visit.entered) * fraction
            category, severity, level = original.category, original.severity, original.level
            outcome, duplicate_of = "duplicate", original.key
        else:
            category = self.categories[int(rng.choice(len(self.categories), p=self.weights))]
            severity = str(rng.choice(("low", "medium", "high", "critical"), p=SEVERITY[category]))
            levels = LEVELS_SERIOUS if category in SERIOUS else LEVELS_USUAL
            level = str(rng.choice(("village", "town", "county"), p=levels))
            outcome, duplicate_of = None, None
        point = shapely.line_interpolate_point(visit.line, fraction, normalized=True)
        lon, lat = _offset(point.x, point.y, rng.uniform(3, 25), rng.uniform(0, 2 * np.pi))
        reported = observed + timedelta(minutes=float(rng.uniform(3, 25)))
        texts = DESCRIPTIONS[category]
        finding = _Finding(
            key=key,
            reporter=patrol.reporter,
            observed=observed,
            reported=reported,
            category=category,
            severity=severity,
            level=level,
            lon=lon,
            lat=lat,
            description=texts[int(rng.integers(len(texts)))],
            patrol_id=patrol.id,
            grid_id=visit.grid_id,
            duplicate_of=duplicate_of,
        )
        finding.outcome = outcome or self._outcome(finding)
        return finding

    def _outcome(self, finding: _Finding) -> str:
        """Mostly handled in time; some late; a few rejected; a backlog of recent ones stuck."""
        age = (self.now - finding.reported) / timedelta(days=1)
        limit = self.settings.resolve_within(finding.level)
        outcomes = ("on_time", "late", "slow", "rejected", "stuck")
        p = np.array([0.62, 0.10, 0.09, 0.07, 0.03])
        if limit + 0.5 < age < 30:  # old enough to be overdue, recent enough to be still open
            p[4] = 0.15
        return str(self.rng.choice(outcomes, p=p / p.sum()))

    def _reporter(self, finding: _Finding) -> Callable[[datetime], None]:
        def step(when: datetime) -> None:
            incident = report_incident(
                self.session,
                self.principals[finding.reporter],
                IncidentReport(
                    category=finding.category,
                    lon=finding.lon,
                    lat=finding.lat,
                    description=finding.description,
                    severity=finding.severity,
                    level=finding.level,
                    observed_at=finding.observed,
                    patrol_id=finding.patrol_id,
                ),
                self.settings,
                now=when,
            )
            self.incidents[finding.key] = incident
            if finding.outcome != "scripted":
                self._plan_handling(finding, incident, when)

        return step

    # --- handling --------------------------------------------------------------------------

    def _handlers(self, incident: Incident) -> tuple[str, str]:
        """Who works an incident and who verifies the work (never the same person)."""
        if incident.side == "GX-HP":
            return "hp-officer", "admin"
        if incident.town == "GQ" and incident.category not in SERIOUS | {"fishing_digging"}:
            return "gq-manager", "lj-officer"
        return "lj-officer", "gq-manager" if incident.town == "GQ" else "admin"

    def _plan_handling(self, finding: _Finding, incident: Incident, reported: datetime) -> None:
        rng = self.rng
        handler, verifier = self._handlers(incident)

        def hours(h: float) -> datetime:
            return reported + timedelta(hours=float(h))

        steps: list[tuple[datetime, str, str, dict]] = []
        outcome = finding.outcome
        original = self.incidents.get(finding.duplicate_of or "")
        if outcome == "duplicate" and (original is None or original.side != incident.side):
            outcome = "on_time"
        if outcome == "duplicate":
            steps.append(
                (
                    hours(rng.uniform(0.3, 3.5)),
                    handler,
                    "duplicate",
                    {
                        "duplicate_of": original.id,
                        "note": f"与 #{original.id} 为同一问题 (same as #{original.id})",
                    },
                )
            )
            self._schedule(finding.key, steps)
            return
        if outcome == "rejected":
            note = REJECTIONS.get(finding.category, REJECT_DEFAULT)
            if rng.random() < 0.5:
                steps.append((hours(rng.uniform(0.3, 3.5)), handler, "reject", {"note": note}))
            else:
                accepted = rng.uniform(0.3, 3.5)
                steps.append((hours(accepted), handler, "accept", {}))
                steps.append((hours(accepted + rng.uniform(3, 30)), handler, "reject", {"note": note}))
            self._schedule(finding.key, steps)
            return

        level = finding.level
        escalate = {}
        if level in ESCALATE and rng.random() < 0.08:
            level = ESCALATE[level]
            escalate = {
                "level": level,
                "note": "情况较复杂，提级处理 (more involved than it looked: escalated)",
            }
        limit_h = self.settings.resolve_within(level) * 24
        accept_h = self.settings.accept_within_hours
        if outcome == "late" or (outcome == "stuck" and rng.random() < 0.3):
            accepted = rng.uniform(accept_h + 0.5, 30)
        else:
            accepted = float(np.clip(np.exp(rng.normal(0.0, 0.8)), 0.15, accept_h - 0.1))
        if outcome == "stuck" and rng.random() < 0.35:
            self._schedule(finding.key, steps)  # nobody has answered it yet
            return
        steps.append((hours(accepted), handler, "accept", escalate))
        if outcome in ("late", "slow"):
            resolved = limit_h + rng.uniform(2, 60)
        elif outcome == "stuck":
            resolved = None
        else:
            resolved = max(accepted + 1, limit_h * rng.uniform(0.2, 0.92))
        if rng.random() < 0.5 or resolved is None:
            until = resolved if resolved is not None else limit_h
            started = accepted + max(0.2, (until - accepted) * rng.uniform(0.1, 0.6))
            steps.append((hours(started), handler, "start", {}))
        if resolved is None:
            self._schedule(finding.key, steps)
            return
        note = RESOLUTIONS[finding.category]
        steps.append((hours(resolved), handler, "resolve", {"note": note}))
        after = resolved + rng.uniform(1.5, 40)
        if outcome != "late" and rng.random() < 0.06:
            steps.append((hours(after), verifier, "reopen", {"note": REOPEN_NOTE}))
            after += rng.uniform(4, 36)
            steps.append((hours(after), handler, "resolve", {"note": note}))
            after += rng.uniform(2, 24)
        close_note = CLOSE_NOTES[int(rng.integers(len(CLOSE_NOTES)))]
        steps.append((hours(after), verifier, "close", {"note": close_note}))
        self._schedule(finding.key, steps)

    def _schedule(self, key: str, steps: list[tuple[datetime, str, str, dict]]) -> None:
        for when, actor, action, options in steps:
            self.at(when, self._action(key, actor, action, dict(options)))

    def _action(self, key: str, actor: str, action: str, options: dict) -> Callable[[datetime], None]:
        def step(when: datetime) -> None:
            incident = self.incidents[key]
            principal = self.principals[actor]
            if action == "refer":
                refer(
                    self.session,
                    principal,
                    incident.id,
                    options["to"],
                    self.settings,
                    version=incident.version,
                    note=options.get("note"),
                    now=when,
                )
                return
            duplicate_of = options.get("duplicate_of")
            if isinstance(duplicate_of, str):  # a scripted incident's key
                duplicate_of = self.incidents[duplicate_of].id
            transition(
                self.session,
                principal,
                incident.id,
                action,
                self.settings,
                version=incident.version,
                note=options.get("note"),
                duplicate_of=duplicate_of,
                level=options.get("level"),
                now=when,
            )

        return step

    # --- Yingluo Bay: the border stories -----------------------------------------------------

    def plan_border_stories(self, days: int) -> None:
        """Scripted incidents within a kilometre or so of the border, referrals across it and
        three joint cases, spread over the season (scaled to ``days``)."""
        border = self._border()
        span = float(min(days, 90))
        starts: dict[str, datetime] = {}
        for story in BORDER_STORIES:
            key, anchor = story["key"], story.get("after")
            if anchor:
                observed = starts[anchor[0]] + timedelta(hours=anchor[1])
            else:
                day = (self.now - timedelta(days=max(story["ago"] * span, 1.0))).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                observed = day + timedelta(hours=float(self.rng.uniform(0, 2.5)))  # 08:00–10:30 local
            reported = observed + timedelta(minutes=float(self.rng.uniform(5, 30)))
            starts[key] = reported
            lon, lat = _beside_border(border, story["lat"], story["east_m"])
            finding = _Finding(
                key=key,
                reporter=story["by"],
                observed=observed,
                reported=reported,
                category=story["category"],
                severity=story["severity"],
                level=story["level"],
                lon=lon,
                lat=lat,
                description=story["text"],
                outcome="scripted",
            )
            self.findings.append(finding)
            self.at(reported, self._reporter(finding))
            steps = []
            for hours, actor, action, *options in story.get("steps", ()):
                steps.append(
                    (reported + timedelta(hours=hours), actor, action, options[0] if options else {})
                )
            self._schedule(key, steps)
        for case in JOINT_CASES:
            base = starts[case["after"][0]]
            opened = base + timedelta(hours=case["after"][1])
            self.at(opened, self._opener(case))
            for hours, actor, mechanism, note in case["actions"]:
                self.at(base + timedelta(hours=hours), self._case_action(case["key"], actor, mechanism, note))
            if "close" in case:
                hours, actor = case["close"]
                self.at(base + timedelta(hours=hours), self._case_closer(case["key"], actor))

    def _border(self) -> shapely.LineString:
        wkb = self.session.scalar(
            select(func.ST_AsBinary(Boundary.geom)).where(Boundary.code == reference.BORDER_CODE)
        )
        return shapely.from_wkb(bytes(wkb)) if wkb is not None else reference.load_border().geometry.iloc[0]

    def _opener(self, case: dict) -> Callable[[datetime], None]:
        def step(when: datetime) -> None:
            self.cases[case["key"]] = open_joint_case(
                self.session,
                self.principals[case["by"]],
                title=case["title"],
                incident_ids=[self.incidents[k].id for k in case["incidents"]],
                participants=list(case["participants"]),
                settings=self.settings,
                now=when,
            )

        return step

    def _case_action(self, key: str, actor: str, mechanism: str, note: str) -> Callable[[datetime], None]:
        def step(when: datetime) -> None:
            add_action(
                self.session,
                self.principals[actor],
                self.cases[key].id,
                mechanism=mechanism,
                note=note,
                now=when,
            )

        return step

    def _case_closer(self, key: str, actor: str) -> Callable[[datetime], None]:
        def step(when: datetime) -> None:
            case = self.cases[key]
            close_joint_case(self.session, self.principals[actor], case.id, version=case.version, now=when)

        return step


def _offset(lon: float, lat: float, metres: float, bearing: float) -> tuple[float, float]:
    """A point ``metres`` away in direction ``bearing`` (radians from east), to the centimetre."""
    dx, dy = metres * np.cos(bearing), metres * np.sin(bearing)
    return (
        round(float(lon + dx / (111_320 * np.cos(np.radians(lat)))), 7),
        round(float(lat + dy / 110_574), 7),
    )


def _beside_border(border, lat: float, east_m: float) -> tuple[float, float]:
    """The point ``east_m`` metres east (negative: west) of where the border crosses ``lat``."""
    coords = shapely.get_coordinates(border)
    order = np.argsort(coords[:, 1], kind="stable")
    border_lon = float(np.interp(lat, coords[order, 1], coords[order, 0]))
    return _offset(border_lon, lat, abs(east_m), 0.0 if east_m >= 0 else np.pi)


# The border stories. ``ago``: when it was found, as a share of the season (at least a day ago);
# ``after``: (story, hours) after that story was reported. Steps: (hours after this report,
# who, action[, options]). Positions: a latitude in Yingluo Bay and metres east of the border.
BORDER_STORIES: list[dict] = [
    {
        "key": "B1",
        "ago": 0.80,
        "lat": 21.4975,
        "east_m": 250,
        "by": "gq-member-07",
        "category": "rubbish",
        "severity": "medium",
        "level": "town",
        "text": "大潮后英罗湾东岸林缘堆积大量泡沫浮球和废弃渔网，疑似来自对岸养殖区 "
        "(after the spring tide, foam floats and old nets piled up along the east shore of Yingluo Bay, "
        "probably from the farms across the bay)",
        "steps": [
            (1.5, "lj-officer", "accept"),
            (44, "lj-officer", "resolve", {"note": "两地联合清理海漂垃圾约 1.2 吨 (1.2 t cleared jointly)"}),
            (56, "gq-manager", "close", {"note": "复查确认已清理 (checked on site: cleared)"}),
        ],
    },
    {
        "key": "B3",
        "after": ("B1", 18),
        "lat": 21.4925,
        "east_m": 600,
        "by": "lj-officer",
        "category": "rubbish",
        "severity": "low",
        "level": "village",
        "text": "现场核查时在南侧又发现一处海漂垃圾带 (a second belt of washed-up rubbish further south)",
        "steps": [
            (0.7, "gq-manager", "accept"),
            (20, "gq-manager", "resolve", {"note": "已清理 (cleared)"}),
            (30, "lj-officer", "close"),
        ],
    },
    {
        "key": "B4",
        "ago": 0.45,
        "lat": 21.4850,
        "east_m": -700,
        "by": "sk-member-03",
        "category": "aquaculture",
        "severity": "high",
        "level": "county",
        "text": "英罗港西岸滩涂新建围网约 200 米，圈占红树林幼苗区 "
        "(a new net enclosure of about 200 m on the west-shore flat, fencing in mangrove seedlings)",
        "steps": [
            (2, "hp-officer", "accept"),
            (30, "hp-officer", "start"),
            (150, "hp-officer", "resolve", {"note": "围网已全部拆除 (the enclosure is entirely removed)"}),
            (170, "admin", "close", {"note": "复核通过 (verified)"}),
        ],
    },
    {
        "key": "B5",
        "after": ("B4", 3),
        "lat": 21.4905,
        "east_m": 400,
        "by": "gq-member-07",
        "category": "aquaculture",
        "severity": "medium",
        "level": "town",
        "text": "围网越过省界延伸至东岸滩涂 (the net enclosure reaches across the border onto the east-shore flat)",
        "steps": [
            (1, "lj-officer", "accept"),
            (
                4,
                "lj-officer",
                "refer",
                {
                    "to": "GX-HP",
                    "note": "经营者为山口一侧养殖户，转合浦处理 (the operator farms on the Shankou side)",
                },
            ),
            (147, "hp-officer", "resolve", {"note": "东岸围网已拆除 (the east-shore part is removed)"}),
            (165, "lj-officer", "close", {"note": "廉江侧复查确认 (checked from the Lianjiang side)"}),
        ],
    },
    {
        "key": "B6",
        "ago": 0.16,
        "lat": 21.4995,
        "east_m": -500,
        "by": "sk-member-03",
        "category": "pollution",
        "severity": "high",
        "level": "town",
        "text": "潮沟水体发黑发臭，有死鱼，污水自东侧养殖塘流入 "
        "(the creek is black and smelly with dead fish; the effluent comes from ponds to the east)",
        "steps": [
            (1, "hp-officer", "accept"),
            (
                5,
                "hp-officer",
                "refer",
                {
                    "to": "GD-LJ",
                    "note": "排污口位于廉江一侧，请廉江核查 (the outlet is on the Lianjiang side)",
                },
            ),
            (26, "hp-officer", "start", {"note": "等待水质恢复后复测 (re-testing once the water recovers)"}),
        ],
    },
    {
        "key": "B7",
        "after": ("B6", 7),
        "lat": 21.5005,
        "east_m": 700,
        "by": "gq-member-07",
        "category": "pollution",
        "severity": "high",
        "level": "town",
        "text": "养殖塘排水口未经处理直排入英罗港 (a pond outlet discharging untreated water into Yingluo harbour)",
        "steps": [
            (0.5, "lj-officer", "accept"),
            (
                55,
                "lj-officer",
                "resolve",
                {"note": "排水口已封堵，养殖户停止排放 (outlet sealed, discharge stopped)"},
            ),
            (70, "gq-manager", "close"),
        ],
    },
    {
        "key": "B8",
        "ago": 0.60,
        "lat": 21.4780,
        "east_m": 300,
        "by": "gq-member-07",
        "category": "fishing_digging",
        "severity": "medium",
        "level": "village",
        "text": "两艘外来船只在省界东侧滩涂耙螺 (two boats from elsewhere raking shellfish east of the border)",
        "steps": [
            (6, "lj-officer", "accept"),
            (
                8,
                "lj-officer",
                "refer",
                {
                    "to": "GX-HP",
                    "note": "船只来自山口一侧，转合浦处理 (the boats came from the Shankou side)",
                },
            ),
            (30, "hp-officer", "start"),
            (
                84,
                "hp-officer",
                "resolve",
                {"note": "已约谈船主并收缴耙具 (owners warned, rakes confiscated)"},
            ),
            (96, "lj-officer", "close"),
        ],
    },
    {
        "key": "B9",
        "ago": 0.08,
        "lat": 21.4700,
        "east_m": -150,
        "by": "sk-member-03",
        "category": "facilities",
        "severity": "low",
        "level": "village",
        "text": "省界界碑旁保护区界桩倾倒 (a reserve boundary post next to the provincial marker knocked over)",
    },
    {
        "key": "B10",
        "ago": 0.33,
        "lat": 21.5040,
        "east_m": 200,
        "by": "gq-member-07",
        "category": "cordgrass",
        "severity": "medium",
        "level": "county",
        "text": "省界附近光滩互花米草斑块蔓延约 300 平方米 (a Spartina patch of about 300 m² spreading near the border)",
        "steps": [
            (2, "gq-manager", "accept"),
            (
                50,
                "gq-manager",
                "start",
                {"note": "已联系治理队伍，待小潮施工 (removal crew booked for the neap tide)"},
            ),
        ],
    },
    {
        "key": "B10b",
        "after": ("B10", 72),
        "lat": 21.5030,
        "east_m": 350,
        "by": "lj-officer",
        "category": "cordgrass",
        "severity": "low",
        "level": "village",
        "text": "省界附近滩涂发现互花米草 (Spartina on the flat near the border)",
        "steps": [
            (
                1.2,
                "gq-manager",
                "duplicate",
                {
                    "duplicate_of": "B10",
                    "note": "同一互花米草斑块，已在处理 (the same patch, already in hand)",
                },
            ),
        ],
    },
    {
        "key": "B11",
        "ago": 0.25,
        "lat": 21.4900,
        "east_m": -1200,
        "by": "sk-member-03",
        "category": "bird_disturbance",
        "severity": "medium",
        "level": "village",
        "text": "无人机在鹭鸟繁殖林上空低飞 (a drone flying low over the egret breeding stand)",
        "steps": [
            (1, "hp-officer", "accept"),
            (
                5,
                "hp-officer",
                "resolve",
                {"note": "已劝离操作者并宣传禁飞规定 (operator sent away, no-fly rule explained)"},
            ),
            (26, "admin", "close"),
        ],
    },
    {
        "key": "B13",
        "ago": 0.52,
        "lat": 21.4820,
        "east_m": -900,
        "by": "sk-member-03",
        "category": "bird_disturbance",
        "severity": "low",
        "level": "village",
        "text": "林缘疑似有人张网捕鸟 (what looks like nets for trapping birds at the forest edge)",
        "steps": [
            (
                2.5,
                "hp-officer",
                "reject",
                {
                    "note": "核查为科研团队的鸟类环志网，持有保护区许可 (bird-ringing nets of a permitted research team)"
                },
            ),
        ],
    },
]

JOINT_CASES: list[dict] = [
    {
        "key": "J1",
        "title": "英罗湾东岸跨界海漂垃圾联合清理 (Yingluo Bay east shore: cross-border marine litter)",
        "after": ("B1", 20),
        "by": "lj-officer",
        "incidents": ("B1", "B3"),
        "participants": ("lj-officer", "hp-officer", "gq-manager"),
        "actions": [
            (
                22,
                "hp-officer",
                "supervision",
                "督促山口一侧养殖户回收废弃泡沫浮球和渔网 "
                "(Shankou farms told to collect their discarded floats and nets)",
            ),
            (
                30,
                "lj-officer",
                "prevention",
                "两地巡护队和执法人员联合清理英罗湾东岸海漂垃圾约 1.2 吨 "
                "(patrol teams and officers of both sides cleared about 1.2 t together)",
            ),
            (
                50,
                "gq-manager",
                "monitoring",
                "在东岸设 3 个海漂垃圾监测点，每次大潮后拍照记录 "
                "(three litter monitoring points, photographed after every spring tide)",
            ),
        ],
        "close": (60, "lj-officer"),
    },
    {
        "key": "J2",
        "title": "英罗港跨省界非法围网 (Yingluo harbour: illegal net enclosure across the border)",
        "after": ("B4", 24),
        "by": "hp-officer",
        "incidents": ("B4", "B5"),
        "participants": ("hp-officer", "lj-officer"),
        "actions": [
            (
                28,
                "lj-officer",
                "monitoring",
                "无人机航拍：围网长约 260 米，其中约 60 米在廉江一侧 "
                "(drone survey: about 260 m of nets, some 60 m on the Lianjiang side)",
            ),
            (
                72,
                "hp-officer",
                "enforcement",
                "两地执法人员联合约谈养殖户，责令 3 日内自行拆除 "
                "(officers of both sides met the operator: remove it within 3 days)",
            ),
            (
                146,
                "lj-officer",
                "enforcement",
                "联合执法拆除剩余围网约 80 米，暂扣网具 "
                "(joint enforcement removed the remaining 80 m and seized the nets)",
            ),
            (
                240,
                "hp-officer",
                "supervision",
                "复查：围网已拆除，幼苗区未再被圈占 "
                "(follow-up: the nets are gone and the seedlings are free)",
            ),
            (
                250,
                "lj-officer",
                "prevention",
                "约定每月大潮期两地联合巡查英罗港两岸滩涂 "
                "(monthly joint patrol of both shores at spring tide agreed)",
            ),
        ],
    },
    {
        "key": "J3",
        "title": "英罗港养殖尾水跨界污染 (Yingluo harbour: pond effluent across the border)",
        "after": ("B6", 8),
        "by": "lj-officer",
        "incidents": ("B6", "B7"),
        "participants": ("lj-officer", "hp-officer", "gq-manager"),
        "actions": [
            (
                9,
                "lj-officer",
                "emergency",
                "联合应急：封堵养殖塘排水口，通知养殖户立即停止排放 "
                "(joint emergency response: outlet blocked, discharge stopped at once)",
            ),
            (
                26,
                "hp-officer",
                "monitoring",
                "两岸潮沟各取 3 个水样送检 (three water samples from each shore sent to the lab)",
            ),
            (
                75,
                "gq-manager",
                "monitoring",
                "检测结果：氨氮超标约 2 倍，溶解氧偏低 "
                "(results: ammonia about twice the limit, low dissolved oxygen)",
            ),
            (
                100,
                "lj-officer",
                "enforcement",
                "廉江生态环境部门对养殖户立案查处 "
                "(Lianjiang's environment bureau opened a case against the operator)",
            ),
            (
                150,
                "hp-officer",
                "prevention",
                "建立英罗港养殖尾水排口联合巡查台账，两周互通一次 "
                "(a joint register of pond outlets, shared every two weeks)",
            ),
        ],
    },
]

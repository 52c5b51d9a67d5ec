"""Reps and teams from the WeCom and DingTalk directories (`leadbot reps sync`).

A department becomes a team named by its name; a department's leaders (WeCom department_leader /
is_leader_in_dept, DingTalk leader) get role manager and the first of them becomes the team's
manager; everyone else is a rep. The upsert goes through crm.importing.import_reps, so a
directory row is validated exactly like a CSV row.

What the sync may change on an existing rep: identity (name, platform userids), team, role,
manager and status. What sales ops set by hand (weight, capacity, regions, product lines,
delivery, attributes) is never touched; neither is the admin role or an on_leave status.

One person on both platforms becomes ONE rep. Who is the same person, in this order:
1. an existing rep already carries both userids (an earlier sync or a CSV import linked them);
2. the same mobile number on both platforms (when both directories return one: WeCom apps
   created after 2022-06-20 get no mobile from user/list);
3. otherwise the exact same name in the same team (department name), and only when that name is
   unique in that team on both platforms and the two mobiles do not contradict each other; the
   same goes for a new person and an existing rep known only on the other platform (so a
   WeCom-only run after a DingTalk-only one links, rather than duplicates);
4. otherwise they stay separate reps. A pairing that would join two existing reps is refused
   (noted in the report): that is a merge for a person to decide.
Name, team and role come from WeCom when the person is there, else from DingTalk; a rep with a
WeCom userid keeps them when only DingTalk is synced, so one-platform runs never flip-flop.

A rep is marked left (and their open leads re-routed through flow.rep_left) when the directory
lists them as disabled or gone (WeCom status 2/5, or absent), but only when every platform the rep
has a userid on was read in this run, the platform answered at least one member (an empty answer
is a permission problem, not a mass resignation) and, with a root department, the rep's team lies
under it. Any API error aborts the sync before anything is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from identity.normalize import normalize_phone
from crm.importing import import_reps

ACTOR = "directory-sync"
PLATFORMS = ("wecom", "dingtalk")
PRESERVED = ("weight", "capacity", "regions", "product_lines", "delivery", "attributes")
LABEL = {"wecom": "WeCom", "dingtalk": "DingTalk"}
WECOM_STATES = {1: "active", 2: "disabled", 4: "not activated", 5: "left the company"}

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Department:
    platform: str
    dept_id: int
    name: str
    parent_id: int | None
    members: int


@dataclass(frozen=True, slots=True)
class Person:
    platform: str
    userid: str
    name: str
    mobile: str  # E.164 of a mobile number, "" when the directory gave none
    dept_id: int
    team: str
    leader: bool
    present: bool  # False: disabled or left the company on that platform
    state: str
    seq: int  # discovery order (leaders of a department first): decides the team's manager


@dataclass(frozen=True, slots=True)
class Change:
    rep: str  # the rep's id (external id)
    name: str
    reason: str


@dataclass
class SyncReport:
    platforms: tuple[str, ...]
    dry_run: bool
    departments: list[Department] = field(default_factory=list)
    created: list[Change] = field(default_factory=list)
    updated: list[Change] = field(default_factory=list)
    left: list[Change] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    rejected: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rerouted: int = 0

    def summary(self) -> str:
        head = (f"reps sync ({', '.join(self.platforms)}): {len(self.created)} created, {len(self.updated)} updated, "
                f"{len(self.left)} left, {len(self.unchanged)} unchanged, {len(self.rejected)} rejected")
        if self.dry_run:
            return head + " (dry run: nothing was changed)"
        return head + f"; {self.rerouted} open lead(s) re-routed"

    def lines(self) -> list[str]:
        out = [self.summary()]
        for label, changes in (("created", self.created), ("updated", self.updated), ("left", self.left),
                               ("rejected", self.rejected)):
            out += [f"  {label} {c.name} ({c.rep}): {c.reason}" for c in changes]
        out += [f"  note: {n}" for n in self.notes]
        return out


# ------------------------------------------------------------------------------ reading

def _mobile(raw: Any) -> str:
    parsed = normalize_phone(str(raw)) if raw else None
    return parsed[1] if parsed and parsed[0] == "mobile" else ""


def _bfs(roots: Sequence[int], children: Mapping[int, list[int]]) -> list[int]:
    order, queue, seen = [], list(roots), set()
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        queue += children.get(current, [])
    return order


async def read_wecom(client: Any, root: int | None, progress: Progress) -> tuple[list[Department], list[Person]]:
    raw = await client.list_departments(root)
    depts = {int(d["id"]): d for d in raw if str(d.get("id", "")).lstrip("-").isdigit()}
    children: dict[int, list[int]] = defaultdict(list)
    for d in sorted(depts.values(), key=lambda d: (-int(d.get("order") or 0), int(d["id"]))):
        parent = int(d.get("parentid") or 0)
        if parent in depts and parent != int(d["id"]):
            children[parent].append(int(d["id"]))
    roots = [root] if root is not None and root in depts else [i for i, d in depts.items()
                                                             if int(d.get("parentid") or 0) not in depts]
    walked: list[Department] = []
    seen: dict[str, list[tuple[int, bool, dict[str, Any], int]]] = defaultdict(list)
    seq = 0
    for dept_id in _bfs(roots, children):
        d = depts[dept_id]
        name = str(d.get("name") or dept_id)
        leaders = [str(u) for u in d.get("department_leader") or []]
        users = await client.list_department_users(dept_id)
        users.sort(key=lambda u: leaders.index(u.get("userid")) if u.get("userid") in leaders else len(leaders))
        for u in users:
            if not u.get("userid"):
                continue
            flags = dict(zip(u.get("department") or [], u.get("is_leader_in_dept") or []))
            leader = u["userid"] in leaders or bool(flags.get(dept_id))
            seen[str(u["userid"])].append((dept_id, leader, u, seq))
            seq += 1
        parent = int(d.get("parentid") or 0)
        walked.append(Department("wecom", dept_id, name, parent if parent in depts else None, len(users)))
        progress(f"wecom: {name} (#{dept_id}): {len(users)} member(s)")
    people = []
    for userid, places in seen.items():
        main = places[0][2].get("main_department")
        dept_id, leader, u, order = next((p for p in places if p[0] == main), places[0])
        try:
            status = int(u.get("status") or 1)
        except (TypeError, ValueError):
            status = 1
        people.append(Person("wecom", userid, str(u.get("name") or userid), _mobile(u.get("mobile")), dept_id,
                             str(depts[dept_id].get("name") or dept_id), leader, status not in (2, 5),
                             WECOM_STATES.get(status, f"status {status}"), order))
    return walked, people


async def read_dingtalk(client: Any, root: int | None, progress: Progress) -> tuple[list[Department], list[Person]]:
    root = 1 if root is None else int(root)
    top = await client.get_department(root)
    queue = [(root, str(top.get("name") or root), top.get("parent_id"))]
    walked: list[Department] = []
    seen: dict[str, tuple[int, str, bool, dict[str, Any], int]] = {}
    visited: set[int] = set()
    seq = 0
    while queue:
        dept_id, name, parent = queue.pop(0)
        if dept_id in visited:
            continue
        visited.add(dept_id)
        users = await client.list_department_users(dept_id)
        users.sort(key=lambda u: not u.get("leader"))
        for u in users:
            userid = str(u.get("userid") or "")
            if userid and userid not in seen:
                seen[userid] = (dept_id, name, bool(u.get("leader")), u, seq)
            seq += 1
        walked.append(Department("dingtalk", dept_id, name, int(parent) if parent and dept_id != root else None,
                                 len(users)))
        progress(f"dingtalk: {name} (#{dept_id}): {len(users)} member(s)")
        for sub in await client.list_sub_departments(dept_id):
            if str(sub.get("dept_id", "")).isdigit():
                queue.append((int(sub["dept_id"]), str(sub.get("name") or sub["dept_id"]), dept_id))
    # DingTalk deletes people who leave: whoever is listed still works there (active=False only
    # means they have not activated DingTalk yet).
    people = [Person("dingtalk", userid, str(u.get("name") or userid), _mobile(u.get("mobile")), dept_id, name,
                     leader, True, "active" if u.get("active", True) else "not activated", order)
              for userid, (dept_id, name, leader, u, order) in seen.items()]
    return walked, people


# ------------------------------------------------------------------------------ matching

@dataclass
class _Group:
    wecom: Person | None = None
    dingtalk: Person | None = None
    rep: Any = None  # dto.Rep of an existing rep
    how: str = ""  # why the two platforms' people were joined

    def people(self) -> list[Person]:
        return [p for p in (self.wecom, self.dingtalk) if p is not None]

    @property
    def seq(self) -> tuple[int, int]:
        first = self.wecom or self.dingtalk
        return (0 if self.wecom else 1, first.seq if first else 0)


def _pair(persons: dict[str, list[Person]], reps: Sequence[Any], notes: list[str]) -> list[_Group]:
    by_id = {"wecom": {r.wecom_userid: r for r in reps if r.wecom_userid},
             "dingtalk": {r.dingtalk_userid: r for r in reps if r.dingtalk_userid}}
    groups: list[_Group] = []
    of_rep: dict[int, _Group] = {}
    for platform in PLATFORMS:
        for p in persons.get(platform, []):
            rep = by_id[platform].get(p.userid)
            group = of_rep.get(rep.id) if rep is not None else None
            if group is None:
                group = _Group(rep=rep)
                groups.append(group)
                if rep is not None:
                    of_rep[rep.id] = group
            elif platform == "dingtalk":
                group.how = "already linked"
            setattr(group, platform, p)

    def free(g: _Group, other: str) -> bool:
        return getattr(g, other) is None and (g.rep is None or not getattr(g.rep, f"{other}_userid"))

    def join(w: _Group, d: _Group, how: str) -> bool:
        if w.rep is not None and d.rep is not None:
            notes.append(f"{w.wecom.name} (WeCom {w.wecom.userid}) and {d.dingtalk.name} (DingTalk "
                         f"{d.dingtalk.userid}) look like one person ({how}) but are two reps "
                         f"({w.rep.external_id}, {d.rep.external_id}): kept apart, merge them by hand")
            return False
        w.dingtalk, w.rep, w.how = d.dingtalk, w.rep or d.rep, how
        groups.remove(d)
        return True

    wecom_side = [g for g in groups if g.wecom is not None and free(g, "dingtalk")]
    ding_side = [g for g in groups if g.dingtalk is not None and free(g, "wecom")]
    # 1. the same mobile, unique on both sides
    by_mobile: dict[str, list[_Group]] = defaultdict(list)
    for g in ding_side:
        if g.dingtalk.mobile:
            by_mobile[g.dingtalk.mobile].append(g)
    wecom_mobiles = defaultdict(int)
    for g in wecom_side:
        if g.wecom.mobile:
            wecom_mobiles[g.wecom.mobile] += 1
    for g in list(wecom_side):
        match = by_mobile.get(g.wecom.mobile) if g.wecom.mobile else None
        if match and len(match) == 1 and wecom_mobiles[g.wecom.mobile] == 1 and join(g, match[0], "same mobile"):
            wecom_side.remove(g)
            ding_side.remove(match[0])
    # 2. the exact same name in the same team, unique in that team on both platforms
    count = {platform: defaultdict(int) for platform in PLATFORMS}
    for platform in PLATFORMS:
        for p in persons.get(platform, []):
            count[platform][(p.team, p.name)] += 1
    by_name = {(g.dingtalk.team, g.dingtalk.name): g for g in ding_side}
    for g in list(wecom_side):
        key = (g.wecom.team, g.wecom.name)
        other = by_name.get(key)
        if other is None or count["wecom"][key] != 1 or count["dingtalk"][key] != 1:
            continue
        if g.wecom.mobile and other.dingtalk.mobile:
            continue  # both have a mobile and they differ: two people who share a name
        if join(g, other, f"same name in team {key[0]}"):
            wecom_side.remove(g)
    # 3. a new person and an existing rep known only on the other platform (read in an earlier
    # run, or not in this run's directory): the same name in the same team, unique on both sides
    taken = {g.rep.id for g in groups if g.rep is not None}
    spare: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for r in reps:
        if r.id not in taken and r.status != "left":
            for platform in PLATFORMS:
                if not getattr(r, f"{platform}_userid"):
                    spare[(platform, r.team, r.name)].append(r)
    for g in groups:
        p = g.people()[0]
        key = (p.platform, p.team, p.name)
        if g.rep is None and len(g.people()) == 1 and len(spare.get(key, [])) == 1 \
                and count[p.platform][(p.team, p.name)] == 1 and spare[key][0].id not in taken:
            g.rep, g.how = spare[key][0], f"same name in team {p.team} as rep {spare[key][0].external_id}"
            taken.add(g.rep.id)
    return groups


# ------------------------------------------------------------------------------ the sync

def _root_for(root_dept: int | Mapping[str, int] | None, platform: str) -> int | None:
    if isinstance(root_dept, Mapping):
        value = root_dept.get(platform)
        return int(value) if value is not None else None
    return int(root_dept) if root_dept is not None else None


async def sync_directory(ctx: Any, *, platforms: Iterable[str] = PLATFORMS,
                         root_dept: int | Mapping[str, int] | None = None, dry_run: bool = False,
                         progress: Progress | None = None) -> SyncReport:
    """Reads the directories of `platforms`, then upserts teams and reps and marks leavers (see
    the module docstring for the rules). `root_dept` limits the walk to one department's subtree
    (one id for every platform, or {platform: id}). Nothing is written with `dry_run`."""
    platforms = tuple(p for p in PLATFORMS if p in set(platforms))
    report = SyncReport(platforms=platforms, dry_run=dry_run)
    say = progress or (lambda line: None)
    persons: dict[str, list[Person]] = {}
    for platform in platforms:
        client = ctx.services.client_for(platform)
        if client is None:
            raise ValueError(f"[{platform}] is not configured: cannot read its directory")
        reader = read_wecom if platform == "wecom" else read_dingtalk
        depts, people = await reader(client, _root_for(root_dept, platform), say)
        report.departments += depts
        persons[platform] = people
        names: dict[str, list[int]] = defaultdict(list)
        for d in depts:
            if d.members:
                names[d.name].append(d.dept_id)
        for name, ids in names.items():
            if len(ids) > 1:
                report.notes.append(f"{LABEL[platform]} departments {', '.join(map(str, ids))} are all called "
                                    f"{name!r}: their members form one team")

    reps = list(await ctx.store.list_reps())
    teams = {t.name: t for t in await ctx.store.list_teams()}
    groups = _pair(persons, reps, report.notes)
    plan = _plan(groups, reps, teams, persons, report, root_dept is not None)
    if dry_run:
        return report
    rows, leaving = plan
    if rows:
        summary = await import_reps(ctx.store, rows, preserve=PRESERVED)
        rejected = {r.key: r.reason for r in summary.rejected}
        for bucket in (report.created, report.updated):
            for change in [c for c in bucket if c.rep in rejected]:
                bucket.remove(change)
                report.rejected.append(Change(change.rep, change.name, rejected[change.rep]))
        report.notes += list(summary.notes)
    flow = ctx.services.flow
    for rep in leaving:
        await ctx.store.set_rep_status(rep.id, "left", ACTOR)
        if flow is not None:
            report.rerouted += await flow.rep_left(rep.id, ACTOR)
    if rows or leaving:
        await ctx.store.audit(ACTOR, "reps.synced", "directory", ",".join(platforms),
                              {"created": len(report.created), "updated": len(report.updated),
                               "left": len(report.left), "rejected": len(report.rejected)})
    return report


def _plan(groups: list[_Group], reps: Sequence[Any], teams: Mapping[str, Any], persons: Mapping[str, list[Person]],
          report: SyncReport, scoped: bool) -> tuple[list[dict[str, str]], list[Any]]:
    synced = set(report.platforms)
    external_ids = {r.external_id for r in reps}
    walked_teams = {d.name for d in report.departments}
    empty = {p for p in synced if not persons.get(p)}
    for p in sorted(empty):
        report.notes.append(f"{LABEL[p]} listed no members (check the app's visibility scope and permissions): "
                            f"nobody is marked left for it")

    def can_leave(rep: Any, explicit: bool) -> str:
        ids = [p for p in PLATFORMS if getattr(rep, f"{p}_userid")]
        if not ids or any(p not in synced or p in empty for p in ids):
            return ""
        if scoped and not explicit and rep.team not in walked_teams:
            return ""
        gone = []
        for p in ids:
            uid = getattr(rep, f"{p}_userid")
            person = next((x for x in persons.get(p, []) if x.userid == uid), None)
            gone.append(f"{person.state} in {LABEL[p]}" if person else f"no longer in the {LABEL[p]} directory")
        return "; ".join(gone)

    leaving: list[Any] = []
    active: list[tuple[_Group, dict[str, Any]]] = []
    for g in groups:
        present = [p for p in g.people() if p.present]
        rep = g.rep
        if not present:
            if rep is None:
                continue  # a disabled account nobody imported: nothing to do
            reason = can_leave(rep, explicit=True)
            if rep.status != "left" and reason:
                leaving.append(rep)
                report.left.append(Change(rep.external_id, rep.name, reason))
            elif rep.status == "left":
                report.unchanged.append(Change(rep.external_id, rep.name, "already left"))
            else:
                report.notes.append(f"{rep.name} ({rep.external_id}) is gone from one platform but still has an id "
                                    f"on one this run did not read: kept")
            continue
        src = g.wecom if g.wecom is not None and g.wecom.present else present[0]
        keep = rep is not None and src.platform == "dingtalk" and rep.wecom_userid and "wecom" not in synced
        want: dict[str, Any] = {
            "name": rep.name if keep else src.name,
            "team": rep.team if keep else src.team,
            "role": rep.role if keep or (rep is not None and rep.role == "admin") else (
                "manager" if src.leader else "rep"),
            "wecom_userid": g.wecom.userid if g.wecom else (rep.wecom_userid if rep else None),
            "dingtalk_userid": g.dingtalk.userid if g.dingtalk else (rep.dingtalk_userid if rep else None),
            "status": "on_leave" if rep is not None and rep.status == "on_leave" else "active",
            "leader": (not keep) and src.leader, "src": src, "keep": keep,
        }
        if rep is None:
            ext = f"{src.platform}:{src.userid}"
            n = 2
            while ext in external_ids:
                ext, n = f"{src.platform}:{src.userid}#{n}", n + 1
            external_ids.add(ext)
            want["id"] = ext
        else:
            want["id"] = rep.external_id
        active.append((g, want))
    matched = {g.rep.id for g in groups if g.rep is not None}
    for rep in reps:
        if rep.id in matched or rep.status == "left":
            continue
        reason = can_leave(rep, explicit=False)
        if reason:
            leaving.append(rep)
            report.left.append(Change(rep.external_id, rep.name, reason))

    # Each team's manager: its first leader (WeCom before DingTalk, department_leader order).
    primary: dict[str, tuple[tuple[int, int], str]] = {}
    for g, want in active:
        if want["role"] == "manager" and want["leader"]:
            current = primary.get(want["team"])
            if current is None or g.seq < current[0]:
                primary[want["team"]] = (g.seq, want["id"])
    parent_team: dict[str, str] = {}
    dept_name = {(d.platform, d.dept_id): d.name for d in report.departments}
    for d in report.departments:
        if d.parent_id is not None and (d.platform, d.parent_id) in dept_name:
            parent_team.setdefault(d.name, dept_name[(d.platform, d.parent_id)])
    by_external = {r.external_id: r for r in reps}

    rows: list[dict[str, str]] = []
    last: list[dict[str, str]] = []  # primary managers go last: import_reps makes the last one the team's manager
    primary_rows: dict[str, dict[str, str]] = {}
    touched_teams: set[str] = set()  # teams with a manager row written: their primary is written after it
    for g, want in active:
        team = want["team"]
        boss = primary.get(team, (None, ""))[1]
        if boss == want["id"]:
            boss = primary.get(parent_team.get(team, ""), (None, ""))[1]
        if boss == want["id"]:
            boss = ""
        row = {"id": want["id"], "name": want["name"], "wecom_userid": want["wecom_userid"] or "",
               "dingtalk_userid": want["dingtalk_userid"] or "", "team": team, "role": want["role"],
               "status": want["status"], "manager": "" if want["keep"] else boss}
        rep = g.rep
        is_primary = primary.get(team, (None, ""))[1] == want["id"]
        if is_primary:
            primary_rows[team] = row
        if rep is None:
            row["source"] = ACTOR  # kept as an attribute of the new rep
            where = ", ".join(f"{LABEL[p.platform]} {p.userid}" for p in g.people())
            how = f", joined by {g.how}" if g.how else ""
            report.created.append(Change(want["id"], want["name"], f"{want['role']} in {team} ({where}{how})"))
            (last if is_primary else rows).append(row)
            if row["role"] == "manager":
                touched_teams.add(team)
            continue
        changes = []
        for key, label in (("name", "name"), ("wecom_userid", "WeCom id"), ("dingtalk_userid", "DingTalk id"),
                           ("team", "team"), ("role", "role"), ("status", "status")):
            before = getattr(rep, key) or ""
            after = row[key]
            if before != after:
                changes.append(f"{label} {before or '-'} → {after or '-'}")
        if g.how and g.how != "already linked" and changes:
            changes.append(f"(joined by {g.how})")
        if rep.status == "left" and row["status"] == "active":
            changes.append("(back in the directory)")
        if boss:
            boss_rep = by_external.get(boss)
            if boss_rep is None or rep.manager_id != boss_rep.id:
                changes.append(f"manager → {boss}")
        team_row = teams.get(team)
        if is_primary and (team_row is None or team_row.manager_id != rep.id):
            changes.append(f"manager of team {team}")
        if changes:
            report.updated.append(Change(rep.external_id, row["name"], "; ".join(changes)))
            (last if is_primary else rows).append(row)
            if row["role"] == "manager":
                touched_teams.add(team)
        else:
            report.unchanged.append(Change(rep.external_id, rep.name, "as in the directory"))
    # Another leader's row would make them the team's manager: write the (unchanged) first leader again.
    last += [primary_rows[t] for t in sorted(touched_teams) if t in primary_rows and primary_rows[t] not in last]
    return rows + last, leaving

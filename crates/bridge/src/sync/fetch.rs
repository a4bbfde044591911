//! Reading the visible scope from WeCom with the cheapest call plan of wecom-api.md §6:
//! agent/get → tag/list + tag/get per tag → department/list (only if some department is
//! visible) → user/list per visible department → user/get for in-scope members seen only
//! through the scope or a tag. The batches run concurrently, bounded.

use super::ahead::{Room, WriteAhead};
use super::checkpoint::Checkpoint;
use crate::domain::directory::{
    department_name, member_name, user_key, Baseline, CallBound, DeptRecord, DesiredDirectory,
    Membership, TagRecord, UserKey, UserRecord, WithheldField,
};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use wecom::types::{Agent, Department, Member};

/// Requests in flight per batch: well under WeCom's per-API limits (§16), enough to hide
/// the round trip.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Where a run is, for progress bars (console and CLI).
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<&'static str>,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    pub fn new() -> Self {
        Progress::default()
    }
    pub fn set_phase(&self, phase: &'static str, total: u64) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }
    pub fn step(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
    /// (phase, done, total)
    pub fn snapshot(&self) -> (&'static str, u64, u64) {
        (
            *self.phase.lock().unwrap_or_else(|e| e.into_inner()),
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

/// The scope as read from WeCom.
#[derive(Debug, Default)]
pub struct Fetched {
    pub agent: Agent,
    pub desired: DesiredDirectory,
    /// The baseline was loaded before the fetch ended: every member new to the store
    /// has been offered to be written ahead.
    pub baseline_seen: bool,
    pub bound: CallBound,
    pub withheld: Vec<WithheldField>,
    /// (English, Chinese)
    pub warnings: Vec<(String, String)>,
}

/// A member object as the store keeps it. Withheld sensitive fields stay `None`; a
/// missing name falls back to the alias or userid (and says so).
pub fn user_record(m: &Member) -> UserRecord {
    let (name, name_withheld) = member_name(&m.name, &m.alias, &m.userid);
    let mut departments: Vec<Membership> = m
        .department
        .iter()
        .enumerate()
        .map(|(i, d)| Membership {
            department_id: i64::from(*d),
            sort_order: m.order.get(i).copied().map(i64::from).unwrap_or(0),
            is_leader: m.is_leader_in_dept.get(i).copied().unwrap_or(0) == 1,
        })
        .collect();
    departments.sort();
    departments.dedup_by_key(|x| x.department_id);
    UserRecord {
        userid: m.userid.clone(),
        name,
        position: m.position.clone(),
        alias: m.alias.clone(),
        telephone: m.telephone.clone(),
        mobile: m.mobile.clone(),
        email: m.email.clone(),
        main_department: m.main_department.map(i64::from),
        wecom_status: i64::from(m.status),
        direct_leader: m.direct_leader.join(","),
        extattr: if m.extattr.attrs.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&m.extattr.attrs).unwrap_or_default()
        },
        departments,
        name_withheld,
    }
}

pub fn dept_record(d: &Department) -> DeptRecord {
    let id = i64::from(d.id);
    let (name, name_withheld) = department_name(&d.name, id);
    DeptRecord {
        id,
        parent_id: i64::from(d.parentid),
        name,
        name_en: d.name_en.clone(),
        sort_order: i64::from(d.order),
        leaders: d.department_leader.join(","),
        name_withheld,
    }
}

/// Counts of members lacking each withheld field.
#[derive(Default)]
struct Withheld {
    members: u64,
    names: u64,
    mobile: u64,
    email: u64,
    avatar: u64,
    gender: u64,
    departments: u64,
    dept_names: u64,
}

impl Withheld {
    fn member(&mut self, m: &Member) {
        self.members += 1;
        self.names += u64::from(m.name.trim().is_empty());
        self.mobile += u64::from(m.mobile.is_none());
        self.email += u64::from(m.email.is_none());
        self.avatar += u64::from(m.avatar.is_none());
        self.gender += u64::from(m.gender.is_empty() || m.gender == "0");
    }

    fn report(&self) -> Vec<WithheldField> {
        let mut out = Vec::new();
        let mut add = |field: &str, count: u64, total: u64, en: &str, zh: &str| {
            if count > 0 {
                out.push(WithheldField {
                    field: field.into(),
                    count,
                    total,
                    note_en: en.into(),
                    note_zh: zh.into(),
                });
            }
        };
        add("name", self.names, self.members,
            "WeCom sent no name: shown as the alias, else the userid (a name stored earlier is kept).",
            "企业微信未返回姓名：显示为别名，没有别名时显示账号（已保存的姓名保留不变）。");
        add("department name", self.dept_names, self.departments,
            "WeCom sent no department name: shown as the department id (a name stored earlier is kept).",
            "企业微信未返回部门名称：显示为部门 ID（已保存的名称保留不变）。");
        let sensitive_en = "Withheld from self-built apps created after 2022-06-20; only a member's own consent at sign-in (OAuth snsapi_privateinfo) gives it. A value stored earlier is kept.";
        let sensitive_zh = "2022-06-20 之后创建的自建应用无法读取该字段，只能在成员登录授权（snsapi_privateinfo）时获得；已保存的值保留不变。";
        add(
            "mobile",
            self.mobile,
            self.members,
            sensitive_en,
            sensitive_zh,
        );
        add(
            "email",
            self.email,
            self.members,
            sensitive_en,
            sensitive_zh,
        );
        add(
            "avatar",
            self.avatar,
            self.members,
            sensitive_en,
            sensitive_zh,
        );
        add(
            "gender",
            self.gender,
            self.members,
            sensitive_en,
            sensitive_zh,
        );
        out
    }
}

/// What a full sync's fetch may lean on besides WeCom.
#[derive(Clone, Copy, Default)]
pub struct FetchAids<'a> {
    /// Departments and tags it holds are taken from it, and what is read from WeCom is
    /// saved to it ([`super::checkpoint`]).
    pub checkpoint: Option<&'a Checkpoint>,
    /// Once the stored directory is loaded (beside the fetch), members it holds unchanged
    /// are kept as fingerprints only ([`Baseline`]).
    pub baseline: Option<&'a std::sync::OnceLock<Baseline>>,
    /// Members the baseline does not know (new to the store) are offered to it, to be
    /// written ahead of the apply ([`super::ahead`]).
    pub ahead: Option<&'a WriteAhead>,
}

/// Takes members read from WeCom into the answer: whole, or as fingerprints once the
/// stored directory's baseline is loaded; new ones are offered to be written ahead.
struct Intake<'a> {
    source: Option<&'a std::sync::OnceLock<Baseline>>,
    baseline: Option<&'a Baseline>,
    ahead: Option<&'a WriteAhead>,
    /// New members the writer's queue could not take yet.
    deferred: Vec<UserKey>,
}

impl<'a> Intake<'a> {
    fn new(aids: &FetchAids<'a>) -> Intake<'a> {
        Intake {
            source: aids.baseline,
            baseline: None,
            ahead: aids.ahead,
            deferred: Vec::new(),
        }
    }

    /// The baseline, once loaded. When it first is, the members read before are set
    /// aside or offered as they would have been.
    fn ready(&mut self, desired: &mut DesiredDirectory) -> Option<&'a Baseline> {
        if self.baseline.is_none() {
            self.baseline = self.source.and_then(|b| b.get());
            if let Some(b) = self.baseline {
                desired.set_aside(b);
                for (k, r) in desired.unknown_to(b) {
                    offer(self.ahead, &mut self.deferred, k, r);
                }
            }
        }
        self.baseline
    }

    fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Room in the writer's queue; never, without a writer.
    fn room(&self) -> impl std::future::Future<Output = Option<Room>> + 'static {
        let room = self.ahead.map(|w| w.room());
        async move {
            match room {
                Some(r) => r.await,
                None => std::future::pending().await,
            }
        }
    }

    fn offer_deferred(&mut self, desired: &DesiredDirectory, room: Room) {
        if let (Some(w), Some(k)) = (self.ahead, self.deferred.pop()) {
            if let Some(r) = desired.users.get(&k) {
                w.offer_into(room, &k, r);
            }
        }
    }

    /// Adds `m` unless the answer has it (a member of several departments is in several
    /// lists; the first read stands). Returns whether it was added.
    fn add(&mut self, desired: &mut DesiredDirectory, m: &Member) -> bool {
        let baseline = self.ready(desired);
        let key = user_key(&m.userid);
        if desired.has_user(&key) {
            return false;
        }
        let record = user_record(m);
        if baseline.is_some_and(|b| !b.knows(&key)) {
            offer(self.ahead, &mut self.deferred, &key, &record);
        }
        desired.add_user(key, record, baseline)
    }
}

/// Offers a member new to the store to the writer; one its queue cannot take now waits
/// in `deferred`.
fn offer(
    ahead: Option<&WriteAhead>,
    deferred: &mut Vec<UserKey>,
    key: &UserKey,
    record: &UserRecord,
) {
    if let Some(w) = ahead {
        if !w.try_offer(key, record) {
            deferred.push(key.clone());
        }
    }
}

/// Reads the app's whole visible scope. Any WeCom error aborts (nothing is applied).
pub async fn fetch_directory(
    client: &wecom::Client,
    agentid: u32,
    progress: &Progress,
    concurrency: usize,
    aids: FetchAids<'_>,
) -> Result<Fetched, wecom::Error> {
    let ck = aids.checkpoint;
    let conc = concurrency.max(1);
    progress.set_phase("scope", 1);
    let agent = client.agent_get(agentid).await?;
    progress.step();

    // Tags first: their departments decide whether any department is visible at all,
    // which saves department/list for a scope of members only.
    let tag_refs = client.tag_list().await?;
    progress.set_phase("tags", tag_refs.len() as u64);
    let mut tags = std::collections::BTreeMap::new();
    {
        // Futures collected first: a closure inside the stream type trips the compiler's
        // higher-ranked lifetime check when the whole sync is spawned.
        let futs: Vec<_> = tag_refs
            .iter()
            .cloned()
            .map(|t| {
                let c = client.clone();
                async move {
                    if let Some(g) = match ck {
                        Some(ck) => ck.tag(i64::from(t.tagid)).await,
                        None => None,
                    } {
                        return Ok((t, g, false));
                    }
                    c.tag_get(t.tagid).await.map(|g| (t, g, true))
                }
            })
            .collect();
        let mut s = stream::iter(futs).buffer_unordered(conc);
        while let Some(r) = s.next().await {
            let (t, g, fresh) = r?;
            if let (Some(ck), true) = (ck, fresh) {
                ck.save_tag(i64::from(t.tagid), &g);
            }
            progress.step();
            let name = if g.tagname.is_empty() {
                t.tagname.clone()
            } else {
                g.tagname.clone()
            };
            tags.insert(
                i64::from(t.tagid),
                TagRecord {
                    id: i64::from(t.tagid),
                    name,
                    users: g.userlist.iter().map(|u| user_key(&u.userid)).collect(),
                    departments: g.partylist.iter().map(|d| i64::from(*d)).collect(),
                },
            );
        }
    }

    let scoped_tags: HashSet<i64> = agent
        .allow_tags
        .tagid
        .iter()
        .map(|t| i64::from(*t))
        .collect();
    let any_dept = !agent.allow_partys.partyid.is_empty()
        || tags
            .values()
            .any(|t| scoped_tags.contains(&t.id) && !t.departments.is_empty());
    let mut withheld = Withheld::default();
    let mut desired = DesiredDirectory::default();
    let mut intake = Intake::new(&aids);
    if any_dept {
        progress.set_phase("departments", 1);
        for d in client.department_list(None).await? {
            withheld.departments += 1;
            withheld.dept_names += u64::from(d.name.trim().is_empty());
            desired.departments.insert(i64::from(d.id), dept_record(&d));
        }
        progress.step();
    }

    // user/list per visible department: full member objects of the direct members.
    progress.set_phase("members", desired.departments.len() as u64);
    {
        let futs: Vec<_> = desired
            .departments
            .keys()
            .map(|d| {
                let c = client.clone();
                let d = *d;
                async move {
                    if let Some(ms) = match ck {
                        Some(ck) => ck.dept_members(d).await,
                        None => None,
                    } {
                        return Ok((d, ms, false));
                    }
                    c.user_list(d as u32).await.map(|ms| (d, ms, true))
                }
            })
            .collect();
        let mut s = stream::iter(futs).buffer_unordered(conc);
        loop {
            // While WeCom's next answer is awaited (mostly the rate limit's wait), members
            // the writer could not take in the last burst are offered again.
            let r = tokio::select! {
                biased;
                r = s.next() => r,
                Some(room) = intake.room(), if intake.has_deferred() => {
                    intake.offer_deferred(&desired, room);
                    continue;
                }
            };
            let Some(r) = r else { break };
            let (d, members, fresh) = r?;
            if let (Some(ck), true) = (ck, fresh) {
                ck.save_dept(d, &members);
            }
            for m in members {
                if intake.add(&mut desired, &m) {
                    withheld.member(&m);
                }
            }
            progress.step();
        }
    }

    // In-scope members seen only through the scope or a tag: one user/get each.
    let mut loose: BTreeSet<String> = BTreeSet::new();
    for u in agent.scope_users() {
        if !desired.has_user(&user_key(u)) {
            loose.insert(u.to_string());
        }
    }
    for t in tags.values() {
        for k in &t.users {
            if !desired.has_user(k) {
                loose.insert(k.clone());
            }
        }
    }
    let mut warnings = Vec::new();
    progress.set_phase("loose_members", loose.len() as u64);
    let loose_count = loose.len() as u64;
    {
        let futs: Vec<_> = loose
            .into_iter()
            .map(|u| {
                let c = client.clone();
                async move {
                    let r = c.user_get(&u).await;
                    (u, r)
                }
            })
            .collect();
        let mut s = stream::iter(futs).buffer_unordered(conc);
        while let Some((u, r)) = s.next().await {
            progress.step();
            match r {
                Ok(m) => {
                    withheld.member(&m);
                    intake.add(&mut desired, &m);
                }
                // Scoped by name but gone or out of reach: nothing to sync.
                Err(e) if matches!(e.errcode(), Some(60011 | 60111 | 40003)) => {
                    let code = e.errcode().unwrap_or_default();
                    warnings.push((
                        format!(
                            "member {u} is named in the app's scope but WeCom answered {code}: skipped"
                        ),
                        format!("成员 {u} 在应用的可见范围内，但企业微信返回 {code}：已跳过"),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
    desired.tags = tags;
    Ok(Fetched {
        baseline_seen: intake.baseline.is_some(),
        bound: CallBound {
            departments: desired.departments.len() as u64,
            tags: desired.tags.len() as u64,
            loose_users: loose_count,
            with_token: true,
        },
        agent,
        desired,
        withheld: withheld.report(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New members the writer's queue cannot take in a burst wait as keys, and are
    /// offered again when it has room: every one is written ahead, none twice
    /// (PostgreSQL; SQLite writes nothing ahead).
    #[tokio::test]
    async fn a_burst_beyond_the_writers_queue_is_offered_again_when_it_has_room() {
        use crate::domain::directory::DiffOptions;
        use crate::domain::user::UserStatus;
        for s in crate::testing::stores().await {
            let pro = crate::domain::tenant::Edition::Professional;
            let t = s.create_tenant("acme", "Acme", pro, None).await.unwrap();
            let Some(open) = s.open_apply(t.id, "wwcorp").await.unwrap() else {
                continue;
            };
            let opts = DiffOptions {
                new_user_status: UserStatus::Unauthorized,
            };
            let w = WriteAhead::with_queue(open, opts, 1);
            let slot = std::sync::OnceLock::new();
            let _ = slot.set(Baseline::new(opts).finish().unwrap());
            let aids = FetchAids {
                checkpoint: None,
                baseline: Some(&slot),
                ahead: Some(&w),
            };
            let mut intake = Intake::new(&aids);
            let mut desired = DesiredDirectory::default();
            for i in 0..50 {
                let m: Member = serde_json::from_value(serde_json::json!({
                    "userid": format!("U{i}"), "name": "n", "department": [2, 3]
                }))
                .unwrap();
                assert!(intake.add(&mut desired, &m));
                assert!(
                    !intake.add(&mut desired, &m),
                    "in a second department's list"
                );
            }
            assert!(intake.has_deferred(), "a queue of one took a burst of 50");
            while intake.has_deferred() {
                let room = intake.room().await.expect("the writer is running");
                intake.offer_deferred(&desired, room);
            }
            assert_eq!(w.offered(), 50);
            let open = w.finish().await.expect("nothing failed");
            assert_eq!(open.written(), 50);
        }
    }

    #[test]
    fn member_conversion_keeps_parallel_arrays_and_falls_back_on_names() {
        let m: Member = serde_json::from_str(
            r#"{"userid":"ZhangSan","name":"","alias":"zs","department":[3,2],"order":[5,9],"is_leader_in_dept":[0,1],
                "main_department":2,"status":1,"direct_leader":["lisi"],"gender":"0",
                "extattr":{"attrs":[{"type":0,"name":"工号","text":{"value":"A1"}}]}}"#,
        )
        .unwrap();
        let r = user_record(&m);
        assert_eq!((r.name.as_str(), r.name_withheld), ("zs", true));
        assert_eq!(
            r.departments,
            vec![
                Membership {
                    department_id: 2,
                    sort_order: 9,
                    is_leader: true
                },
                Membership {
                    department_id: 3,
                    sort_order: 5,
                    is_leader: false
                },
            ]
        );
        assert_eq!(r.direct_leader, "lisi");
        assert!(r.extattr.contains("A1"));
        assert_eq!(r.mobile, None);
        let mut w = Withheld::default();
        w.member(&m);
        let rep = w.report();
        assert!(rep.iter().any(|f| f.field == "name" && f.count == 1));
        assert!(rep.iter().any(|f| f.field == "mobile"));
    }
}

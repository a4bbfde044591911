//! The switch from a third-party app (wecom-api.md §7): the imported directory holds
//! open_userids. While the old app is still installed, `batch/openuserid_to_userid`
//! converts them (≤ 1,000 per call, `source_agentid` = the old app) so the self-built
//! sync finds the same internal users; whoever cannot be converted is reported for
//! manual linking, never guessed.

use crate::domain::directory::{user_key, CurrentDirectory, RelinkReport, Unlinked};
use crate::store::ImportedIdentity;
use std::collections::{BTreeMap, HashMap};

/// WeCom's limit per conversion call.
pub const BATCH: usize = 1_000;

/// The conversions to apply with the sync.
#[derive(Debug, Default)]
pub struct RelinkPlan {
    pub report: RelinkReport,
    /// open_userid → userid.
    pub relinked: HashMap<String, String>,
}

/// Converts the imported identities and marks the matching users of `current` to be
/// linked to their self-built userid by this run.
pub async fn plan_relink(
    client: &wecom::Client,
    imported: &[ImportedIdentity],
    current: &mut CurrentDirectory,
) -> Result<RelinkPlan, wecom::Error> {
    let mut plan = RelinkPlan::default();
    let index: HashMap<i64, usize> = current
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i))
        .collect();
    let mut taken: HashMap<String, i64> = current
        .users
        .iter()
        .filter_map(|u| u.key.clone().map(|k| (k, u.id)))
        .collect();
    // Users already linked to a self-built userid need no conversion.
    let todo: Vec<&ImportedIdentity> = imported
        .iter()
        .filter(|i| {
            index
                .get(&i.user_id)
                .is_some_and(|&x| current.users[x].key.is_none())
        })
        .collect();
    let mut users_todo: Vec<i64> = todo.iter().map(|i| i.user_id).collect();
    users_todo.sort();
    users_todo.dedup();
    plan.report.imported = users_todo.len();
    let mut by_agent: BTreeMap<Option<i64>, Vec<&ImportedIdentity>> = BTreeMap::new();
    for i in &todo {
        by_agent.entry(i.source_agentid).or_default().push(i);
    }
    let mut unlinked: BTreeMap<i64, Unlinked> = BTreeMap::new();
    let mut note = |i: &ImportedIdentity, reason: &str| {
        unlinked.entry(i.user_id).or_insert_with(|| Unlinked {
            user_id: i.user_id,
            open_userid: i.open_userid.clone(),
            name: i.name.clone(),
            reason: reason.to_string(),
        });
    };
    for (agent, ids) in by_agent {
        let Some(agent) = agent.and_then(|a| u32::try_from(a).ok()) else {
            for i in ids {
                note(
                    i,
                    "the import did not record which third-party app issued this id",
                );
            }
            continue;
        };
        for chunk in ids.chunks(BATCH) {
            let list: Vec<String> = chunk.iter().map(|i| i.open_userid.clone()).collect();
            plan.report.conversion_calls += 1;
            let conv = match client.openuserid_to_userid(&list, agent).await {
                Ok(c) => c,
                Err(e) if e.errcode() == Some(40056) => {
                    for i in chunk {
                        note(i, &format!("the third-party app {agent} is no longer installed, so WeCom cannot convert its ids"));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let pairs: HashMap<&str, &str> = conv
                .userid_list
                .iter()
                .map(|p| (p.open_userid.as_str(), p.userid.as_str()))
                .collect();
            for i in chunk {
                let Some(userid) = pairs.get(i.open_userid.as_str()) else {
                    note(i, "WeCom could not convert it: not in the scope of both apps, left the company, or issued by another provider");
                    continue;
                };
                let key = user_key(userid);
                let Some(&x) = index.get(&i.user_id) else {
                    continue;
                };
                if current.users[x].key.is_some() {
                    continue; // another of this user's ids was converted already
                }
                if let Some(other) = taken.get(&key) {
                    if *other != i.user_id {
                        note(i, &format!("WeCom userid {userid} already belongs to user #{other}; link them by hand"));
                        continue;
                    }
                }
                taken.insert(key.clone(), i.user_id);
                let u = &mut current.users[x];
                u.key = Some(key);
                u.record.userid = userid.to_string();
                u.link_identity = true;
                plan.relinked
                    .insert(i.open_userid.clone(), userid.to_string());
            }
        }
    }
    // A user is linked if any of its ids converted.
    let linked: std::collections::HashSet<i64> = current
        .users
        .iter()
        .filter(|u| u.link_identity)
        .map(|u| u.id)
        .collect();
    plan.report.relinked = linked.len();
    plan.report.unlinked = unlinked
        .into_values()
        .filter(|u| !linked.contains(&u.user_id))
        .collect();
    Ok(plan)
}

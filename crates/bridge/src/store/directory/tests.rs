use super::*;
use crate::domain::directory::DirectoryDiff;
use crate::domain::directory::NewUser;
use crate::domain::user::UserStatus;

fn member(i: i64) -> NewUser {
    NewUser {
        key: format!("user{i:03}"),
        record: Box::new(UserRecord {
            userid: format!("User{i:03}"),
            name: format!("张三{i} 'quoted' \\ \"x\""),
            position: if i % 2 == 0 {
                "工程师".into()
            } else {
                String::new()
            },
            alias: String::new(),
            telephone: String::new(),
            mobile: (i % 3 == 0).then(|| format!("1380000{i:04}")),
            email: None,
            main_department: Some(2 + i % 2),
            wecom_status: 1,
            direct_leader: String::new(),
            extattr: if i == 4 {
                r#"{"attrs":[{"name":"工号","value":"7"}]}"#.into()
            } else {
                String::new()
            },
            departments: (0..1 + i % 2)
                .map(|d| Membership {
                    department_id: 2 + d,
                    sort_order: i * 10 + d,
                    is_leader: i % 5 == d,
                })
                .collect(),
            name_withheld: false,
        }),
        status: if i % 4 == 0 {
            UserStatus::Authorized
        } else {
            UserStatus::Unauthorized
        },
        disabled_reason: None,
    }
}

/// Whole-tenant loads come in slices of user ids: every slice size gives the same
/// directory, equal to what was written, on both engines; a keyed load agrees.
#[tokio::test]
async fn sliced_loads_read_back_what_was_written() {
    for s in crate::testing::stores().await {
        let pro = crate::domain::tenant::Edition::Professional;
        let t = s.create_tenant("acme", "Acme", pro, None).await.unwrap();
        let other = s.create_tenant("other", "Other", pro, None).await.unwrap();
        let added: Vec<NewUser> = (0..23).map(member).collect();
        // Another tenant's users interleave with the ids: a slice must not take them.
        for (i, chunk) in added.chunks(5).enumerate() {
            let diff = DirectoryDiff {
                users_added: chunk.to_vec(),
                ..Default::default()
            };
            s.apply_directory_diff(t.id, "WWcorp", 0, &diff, Default::default())
                .await
                .unwrap();
            let theirs = DirectoryDiff {
                users_added: vec![member(100 + i as i64)],
                ..Default::default()
            };
            s.apply_directory_diff(other.id, "wwcorp", 0, &theirs, Default::default())
                .await
                .unwrap();
        }
        let sorted = |mut v: Vec<CurrentUser>| {
            v.sort_by(|a, b| a.key.cmp(&b.key));
            v
        };
        let whole = sorted(s.load_users(t.id, "wwcorp", None).await.unwrap());
        assert_eq!(whole.len(), 23, "{}", s.engine());
        for (u, want) in whole.iter().zip(&added) {
            let mut w = want.record.clone();
            w.normalize();
            assert_eq!(u.key.as_deref(), Some(want.key.as_str()));
            assert_eq!(u.record, *w, "{}", s.engine());
            assert_eq!(u.status, want.status);
            assert!(!u.imported && !u.link_identity);
        }
        for slice in [1, 4, 5, 22, 23, 24] {
            let got = sorted(
                s.load_users_sliced(t.id, "wwcorp", None, slice)
                    .await
                    .unwrap(),
            );
            assert_eq!(got.len(), whole.len(), "slice {slice} on {}", s.engine());
            for (a, b) in got.iter().zip(&whole) {
                assert_eq!(
                    (a.id, &a.key, &a.record),
                    (b.id, &b.key, &b.record),
                    "slice {slice}"
                );
            }
        }
        let keys: Vec<UserKey> = ["user003", "USER007", "nobody"].map(String::from).to_vec();
        let some = sorted(s.load_users(t.id, "wwcorp", Some(&keys)).await.unwrap());
        let ids: Vec<i64> = some.iter().map(|u| u.id).collect();
        let want: Vec<i64> = whole
            .iter()
            .filter(|u| ["user003", "user007"].contains(&u.key.as_deref().unwrap()))
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, want, "{}", s.engine());
        assert_eq!(some[1].record, whole[7].record);
        let dir = s.load_directory(other.id, "wwcorp").await.unwrap();
        assert_eq!(dir.users.len(), 5);
    }
}

/// Rows written ahead of the apply, during the fetch (PostgreSQL; SQLite opens none):
/// nobody sees them before the apply commits; the apply keeps those its diff adds as
/// written, replaces one it adds otherwise, removes one it does not add, and writes the
/// rest; one dropped unapplied, or given to another tenant's apply, rolls back.
#[tokio::test]
async fn rows_written_ahead_commit_only_as_the_diff_says() {
    for s in crate::testing::stores().await {
        let pro = crate::domain::tenant::Edition::Professional;
        let t = s.create_tenant("acme", "Acme", pro, None).await.unwrap();
        let other = s.create_tenant("other", "Other", pro, None).await.unwrap();
        let Some(mut open) = s.open_apply(t.id, "WWcorp").await.unwrap() else {
            assert_eq!(s.engine(), "sqlite", "only SQLite opens none");
            continue;
        };
        let ahead: Vec<NewUser> = (0..4).map(member).collect();
        open.write_new_users(&ahead[..2]).await.unwrap();
        open.write_new_users(&ahead[2..]).await.unwrap();
        assert_eq!(open.written(), 4);
        assert!(
            s.load_directory(t.id, "wwcorp")
                .await
                .unwrap()
                .users
                .is_empty(),
            "seen before the commit"
        );

        // The diff: 0 and 1 as written; 2 with another position and department; not 3
        // (the store changed meanwhile); 4 and 5 not written ahead.
        let mut two = member(2);
        two.record.position = "经理".into();
        two.record.departments[0].department_id = 9;
        let added = vec![member(0), member(1), two, member(4), member(5)];
        let diff = DirectoryDiff {
            users_added: added.clone(),
            ..Default::default()
        };
        s.apply_directory_diff(
            t.id,
            "wwcorp",
            0,
            &diff,
            ApplyWith {
                open: Some(open),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut got = s.load_users(t.id, "wwcorp", None).await.unwrap();
        got.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(got.len(), added.len(), "exactly the diff's users");
        for (u, want) in got.iter().zip(&added) {
            let mut w = want.record.clone();
            w.normalize();
            assert_eq!(u.key.as_deref(), Some(want.key.as_str()));
            assert_eq!((&u.record, u.status), (&*w, want.status));
        }
        // Written ahead in key order, two ids a batch: 0 and 1 kept theirs; 2 got one
        // after 3's, reserved by the apply.
        let id = |k: &str| got.iter().find(|u| u.key.as_deref() == Some(k)).unwrap().id;
        assert_eq!(id("user001"), id("user000") + 1);
        assert!(id("user002") > id("user001") + 2, "2 was replaced");

        // Dropped unapplied: rolled back, and the connection serves on.
        let mut open = s.open_apply(t.id, "wwcorp").await.unwrap().unwrap();
        open.write_new_users(&[member(10)]).await.unwrap();
        drop(open);
        // Given to another tenant's apply: not used there, rolled back.
        let mut open = s.open_apply(t.id, "wwcorp").await.unwrap().unwrap();
        open.write_new_users(&[member(11)]).await.unwrap();
        let theirs = DirectoryDiff {
            users_added: vec![member(11)],
            ..Default::default()
        };
        s.apply_directory_diff(
            other.id,
            "wwcorp",
            0,
            &theirs,
            ApplyWith {
                open: Some(open),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let ours = s.load_users(t.id, "wwcorp", None).await.unwrap();
        assert_eq!(ours.len(), added.len(), "rolled back");
        let keys: Vec<_> = s
            .load_users(other.id, "wwcorp", None)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.key)
            .collect();
        assert_eq!(keys, [Some("user011".to_string())]);
    }
}

/// A full sync's record ends in the transaction of its changes (issue 19: a crash
/// right after the apply left the run `running`): they commit together, a change
/// that fails rolls the record's end back with it, and without a record to end
/// nothing is applied. Both engines.
#[tokio::test]
async fn run_record_commits_with_the_apply() {
    use crate::domain::directory::{RunKind, RunStatus, Trigger};
    use crate::domain::tenant::{Edition, IntegrationMode};
    use crate::store::NewSyncRun;
    for s in crate::testing::stores().await {
        let e = s.engine();
        let t = s
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        let new_run = NewSyncRun {
            tenant_id: t.id,
            trigger: Trigger::Cli,
            kind: RunKind::Full,
            actor: "operator".into(),
            forced: false,
        };
        let finish = |added: i64| SyncRunFinish {
            status: RunStatus::Succeeded,
            users_added: added,
            users_updated: 0,
            users_disabled: 0,
            users_moved: 0,
            api_calls: 7,
            api_calls_json: "{}".into(),
            report_json: Some("{}".into()),
            error: None,
        };
        let audit = NewAudit {
            tenant_id: t.id,
            actor: "operator".into(),
            action: "directory.sync",
            detail: "run".into(),
            ip: None,
        };
        let end = |f| RunEnd {
            finish: f,
            agent_json: None,
            integration_mode: Some(IntegrationMode::SelfBuilt),
            audit: Some(&audit),
        };
        let diff = DirectoryDiff {
            users_added: (0..5).map(member).collect(),
            ..Default::default()
        };
        let audits = || async { s.list_audit(t.id, 100, None).await.unwrap().len() };
        let audits_before = audits().await;
        let run = s.create_sync_run(&new_run).await.unwrap();

        // No record to end: nothing is applied.
        let f5 = finish(5);
        let r = s
            .apply_directory_diff(
                t.id,
                "wwcorp",
                run + 1000,
                &diff,
                ApplyWith {
                    end: Some(end(&f5)),
                    ..Default::default()
                },
            )
            .await;
        assert!(matches!(r, Err(StoreError::NotFound(_))), "{e}: {r:?}");
        assert!(
            s.load_users(t.id, "wwcorp", None).await.unwrap().is_empty(),
            "{e}"
        );
        let mode = s
            .tenant_by_id(t.id)
            .await
            .unwrap()
            .unwrap()
            .integration_mode;
        assert_eq!(mode, IntegrationMode::None, "{e}");
        assert_eq!(audits().await, audits_before, "{e}");

        // Applied: the changes, the record's end, the mode and the audit line together.
        s.apply_directory_diff(
            t.id,
            "wwcorp",
            run,
            &diff,
            ApplyWith {
                end: Some(end(&f5)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let rec = s.sync_run(t.id, run).await.unwrap().unwrap();
        assert_eq!(
            (
                rec.status,
                rec.users_added,
                rec.api_calls,
                rec.phase.as_str()
            ),
            (RunStatus::Succeeded, 5, 7, "done"),
            "{e}"
        );
        assert!(rec.finished_at.is_some(), "{e}");
        assert_eq!(s.load_users(t.id, "wwcorp", None).await.unwrap().len(), 5);
        let mode = s
            .tenant_by_id(t.id)
            .await
            .unwrap()
            .unwrap()
            .integration_mode;
        assert_eq!(mode, IntegrationMode::SelfBuilt, "{e}");
        assert_eq!(audits().await, audits_before + 1, "{e}");

        // A change that fails (a WeCom identity already taken) rolls back the end too.
        let run2 = s.create_sync_run(&new_run).await.unwrap();
        let again = DirectoryDiff {
            users_added: vec![member(3)],
            ..Default::default()
        };
        let f1 = finish(1);
        let r = s
            .apply_directory_diff(
                t.id,
                "wwcorp",
                run2,
                &again,
                ApplyWith {
                    end: Some(end(&f1)),
                    ..Default::default()
                },
            )
            .await;
        assert!(r.is_err(), "{e}: a second identity for user003 was stored");
        let rec = s.sync_run(t.id, run2).await.unwrap().unwrap();
        assert_eq!(
            (rec.status, rec.finished_at),
            (RunStatus::Running, None),
            "{e}"
        );
        assert_eq!(s.load_users(t.id, "wwcorp", None).await.unwrap().len(), 5);
        assert_eq!(audits().await, audits_before + 1, "{e}");

        // Such a run, found by the next start, is said to have applied nothing.
        assert_eq!(s.interrupt_stale_runs(t.id, 0).await.unwrap(), 1);
        let rec = s.sync_run(t.id, run2).await.unwrap().unwrap();
        assert_eq!(rec.status, RunStatus::Interrupted);
        assert!(
            rec.error
                .as_deref()
                .unwrap()
                .ends_with("nothing was applied"),
            "{e}: {:?}",
            rec.error
        );
    }
}

#[test]
fn placeholder_lists() {
    assert_eq!(super::values(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
    assert_eq!(super::values(1, 2, 4), "($4,$5)");
    assert_eq!(crate::store::in_list(2, 3), "$2,$3,$4");
}

//! One conformance suite, run on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

use bridge::domain::audit::NewAudit;
use bridge::domain::integration::IntegrationRole;
use bridge::domain::tenant::{Edition, IntegrationMode};
use bridge::store::{IntegrationRecord, StoreError};
use bridge::testing::stores;

#[tokio::test]
async fn tenants_crud_and_uniqueness() {
    for s in stores().await {
        let t = s
            .create_tenant("acme", "Acme", Edition::Basic, Some("acme.example.com"))
            .await
            .unwrap();
        assert_eq!(t.edition, Edition::Basic);
        assert_eq!(t.integration_mode, IntegrationMode::None);
        let dup = s.create_tenant("acme", "Other", Edition::Basic, None).await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "{}: {dup:?}",
            s.engine()
        );
        let dup_domain = s
            .create_tenant("other", "Other", Edition::Basic, Some("acme.example.com"))
            .await;
        assert!(matches!(dup_domain, Err(StoreError::Conflict(_))));
        assert_eq!(
            s.tenant_by_domain("ACME.example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            t.id
        );
        assert_eq!(s.tenant_by_slug("acme").await.unwrap().unwrap().id, t.id);
        assert!(s.tenant_by_slug("nope").await.unwrap().is_none());
        let t2 = s
            .set_tenant_edition(t.id, Edition::Professional)
            .await
            .unwrap();
        assert_eq!(t2.edition, Edition::Professional);
        let t3 = s
            .set_tenant_domain(t.id, Some("oa.acme.com:8443"))
            .await
            .unwrap();
        assert_eq!(t3.domain.as_deref(), Some("oa.acme.com:8443"));
        let t4 = s
            .set_integration_mode(t.id, IntegrationMode::SelfBuilt)
            .await
            .unwrap();
        assert_eq!(t4.integration_mode, IntegrationMode::SelfBuilt);
        assert!(matches!(
            s.set_tenant_edition(9999, Edition::Basic).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.list_tenants().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn admins_and_sessions() {
    for s in stores().await {
        let t = s
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        let id = s.create_admin(t.id, "admin", "hash1", true).await.unwrap();
        assert!(matches!(
            s.create_admin(t.id, "admin", "h", false).await,
            Err(StoreError::Conflict(_))
        ));
        let a = s.admin_by_username(t.id, "admin").await.unwrap().unwrap();
        assert!(a.must_change_password && a.password_hash == "hash1");
        s.create_admin_session("sess", id, t.id, "csrf", 10, Some("127.0.0.1"), None)
            .await
            .unwrap();
        s.touch_admin_session("sess", 20).await.unwrap();
        let sess = s.admin_session("sess").await.unwrap().unwrap();
        assert_eq!(
            (sess.username.as_str(), sess.last_seen_at, sess.created_at),
            ("admin", 20, 10)
        );
        s.set_admin_password(id, "hash2", false, None)
            .await
            .unwrap();
        assert!(
            s.admin_session("sess").await.unwrap().is_none(),
            "password change ends sessions"
        );
        assert_eq!(s.count_admins(t.id).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn integrations_are_keyed_by_tenant_and_agentid_with_one_main() {
    for s in stores().await {
        let t = s
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        let u = s
            .create_tenant("other", "Other", Edition::Professional, None)
            .await
            .unwrap();
        let rec = |tenant_id: i64, agentid: i64, role: IntegrationRole| IntegrationRecord {
            tenant_id,
            agentid,
            role,
            corpid: "wwabc".into(),
            secret_sealed: vec![(agentid % 10) as u8],
            callback_token_sealed: vec![4],
            callback_aes_key_sealed: vec![5],
            seal_version: bridge::app::SEAL_VERSION,
            agent_json: None,
            verified_at: None,
            callback_verified_at: None,
            updated_at: 1,
        };
        s.put_integration(&rec(t.id, 1000002, IntegrationRole::Main))
            .await
            .unwrap();
        s.put_integration(&rec(t.id, 1000003, IntegrationRole::App))
            .await
            .unwrap();
        s.put_integration(&rec(t.id, 1000004, IntegrationRole::App))
            .await
            .unwrap();
        s.put_integration(&rec(u.id, 1000003, IntegrationRole::Main))
            .await
            .unwrap();
        let main = s.main_integration(t.id).await.unwrap().unwrap();
        assert_eq!((main.agentid, main.role), (1000002, IntegrationRole::Main));
        let app = s.integration(t.id, 1000003).await.unwrap().unwrap();
        assert_eq!(
            (app.role, app.secret_sealed.clone()),
            (IntegrationRole::App, vec![3u8])
        );
        assert!(s.integration(t.id, 1000005).await.unwrap().is_none());
        let all: Vec<_> = s
            .integrations(t.id)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.agentid, r.role))
            .collect();
        assert_eq!(
            all,
            vec![
                (1000002, IntegrationRole::Main),
                (1000003, IntegrationRole::App),
                (1000004, IntegrationRole::App)
            ]
        );
        // Another tenant's same agentid is its own row.
        assert_eq!(
            s.main_integration(u.id).await.unwrap().unwrap().agentid,
            1000003
        );
        // A bound app is never silently turned into the main app, nor the reverse.
        assert!(matches!(
            s.put_integration(&rec(t.id, 1000003, IntegrationRole::Main))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.put_integration(&rec(t.id, 1000002, IntegrationRole::App))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.main_integration(t.id).await.unwrap().unwrap().agentid,
            1000002,
            "a refused put changes nothing"
        );
        // Snapshots and callback state are per app.
        s.set_callback_verified(t.id, 1000003, 7).await.unwrap();
        assert_eq!(
            s.main_integration(t.id)
                .await
                .unwrap()
                .unwrap()
                .callback_verified_at,
            None
        );
        assert_eq!(
            s.integration(t.id, 1000003)
                .await
                .unwrap()
                .unwrap()
                .callback_verified_at,
            Some(7)
        );
        // The database itself allows one main app per tenant.
        let second_main =
            "INSERT INTO wecom_integrations (tenant_id, agentid, role, corpid, secret_sealed,
                callback_token_sealed, callback_aes_key_sealed, seal_version, updated_at)
             VALUES ($1, 1000009, 'main', 'wwabc', $2, $2, $2, 2, 1)";
        let refused = match &s {
            bridge::store::Store::Sqlite(p) => sqlx::query(second_main)
                .bind(t.id)
                .bind(vec![1u8])
                .execute(p)
                .await
                .is_err(),
            bridge::store::Store::Postgres(p) => sqlx::query(second_main)
                .bind(t.id)
                .bind(vec![1u8])
                .execute(p)
                .await
                .is_err(),
        };
        assert!(refused, "a second main row is refused by the unique index");
    }
}

#[tokio::test]
async fn integration_verify_files_and_audit() {
    for s in stores().await {
        let t = s
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        assert!(s.main_integration(t.id).await.unwrap().is_none());
        let mut r = IntegrationRecord {
            tenant_id: t.id,
            agentid: 1000002,
            role: IntegrationRole::Main,
            corpid: "wwabc".into(),
            secret_sealed: vec![1, 2, 3, 0, 255],
            callback_token_sealed: vec![4],
            callback_aes_key_sealed: vec![5],
            seal_version: bridge::app::SEAL_VERSION,
            agent_json: None,
            verified_at: None,
            callback_verified_at: None,
            updated_at: 1,
        };
        s.put_integration(&r).await.unwrap();
        r.agentid = 1000003;
        s.put_integration(&r).await.unwrap();
        s.set_callback_verified(t.id, 1000003, 42).await.unwrap();
        s.set_agent_snapshot(t.id, 1000003, "{}").await.unwrap();
        let got = s.main_integration(t.id).await.unwrap().unwrap();
        assert_eq!(
            (
                got.agentid,
                got.secret_sealed.clone(),
                got.callback_verified_at
            ),
            (1000003, vec![1, 2, 3, 0, 255], Some(42))
        );
        assert!(got.verified_at.is_some());

        s.put_verify_file(t.id, "WW_verify_abc.txt", "abc", None)
            .await
            .unwrap();
        s.put_verify_file(t.id, "WW_verify_abc.txt", "abc", None)
            .await
            .unwrap();
        assert_eq!(
            s.verify_file(t.id, "WW_verify_abc.txt")
                .await
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(s.list_verify_files(t.id).await.unwrap().len(), 1);
        assert!(s
            .delete_verify_file(t.id, "WW_verify_abc.txt", None)
            .await
            .unwrap());
        assert!(!s
            .delete_verify_file(t.id, "WW_verify_abc.txt", None)
            .await
            .unwrap());

        for i in 0..5 {
            s.audit(&NewAudit {
                tenant_id: t.id,
                actor: "admin:a".into(),
                action: "test.action",
                detail: format!("n{i}"),
                ip: None,
            })
            .await
            .unwrap();
        }
        let page = s.list_audit(t.id, 3, None).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
            ["n4", "n3", "n2"]
        );
        let next = s.list_audit(t.id, 3, Some(page[2].id)).await.unwrap();
        assert_eq!(next.len(), 2);
        assert!(s.list_audit(t.id + 1, 10, None).await.unwrap().is_empty());
    }
}

/// SQLite: a server's writes reach the database file in the background (the checkpointer),
/// not when a committer happens to cross the WAL threshold; the WAL stays small.
#[tokio::test]
async fn sqlite_checkpoints_in_the_background() {
    let url = bridge::testing::sqlite_url();
    let path = std::path::PathBuf::from(
        url.trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap(),
    );
    let s = bridge::store::Store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = path.with_extension("db-wal");
    let t = s
        .create_tenant("acme", "Acme", Edition::Professional, None)
        .await
        .unwrap();
    // Far below the autocheckpoint threshold: without a checkpointer all of it stays in
    // the WAL.
    let before = size(&path);
    for i in 0..300 {
        s.audit(&NewAudit {
            tenant_id: t.id,
            actor: "test".into(),
            action: "test.write",
            detail: format!("{i} {}", "x".repeat(400)),
            ip: None,
        })
        .await
        .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(size(&path), before, "nothing checkpointed yet");
    assert!(size(&wal) > 100_000, "the writes are in the WAL");

    let task = s
        .spawn_checkpointer(std::time::Duration::from_millis(50))
        .expect("SQLite has a checkpointer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size(&path) <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpointer copied nothing into the database file"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.close().await;
    tokio::time::timeout(std::time::Duration::from_secs(2), task)
        .await
        .expect("the checkpointer ends when the store closes")
        .unwrap();
}

/// Values that PostgreSQL's COPY text format gives a meaning (tab, newline, carriage
/// return, backslash, `\N`, `\.`), quotes, emoji, empty strings and NULLs travel through
/// a directory apply (new rows, upserts and updates) and read back identical on both
/// engines.
#[tokio::test]
async fn directory_values_that_copy_escapes_read_back_identical() {
    use bridge::domain::directory::{
        DeptRecord, DeptUpsert, DirectoryDiff, FieldChange, Membership, NewUser, TagRecord,
        TagUpsert, UserRecord, UserUpdate,
    };
    use bridge::domain::user::UserStatus;
    const AWKWARD: [&str; 14] = [
        "tab\there",
        "new\nline",
        "cr\r\nlf",
        "back\\slash",
        "\\N",
        "\\.",
        "\\",
        "\\\\t not a tab",
        "'single' \"double\"",
        "emoji 😀👨‍👩‍👧 表情",
        "",
        "\t\n\\",
        "a,b;c|d",
        "trailing backslash\\",
    ];
    let v = |i: usize| AWKWARD[i % AWKWARD.len()].to_string();
    let opt = |i: usize| (!i.is_multiple_of(3)).then(|| v(i));
    let record = |i: usize, shift: usize| UserRecord {
        userid: format!("User{i:02}"),
        name: v(i + shift),
        position: v(i + shift + 1),
        alias: v(i + shift + 2),
        telephone: v(i + shift + 3),
        mobile: opt(i + shift + 4),
        email: opt(i + shift + 5),
        main_department: (!i.is_multiple_of(4)).then_some(2),
        wecom_status: 1,
        direct_leader: v(i + shift + 6),
        extattr: v(i + shift + 7),
        departments: vec![Membership {
            department_id: 2,
            sort_order: i as i64,
            is_leader: i.is_multiple_of(2),
        }],
        name_withheld: false,
    };
    let n = AWKWARD.len() * 2;
    for s in stores().await {
        let t = s
            .create_tenant("acme", "Acme", Edition::Professional, None)
            .await
            .unwrap();
        let depts: Vec<DeptUpsert> = (0..AWKWARD.len())
            .map(|i| DeptUpsert {
                record: DeptRecord {
                    id: 2 + i as i64,
                    parent_id: 1,
                    name: v(i),
                    name_en: v(i + 1),
                    sort_order: i as i64,
                    leaders: v(i + 2),
                    name_withheld: false,
                },
                added: true,
                changes: Vec::new(),
            })
            .collect();
        let users: Vec<NewUser> = (0..n)
            .map(|i| NewUser {
                key: format!("user{i:02}"),
                record: Box::new(record(i, 0)),
                status: UserStatus::Authorized,
                disabled_reason: None,
            })
            .collect();
        let tags: Vec<TagUpsert> = (0..AWKWARD.len())
            .map(|i| TagUpsert {
                record: TagRecord {
                    id: 1 + i as i64,
                    name: v(i),
                    users: [format!("user{i:02}"), format!("user{:02}", i + 1)].into(),
                    departments: [2 + i as i64].into(),
                },
                added: true,
                changes: Vec::new(),
                members_changed: true,
                users_delta: None,
            })
            .collect();
        let diff = DirectoryDiff {
            departments_upsert: depts.clone(),
            users_added: users.clone(),
            tags_upsert: tags.clone(),
            ..Default::default()
        };
        s.apply_directory_diff(t.id, "wwcorp", 0, &diff, Default::default())
            .await
            .unwrap();
        let dir = s.load_directory(t.id, "wwcorp").await.unwrap();
        let e = s.engine();
        assert_eq!(dir.departments.len(), depts.len(), "{e}");
        for d in &depts {
            let got = &dir.departments[&d.record.id];
            assert_eq!(got.record, d.record, "{e}");
            assert!(got.active, "{e}");
        }
        assert_eq!(dir.users.len(), n, "{e}");
        for want in &users {
            let got = dir
                .users
                .iter()
                .find(|u| u.key.as_deref() == Some(want.key.as_str()))
                .unwrap_or_else(|| panic!("{e}: {} not read back", want.key));
            assert_eq!(got.record, *want.record, "{e}");
            assert_eq!(
                (got.status, got.disabled_reason),
                (want.status, None),
                "{e}"
            );
        }
        for want in &tags {
            assert_eq!(dir.tags[&want.record.id].record, want.record, "{e}");
        }

        // The same values again, moved along by one column, through an update of every
        // user, a second upsert of every department and a renamed tag.
        let updated: Vec<UserUpdate> = dir
            .users
            .iter()
            .map(|u| {
                let i: usize = u.key.as_deref().unwrap()[4..].parse().unwrap();
                UserUpdate {
                    user_id: u.id,
                    key: u.key.clone().unwrap(),
                    record: record(i, 1),
                    changes: vec![FieldChange {
                        field: "name".into(),
                        old: u.record.name.clone(),
                        new: v(i + 1),
                    }],
                    status: None,
                    previous_status: u.status,
                    moved_from: None,
                    departments_changed: false,
                    link_identity: false,
                    display_changed: false,
                }
            })
            .collect();
        let depts2: Vec<DeptUpsert> = depts
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.record.name = format!("{}\t{}", d.record.leaders, d.record.name_en);
                d.added = false;
                d
            })
            .collect();
        let mut tag = tags[0].clone();
        tag.record.name = "\\N".into();
        tag.members_changed = false;
        let diff = DirectoryDiff {
            departments_upsert: depts2.clone(),
            users_updated: updated.clone(),
            tags_upsert: vec![tag.clone()],
            ..Default::default()
        };
        s.apply_directory_diff(t.id, "wwcorp", 0, &diff, Default::default())
            .await
            .unwrap();
        let dir = s.load_directory(t.id, "wwcorp").await.unwrap();
        for d in &depts2 {
            assert_eq!(dir.departments[&d.record.id].record, d.record, "{e}");
        }
        for want in &updated {
            let got = dir.users.iter().find(|u| u.id == want.user_id).unwrap();
            assert_eq!(got.record, want.record, "{e}");
        }
        assert_eq!(dir.tags[&tag.record.id].record, tag.record, "{e}");
    }
}

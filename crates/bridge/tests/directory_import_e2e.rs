//! Issue 20, accounts that already exist: an import of the people a previous integration
//! knew (console upload and CLI, CSV and JSON; a dry run first, then all rows or none),
//! the first sync finding them by the tenant's match rule (ambiguous values refused,
//! no duplicate created), and field ownership on re-sync. SQLite and PostgreSQL.

mod common;
mod sync_support;

use bridge::admin::{change_status, Selection, StatusAction, StatusOrder};
use bridge::domain::apps::{Access, AppDraft, Chosen};
use bridge::domain::audit::NewAudit;
use bridge::domain::directory::import::ImportFormat;
use bridge::domain::directory::matching::MatchRule;
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::testing::database_urls;
use serde_json::json;
use sync_support::*;
use wecom_sim::fixtures::{CORPID, PROVIDER_AGENTID, PROVIDER_ID};

fn open_id(userid: &str) -> String {
    wecom_sim::model::open_userid(PROVIDER_ID, CORPID, userid)
}

/// (name, status, disabled reason, WeCom key) of a stored user by id.
async fn stored(
    t: &T,
    id: i64,
) -> Option<(String, UserStatus, Option<DisabledReason>, Option<String>)> {
    t.dir()
        .await
        .users
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| (u.record.name, u.status, u.disabled_reason, u.key))
}

async fn import_cli(t: &T, text: &str, rule: Option<&str>, yes: bool) -> Result<String, String> {
    bridge::admin::cli::import(
        t.st(),
        "default",
        text,
        ImportFormat::guess(None, text),
        rule.map(|r| MatchRule::parse(r).unwrap()),
        yes,
    )
    .await
}

fn attr(value: &str) -> String {
    // Where a page shows a value in an attribute.
    format!("\"{value}\"")
}

#[tokio::test]
async fn console_upload_previews_then_confirms_all_or_nothing() {
    for db in database_urls().await {
        let t = setup(&db).await;
        // An app made before 2022-06-20 reads members' emails (the rule below needs them).
        t.env.patch_main_app(json!({"post_2022": false})).await;
        let env = &t.env;
        let csrf = env.admin_login().await;
        let b = &env.browser;
        b.set_cookie("lang", "en");

        // Users → Import users → Upload a file.
        let users = b.get("/console/users").await;
        assert!(users.body.contains("href=\"/console/users/import\""));
        let form = b.get("/console/users/import").await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.body.contains("data-testid=\"import-form\""));

        // A bad file: every error listed with its line, nothing written.
        let bad =
            "id,name,userid,email\n5001,A,zhangsan,not-an-email\n5001,B,lisi,\n5003,,wangwu,\n";
        let p = b
            .post_multipart(
                "/console/users/import/preview",
                &[("csrf", &csrf), ("match_rule", "userid")],
                ("file", "people.csv", bad.as_bytes()),
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("data-valid=\"false\""), "{}", p.body);
        assert!(p.body.contains("data-errors=\"3\""), "{}", p.body);
        for line in ["2", "3", "4"] {
            assert!(
                p.body.contains(&format!("data-line={}", attr(line))),
                "{}",
                p.body
            );
        }
        assert!(p.body.contains("not-an-email"));
        assert!(!p.body.contains("data-testid=\"import-confirm\""));
        assert!(t.dir().await.users.is_empty());

        // Without the CSRF token: refused.
        let p = b
            .post_multipart(
                "/console/users/import/preview",
                &[("csrf", "forged")],
                ("file", "people.csv", bad.as_bytes()),
            )
            .await;
        assert_eq!(p.status, 403, "{}", p.body);

        // A good file (JSON): the dry run shows who would be created, writes nothing.
        let good = json!([
            {"id": 5001, "name": open_id("zhangsan"), "open_userid": open_id("zhangsan"), "source_agentid": PROVIDER_AGENTID, "notes": "from the old app"},
            {"id": 5002, "name": "Li Si (old)", "userid": "lisi", "email": "lisi@example.com"},
            {"id": 5003, "name": "Wang Wu", "email": "WangWu@example.com"},
            {"id": 5004, "name": "Ghost", "userid": "ghost"}
        ])
        .to_string();
        let p = b
            .post_multipart(
                "/console/users/import/preview",
                &[("csrf", &csrf), ("match_rule", "email")],
                ("file", "people.json", good.as_bytes()),
            )
            .await;
        assert!(p.body.contains("data-valid=\"true\""), "{}", p.body);
        assert!(p.body.contains("data-created=\"4\""), "{}", p.body);
        assert!(p.body.contains("data-testid=\"import-confirm\""));
        assert!(t.dir().await.users.is_empty(), "a dry run writes nothing");
        assert_eq!(p.hidden("format").as_deref(), Some("json"));

        // The confirm carries the file back and is validated again: an invalid row now
        // writes nothing at all.
        let tampered = json!([
            {"id": 5001, "name": "A", "email": "a@example.com"},
            {"id": 5002, "name": "B", "email": "broken"}
        ])
        .to_string();
        let p = b
            .post(
                "/console/users/import/confirm",
                &[
                    ("csrf", &csrf),
                    ("format", "json"),
                    ("match_rule", "email"),
                    ("content", &tampered),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("data-errors=\"1\""), "{}", p.body);
        assert!(t.dir().await.users.is_empty());

        let p = b
            .post(
                "/console/users/import/confirm",
                &[
                    ("csrf", &csrf),
                    ("format", "json"),
                    ("match_rule", "email"),
                    ("content", &good),
                ],
            )
            .await;
        assert!(p.body.contains("data-testid=\"import-done\""), "{}", p.body);
        assert!(p.body.contains("data-created=\"4\""));
        let store = &t.st().store;
        let dir = t.dir().await;
        let mut ids: Vec<i64> = dir.users.iter().map(|u| u.id).collect();
        ids.sort();
        assert_eq!(ids, [5001, 5002, 5003, 5004], "the platform's ids are kept");
        assert!(dir.users.iter().all(|u| u.key.is_none()));
        let imported = store.imported_identities(t.tenant.id).await.unwrap();
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].user_id, 5001);
        assert_eq!(imported[0].source_agentid, Some(PROVIDER_AGENTID as i64));
        assert_eq!(
            store
                .user_notes(t.tenant.id, 5001)
                .await
                .unwrap()
                .as_deref(),
            Some("from the old app")
        );
        assert_eq!(
            store.match_rule(t.tenant.id).await.unwrap(),
            MatchRule::Email
        );
        let audit = dump(store, "SELECT action, detail FROM audit_log ORDER BY id").await;
        assert!(audit.contains("directory.import"), "{audit}");
        assert!(audit.contains("4 created, 0 updated"), "{audit}");

        // The switch and the match rule: 5001 re-linked by conversion, 5002 and 5003 found
        // by email (case aside), 5004 not found; nobody duplicated.
        let o = t.sync_with(false, false).await;
        assert_eq!(
            o.status,
            bridge::domain::directory::RunStatus::Succeeded,
            "{:?}",
            o.message
        );
        let rl = o.report.relink.as_ref().unwrap();
        assert_eq!((rl.imported, rl.relinked), (1, 1));
        assert!(rl.unlinked.is_empty(), "{:?}", rl.unlinked);
        let m = o.report.matching.as_ref().unwrap();
        assert_eq!(
            (m.rule.as_str(), m.candidates, m.matched, m.unmatched),
            ("email", 3, 2, 1)
        );
        assert!(m.ambiguous.is_empty());
        assert_eq!(t.user("zhangsan").await.unwrap().2, 5001);
        assert_eq!(t.user("lisi").await.unwrap().2, 5002);
        assert_eq!(t.user("wangwu").await.unwrap().2, 5003);
        // WeCom's names replace the import's.
        assert_eq!(stored(&t, 5001).await.unwrap().0, "张三");
        assert_eq!(stored(&t, 5002).await.unwrap().0, "李四");
        let ghost = stored(&t, 5004).await.unwrap();
        assert_eq!((ghost.0.as_str(), ghost.3), ("Ghost", None));
        // New members get fresh ids past the imported ones (PostgreSQL's sequence moved).
        let qianba = t.user("qianba").await.unwrap().2;
        assert!(qianba > 5004, "{qianba}");
        let sync = b.get("/console/sync").await;
        assert!(sync.body.contains("data-rule=\"email\""), "{}", sync.body);
        let run = b.get(&format!("/console/sync/runs/{}", o.run_id)).await;
        assert!(
            run.body.contains("data-testid=\"matching\""),
            "{}",
            run.body
        );
        assert!(run.body.contains("data-matched=\"2\""));

        // The rule alone can be changed (no file): refused without a field name, saved with.
        let p = b
            .post(
                "/console/users/import/rule",
                &[
                    ("csrf", &csrf),
                    ("match_rule", "extattr"),
                    ("match_field", " "),
                ],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("data-testid=\"import-problem\""));
        assert_eq!(
            store.match_rule(t.tenant.id).await.unwrap(),
            MatchRule::Email
        );
        let p = b
            .post(
                "/console/users/import/rule",
                &[
                    ("csrf", &csrf),
                    ("match_rule", "extattr"),
                    ("match_field", "工号"),
                ],
            )
            .await;
        assert_eq!(
            p.location.as_deref(),
            Some("/console/users/import?rule=saved")
        );
        assert_eq!(
            store.match_rule(t.tenant.id).await.unwrap(),
            MatchRule::Extattr("工号".into())
        );
        assert!(b
            .get("/console/users/import?rule=saved")
            .await
            .body
            .contains("data-testid=\"rule-saved\""));
        let audit = dump(store, "SELECT action, detail FROM audit_log ORDER BY id").await;
        assert!(audit.contains("extattr:工号"), "{audit}");

        // Importing again: people WeCom owns now are refused, by line; the rest update.
        let p = b
            .post_multipart(
                "/console/users/import/preview",
                &[("csrf", &csrf), ("match_rule", "email")],
                ("file", "people.json", good.as_bytes()),
            )
            .await;
        assert!(p.body.contains("data-errors=\"3\""), "{}", p.body);
        assert!(p.body.contains("already linked to WeCom userid zhangsan"));
    }
}

#[tokio::test]
async fn cli_import_dry_run_errors_and_apply() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csv = "id,name,external_key,mobile\n9001,甲,E1,\n9002,乙,,+86 138-0000-0009\n";
        let out = import_cli(&t, csv, None, false).await.unwrap();
        assert!(
            out.contains("dry run: 2 rows, 2 to create, 0 to update"),
            "{out}"
        );
        assert!(out.contains("nothing changed"), "{out}");
        assert!(t.dir().await.users.is_empty());

        let bad = "id,name,external_key\n9001,甲,E1\nx,乙,E2\n9003,丙,E1\n";
        let err = import_cli(&t, bad, None, true).await.unwrap_err();
        assert!(err.contains("2 errors; nothing was written"), "{err}");
        assert!(err.contains("line 3: id \"x\""), "{err}");
        assert!(
            err.contains("line 4: external_key \"E1\" is also on line 2"),
            "{err}"
        );
        assert!(
            t.dir().await.users.is_empty(),
            "a bad file loses nothing and writes nothing"
        );

        // An open_userid needs the company's CorpID: known here (set-up done).
        let out = import_cli(&t, csv, Some("extattr:工号"), true)
            .await
            .unwrap();
        assert!(out.starts_with("imported: 2 rows, 2 to create"), "{out}");
        assert_eq!(t.dir().await.users.len(), 2);
        assert_eq!(
            t.st().store.match_rule(t.tenant.id).await.unwrap(),
            MatchRule::Extattr("工号".into())
        );
        // Again: updates, nothing created.
        let out = import_cli(&t, csv, None, true).await.unwrap();
        assert!(out.contains("0 to create, 2 to update"), "{out}");
        assert_eq!(t.dir().await.users.len(), 2);
    }
}

#[tokio::test]
async fn ambiguous_matches_are_refused_and_nobody_is_duplicated() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.env.patch_main_app(json!({"post_2022": false})).await;
        // Two stored people with zhangsan's email (two imports), one with an email two
        // members share.
        import_cli(
            &t,
            "id,name,email\n6001,Zhang A,zhangsan@example.com\n6003,Li?,shared@example.com\n",
            Some("email"),
            true,
        )
        .await
        .unwrap();
        import_cli(
            &t,
            "id,name,email\n6002,Zhang B,ZhangSan@example.com\n",
            None,
            true,
        )
        .await
        .unwrap();
        for u in ["lisi", "sunqi"] {
            t.sim(
                "PATCH",
                &format!("/members/{u}"),
                json!({"email": "shared@example.com"}),
            )
            .await;
        }
        let o = t.sync().await;
        let m = o.report.matching.as_ref().unwrap();
        assert_eq!((m.candidates, m.matched), (3, 0), "{m:?}");
        assert_eq!(m.ambiguous.len(), 2, "{m:?}");
        let two_people = &m.ambiguous[0];
        assert_eq!(
            two_people.users.iter().map(|u| u.0).collect::<Vec<_>>(),
            [6001, 6002]
        );
        assert_eq!(two_people.members.len(), 1);
        assert!(
            two_people.fix_en.contains("2 stored people"),
            "{}",
            two_people.fix_en
        );
        let two_members = &m.ambiguous[1];
        assert_eq!(two_members.users, [(6003, "Li?".to_string())]);
        assert_eq!(
            two_members
                .members
                .iter()
                .map(|x| x.0.as_str())
                .collect::<Vec<_>>(),
            ["lisi", "sunqi"]
        );
        assert!(two_members.fix_en.contains("2 WeCom members"));
        assert!(o
            .report
            .warnings
            .iter()
            .any(|w| w.contains("2 WeCom members")));
        // The CLI's report lists them too.
        let text = bridge::sync::cli::render(&o, false);
        assert!(text.contains("2 ambiguous"), "{text}");
        assert!(
            text.contains("shared@example.com: stored #6003 Li?; members lisi, sunqi"),
            "{text}"
        );
        // Nobody linked, and the members in question not created either.
        for u in ["zhangsan", "lisi", "sunqi"] {
            assert!(t.user(u).await.is_none(), "{u} must not be created");
        }
        for id in [6001, 6002, 6003] {
            assert_eq!(stored(&t, id).await.unwrap().3, None);
        }
        // The others arrived.
        assert!(t.user("wangwu").await.is_some());

        // What to do: correct the duplicate's key, sync again.
        import_cli(
            &t,
            "id,name,email\n6002,Zhang B,zb@elsewhere.example\n",
            None,
            true,
        )
        .await
        .unwrap();
        let o = t.sync().await;
        let m = o.report.matching.as_ref().unwrap();
        assert_eq!((m.matched, m.ambiguous.len()), (1, 1), "{m:?}");
        assert_eq!(t.user("zhangsan").await.unwrap().2, 6001);
        assert!(t.user("lisi").await.is_none());

        // A stored person whose value is already someone else's member: refused too,
        // left as is, no second wangwu.
        import_cli(
            &t,
            "id,name,email\n6900,Wang?,wangwu@example.com\n",
            None,
            true,
        )
        .await
        .unwrap();
        let wangwu = t.user("wangwu").await.unwrap().2;
        let o = t.sync().await;
        let m = o.report.matching.as_ref().unwrap();
        let linked = m
            .ambiguous
            .iter()
            .find(|a| a.users.iter().any(|u| u.0 == 6900))
            .unwrap();
        assert_eq!(linked.linked, Some(("wangwu".to_string(), wangwu)));
        assert_eq!(t.user("wangwu").await.unwrap().2, wangwu);
        assert_eq!(stored(&t, 6900).await.unwrap().3, None);
        assert_eq!(
            t.dir()
                .await
                .users
                .iter()
                .filter(|u| u.key.as_deref() == Some("wangwu"))
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn extattr_and_userid_rules_find_people() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.sim(
            "PATCH",
            "/members/zhaoliu",
            json!({"extattr": [{"name": "工号", "text": "E100"}]}),
        )
        .await;
        import_cli(
            &t,
            "id,name,external_key,userid\n7001,赵,E100,\n7002,李,,LiSi\n",
            Some("extattr:工号"),
            true,
        )
        .await
        .unwrap();
        let o = t.sync().await;
        assert_eq!(o.report.matching.as_ref().unwrap().matched, 1);
        assert_eq!(t.user("zhaoliu").await.unwrap().2, 7001);
        // Under the extattr rule the userid column is not used: lisi is someone new.
        let lisi = t.user("lisi").await.unwrap().2;
        assert_ne!(lisi, 7002);
    }
    for db in database_urls().await {
        let t = setup(&db).await;
        import_cli(&t, "id,name,userid\n7002,李,LiSi\n", Some("userid"), true)
            .await
            .unwrap();
        let o = t.sync().await;
        assert_eq!(o.report.matching.as_ref().unwrap().matched, 1);
        assert_eq!(t.user("lisi").await.unwrap().2, 7002);
        // Once linked, later syncs have no one left to match.
        let o = t.sync().await;
        assert!(o.report.matching.is_none());
        assert_eq!(o.report.diff.counts, Default::default());
    }
}

#[tokio::test]
async fn resync_leaves_what_the_bridge_owns() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.env.patch_main_app(json!({"post_2022": false})).await;
        let st = t.st();
        import_cli(
            &t,
            "id,name,email,notes\n8001,Li,lisi@example.com,keep me\n8002,Zhang,zhangsan@example.com,and me\n",
            Some("email"),
            true,
        )
        .await
        .unwrap();
        t.sync().await;
        assert_eq!(t.user("lisi").await.unwrap().2, 8001);
        // The bridge's own: account status (authorized; disabled by an admin), notes,
        // app assignments.
        let sessions = bridge::auth::MemberSessions::new(&st.cfg);
        for (ids, action) in [
            (&[8001][..], StatusAction::Authorize),
            (&[8002][..], StatusAction::Disable),
        ] {
            change_status(
                st,
                &sessions,
                t.tenant.id,
                StatusOrder {
                    selection: Selection::Ids(ids),
                    action,
                    dry_run: false,
                },
                "admin:test",
                None,
            )
            .await
            .unwrap();
        }
        let app = st
            .store
            .insert_app(
                t.tenant.id,
                &AppDraft {
                    slug: "crm".into(),
                    name_zh: "客户".into(),
                    url: "https://crm.example.com/".into(),
                    enabled: true,
                    access: Access::Chosen(Chosen {
                        users: vec![8001, 8002],
                        ..Default::default()
                    }),
                    ..AppDraft::default()
                },
                &NewAudit {
                    tenant_id: t.tenant.id,
                    actor: "admin:test".into(),
                    action: "app.created",
                    detail: "crm".into(),
                    ip: None,
                },
            )
            .await
            .unwrap();
        // Notes of a person WeCom owns are edited on the console (the import refuses them).
        let csrf = t.env.admin_login().await;
        let b = &t.env.browser;
        b.set_cookie("lang", "en");
        let long = "x".repeat(1001);
        let p = b
            .post(
                "/console/users/8002/notes",
                &[("csrf", &csrf), ("notes", &long)],
            )
            .await;
        assert_eq!(p.status, 400, "{}", p.body);
        assert!(p.body.contains("data-testid=\"notes-error\""));
        assert!(p.body.contains(&long), "the typed notes are kept");
        assert_eq!(
            st.store
                .user_notes(t.tenant.id, 8002)
                .await
                .unwrap()
                .as_deref(),
            Some("and me")
        );
        let p = b
            .post(
                "/console/users/8002/notes",
                &[("csrf", &csrf), ("notes", "  called about the VPN  ")],
            )
            .await;
        assert_eq!(
            p.location.as_deref(),
            Some("/console/users/8002?notes=saved")
        );
        let page = b.get("/console/users/8002?notes=saved").await;
        assert!(page.body.contains("data-testid=\"notes-saved\""));
        assert!(page.body.contains("called about the VPN"));
        // WeCom's own change in WeCom: name, position, departments.
        t.sim(
            "PATCH",
            "/members/lisi",
            json!({"name": "李四四", "position": "架构师", "departments": [2]}),
        )
        .await;
        t.sim("PATCH", "/members/zhangsan", json!({"name": "张三三"}))
            .await;
        let o = t.sync().await;
        assert!(
            o.report.diff.counts.users_updated >= 2,
            "{:?}",
            o.report.diff.counts
        );
        let dir = t.dir().await;
        let li = dir.users.iter().find(|u| u.id == 8001).unwrap();
        assert_eq!(li.record.name, "李四四");
        assert_eq!(li.record.position, "架构师");
        assert_eq!(
            li.record
                .departments
                .iter()
                .map(|d| d.department_id)
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(li.status, UserStatus::Authorized);
        let zs = dir.users.iter().find(|u| u.id == 8002).unwrap();
        assert_eq!(zs.record.name, "张三三");
        assert_eq!(
            (zs.status, zs.disabled_reason),
            (UserStatus::Disabled, Some(DisabledReason::Admin))
        );
        for (id, notes) in [(8001, "keep me"), (8002, "called about the VPN")] {
            assert_eq!(
                st.store
                    .user_notes(t.tenant.id, id)
                    .await
                    .unwrap()
                    .as_deref(),
                Some(notes)
            );
        }
        let app = st.store.app_by_id(t.tenant.id, app).await.unwrap().unwrap();
        assert_eq!(
            app.access,
            Access::Chosen(Chosen {
                users: vec![8001, 8002],
                ..Default::default()
            })
        );
    }
}

#[tokio::test]
async fn a_callback_never_creates_a_duplicate_of_a_stored_person() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.env.patch_main_app(json!({"post_2022": false})).await;
        t.sync().await;
        import_cli(
            &t,
            "id,name,email\n6101,New person,newbie@example.com\n",
            Some("email"),
            true,
        )
        .await
        .unwrap();
        t.enable_callbacks().await;
        t.sim(
            "POST",
            "/members",
            json!({"userid": "newbie", "name": "新人", "departments": [3], "email": "newbie@example.com"}),
        )
        .await;
        t.flush().await;
        let store = &t.st().store;
        eventually!(
            store
                .pending_callbacks(t.tenant.id, 10)
                .await
                .unwrap()
                .is_empty(),
            "the callback was not handled"
        );
        t.settle().await;
        // The callback left the member to the full reconcile's matching (it may have run
        // already): the stored person is linked, never a second one created.
        t.sync().await;
        assert_eq!(t.user("newbie").await.unwrap().2, 6101);
        let dir = t.dir().await;
        assert_eq!(
            dir.users
                .iter()
                .filter(|u| u.record.email.as_deref() == Some("newbie@example.com"))
                .count(),
            1
        );
    }
}

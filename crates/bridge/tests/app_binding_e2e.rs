//! A catalogue app bound to its own WeCom self-built app (issue 14): checked live, its
//! scope nested inside the main app's or refused with every outsider named. Both engines,
//! against wecom-sim.

mod common;

use bridge::app_binding::{bind, BindError, BindInput};
use bridge::domain::apps::AppDraft;
use bridge::domain::audit::NewAudit;
use bridge::domain::doctor::Status;
use bridge::domain::integration::IntegrationRole;
use bridge::domain::tenant::{Edition, Tenant};
use bridge::setup::Actor;
use bridge::testing::database_urls;
use common::{start, Env};
use serde_json::json;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET, SECOND_AGENTID, SECOND_SECRET};

const WIDE_AGENTID: u32 = 1000010;
const WIDE_SECRET: &str = "test-secret-too-wide-000000000000000000001";

fn actor() -> Actor {
    Actor {
        name: "admin".into(),
        ip: None,
    }
}

/// The bridge with its main app set up, and one catalogue app; returns (tenant, app id).
async fn setup(env: &Env) -> (Tenant, i64) {
    let csrf = env.admin_login().await;
    assert_eq!(
        env.save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
            .await
            .status,
        303
    );
    let st = &env.bridge.state;
    let t = st.store.tenant_by_slug("default").await.unwrap().unwrap();
    let app = st
        .store
        .insert_app(
            t.id,
            &AppDraft {
                slug: "expense".into(),
                name_zh: "报销".into(),
                url: "https://expense.example.com/".into(),
                enabled: true,
                ..AppDraft::default()
            },
            &NewAudit {
                tenant_id: t.id,
                actor: "admin".into(),
                action: "app.created",
                detail: "expense".into(),
                ip: None,
            },
        )
        .await
        .unwrap();
    (t, app)
}

fn input(agentid: u32, secret: &str) -> BindInput {
    BindInput {
        agentid: agentid.to_string(),
        secret: secret.into(),
    }
}

#[tokio::test]
async fn a_nested_app_is_bound_sealed_and_linked() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let (t, app) = setup(&env).await;
        let st = &env.bridge.state;
        // 1000003's scope is department 3 (后端组), inside the main app's 研发中心 subtree.
        let bound = bind(st, &t, app, &input(SECOND_AGENTID, SECOND_SECRET), &actor())
            .await
            .unwrap();
        assert_eq!(bound.agentid, SECOND_AGENTID);
        assert_eq!(bound.callback_path, "/wecom/callback/1000003");
        let rec = st
            .store
            .integration(t.id, i64::from(SECOND_AGENTID))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.role, IntegrationRole::App);
        assert!(!rec
            .secret_sealed
            .windows(SECOND_SECRET.len())
            .any(|w| w == SECOND_SECRET.as_bytes()));
        assert_eq!(st.open_integration(&rec).unwrap().secret, SECOND_SECRET);
        assert_eq!(
            st.store.app_wecom_agentid(t.id, app).await.unwrap(),
            Some(i64::from(SECOND_AGENTID))
        );
        assert_eq!(
            st.store
                .app_of_wecom_agentid(t.id, i64::from(SECOND_AGENTID))
                .await
                .unwrap(),
            Some(app)
        );
        // The main app is untouched.
        let main = st.store.main_integration(t.id).await.unwrap().unwrap();
        assert_eq!(main.agentid, i64::from(MAIN_AGENTID));
        let audit = st.store.list_audit(t.id, 10, None).await.unwrap();
        assert!(
            audit.iter().any(|a| a.action == "app.wecom.bound"),
            "{audit:?}"
        );

        // Re-binding with the secret left empty keeps the stored one and the callback keys.
        let o = st.open_integration(&rec).unwrap();
        bind(st, &t, app, &input(SECOND_AGENTID, ""), &actor())
            .await
            .unwrap();
        let again = st
            .store
            .integration(t.id, i64::from(SECOND_AGENTID))
            .await
            .unwrap()
            .unwrap();
        let o2 = st.open_integration(&again).unwrap();
        assert_eq!(
            (o2.secret, o2.callback_token, o2.callback_aes_key),
            (
                o.secret,
                o.callback_token.clone(),
                o.callback_aes_key.clone()
            )
        );

        // Its own callback URL verifies with its own keys; its events are acknowledged and
        // not queued for the directory (the main app hears the same changes).
        env.sim_admin(
            "PATCH",
            &format!("/corps/{CORPID}/apps/{SECOND_AGENTID}"),
            json!({"callback": {"url": format!("http://{}{}", env.domain, bound.callback_path),
                                 "token": o.callback_token, "encoding_aes_key": o.callback_aes_key}}),
        )
        .await;
        let rec = st
            .store
            .integration(t.id, i64::from(SECOND_AGENTID))
            .await
            .unwrap()
            .unwrap();
        assert!(rec.callback_verified_at.is_some());
        assert!(st
            .store
            .main_integration(t.id)
            .await
            .unwrap()
            .unwrap()
            .callback_verified_at
            .is_none());
        env.sim_admin(
            "PATCH",
            &format!("/corps/{CORPID}/members/lisi"),
            json!({"alias": "li4"}),
        )
        .await;
        let d = env.sim_admin("POST", "/deliveries/flush", json!({})).await;
        let to_app = d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["agentid"] == SECOND_AGENTID && x["status"] == 200);
        assert!(to_app, "{d}");
        assert!(st.store.list_callbacks(t.id).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_too_wide_app_is_refused_with_every_outsider_named() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let (t, app) = setup(&env).await;
        let st = &env.bridge.state;
        // Created through the simulator's admin API: 财务部 (6, outside), 周九 (in 6) and
        // 李四 (inside, in 后端组), and the tag 财务审批 (2, holding 周九).
        env.sim_admin(
            "POST",
            &format!("/corps/{CORPID}/apps"),
            json!({"agentid": WIDE_AGENTID, "name": "太宽的应用", "secret": WIDE_SECRET,
                   "trusted_ips": ["127.0.0.1"],
                   "scope": {"parties": [6], "users": ["zhoujiu", "lisi"], "tags": [2]}}),
        )
        .await;
        let err = bind(st, &t, app, &input(WIDE_AGENTID, WIDE_SECRET), &actor())
            .await
            .unwrap_err();
        let BindError::OutsideMainScope {
            agent_name,
            outsiders,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(agent_name, "太宽的应用");
        let ids = |v: &[bridge::domain::nested_scope::Named<String>]| {
            v.iter()
                .map(|n| (n.id.clone(), n.name.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            outsiders
                .departments
                .iter()
                .map(|d| (d.id, d.name.as_str()))
                .collect::<Vec<_>>(),
            vec![(6, "财务部")]
        );
        assert_eq!(
            ids(&outsiders.users),
            vec![("zhoujiu".to_string(), "周九".to_string())]
        );
        assert_eq!(
            outsiders
                .tags
                .iter()
                .map(|t| (t.id, t.name.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "财务审批")]
        );
        let zh = outsiders.message_zh();
        for name in ["财务部", "周九", "财务审批", "缩小"] {
            assert!(zh.contains(name), "{name} in {zh}");
        }
        assert!(!zh.contains("李四"), "an insider is not named: {zh}");
        assert!(err.to_string().contains("Narrow this app's visible scope"));
        // Nothing was stored or linked.
        assert!(st
            .store
            .integration(t.id, i64::from(WIDE_AGENTID))
            .await
            .unwrap()
            .is_none());
        assert_eq!(st.store.app_wecom_agentid(t.id, app).await.unwrap(), None);

        // Narrowed in WeCom to what lies inside, the same app is accepted.
        env.sim_admin(
            "PUT",
            &format!("/corps/{CORPID}/apps/{WIDE_AGENTID}/scope"),
            json!({"users": ["lisi", "qianba"], "parties": [5], "tags": [1]}),
        )
        .await;
        bind(st, &t, app, &input(WIDE_AGENTID, WIDE_SECRET), &actor())
            .await
            .unwrap();
        assert_eq!(
            st.store.app_wecom_agentid(t.id, app).await.unwrap(),
            Some(i64::from(WIDE_AGENTID))
        );
    }
}

#[tokio::test]
async fn wrong_bindings_are_refused_and_change_nothing() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let st = &env.bridge.state;
        let t0 = st.store.tenant_by_slug("default").await.unwrap().unwrap();
        // Before the main app is set up there is nothing to nest in.
        assert!(matches!(
            bind(st, &t0, 1, &input(SECOND_AGENTID, SECOND_SECRET), &actor()).await,
            Err(BindError::NotConfigured)
        ));
        let (t, app) = setup(&env).await;
        assert!(matches!(
            bind(
                st,
                &t,
                app + 100,
                &input(SECOND_AGENTID, SECOND_SECRET),
                &actor()
            )
            .await,
            Err(BindError::AppNotFound(_))
        ));
        assert!(matches!(
            bind(st, &t, app, &input(MAIN_AGENTID, MAIN_SECRET), &actor()).await,
            Err(BindError::IsMainApp(MAIN_AGENTID))
        ));
        let e = bind(
            st,
            &t,
            app,
            &input(SECOND_AGENTID, "wrong-secret"),
            &actor(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, BindError::Wecom(w) if w.errcode() == Some(40001)),
            "{e:?}"
        );
        // A new binding needs the secret.
        assert!(matches!(
            bind(st, &t, app, &input(SECOND_AGENTID, ""), &actor()).await,
            Err(BindError::Fields(_))
        ));
        assert!(st
            .store
            .integration(t.id, i64::from(SECOND_AGENTID))
            .await
            .unwrap()
            .is_none());
        assert_eq!(st.store.app_wecom_agentid(t.id, app).await.unwrap(), None);
        // One WeCom app serves one catalogue app.
        let other = st
            .store
            .insert_app(
                t.id,
                &AppDraft {
                    slug: "other".into(),
                    name_zh: "其他".into(),
                    url: "https://other.example.com/".into(),
                    enabled: true,
                    ..AppDraft::default()
                },
                &NewAudit {
                    tenant_id: t.id,
                    actor: "admin".into(),
                    action: "app.created",
                    detail: "other".into(),
                    ip: None,
                },
            )
            .await
            .unwrap();
        bind(st, &t, app, &input(SECOND_AGENTID, SECOND_SECRET), &actor())
            .await
            .unwrap();
        assert!(matches!(
            bind(
                st,
                &t,
                other,
                &input(SECOND_AGENTID, SECOND_SECRET),
                &actor()
            )
            .await,
            Err(BindError::Conflict(_))
        ));
        assert_eq!(st.store.app_wecom_agentid(t.id, other).await.unwrap(), None);
    }
}

/// The example org the demo serves: its second app 数据看板 (1000003: 数据平台组 and 徐婷)
/// lies inside the workbench app's scope, and a scope widened through the simulator's
/// admin API is not. WeCom-level only (no database), so engine-independent.
#[tokio::test]
async fn the_example_orgs_dashboard_app_is_nested_in_the_workbench() {
    let sc = wecom_sim::fixtures::acme_example();
    let corp = &sc.corps[0];
    let corpid = corp.corpid.clone();
    let secret_of = |agentid: u32| {
        corp.apps
            .iter()
            .find(|a| a.agentid == agentid)
            .map(|a| a.secret.clone())
            .expect("the example org has this app")
    };
    let (main_secret, dash_secret) = (secret_of(1000002), secret_of(1000003));
    let sim = wecom_sim::launch(
        wecom_sim::Sim::from_scenario(sc.clone()),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let client = |secret: &str| {
        wecom::Client::builder(corpid.clone(), secret)
            .api_base(sim.api_base())
            .build()
            .unwrap()
    };
    let (main, dash) = (client(&main_secret), client(&dash_secret));
    let agent = dash.agent_get(1000003).await.unwrap();
    assert_eq!(agent.name, "数据看板");
    let o = bridge::app_binding::check_nested(&main, 1000002, &dash, &agent)
        .await
        .unwrap();
    assert!(o.is_empty(), "{}", o.message_en());

    // Widened to the whole company (department 1) in the simulator: refused, named.
    let r = reqwest::Client::new()
        .put(format!(
            "{}/sim/admin/corps/{corpid}/apps/1000003/scope",
            sim.base_url
        ))
        .json(&json!({"parties": [1], "users": ["xuting"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let agent = dash.agent_get(1000003).await.unwrap();
    let o = bridge::app_binding::check_nested(&main, 1000002, &dash, &agent)
        .await
        .unwrap();
    assert_eq!(
        o.departments.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![1]
    );
    assert!(o.message_zh().contains("示例科技"), "{}", o.message_zh());
}

#[tokio::test]
async fn doctor_finds_a_bound_apps_scope_widened_in_wecom() {
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let (t, app) = setup(&env).await;
        let st = &env.bridge.state;
        let before = bridge::doctor::run(st, &t).await.unwrap();
        assert!(
            before.iter().all(|c| c.id != "app_scopes"),
            "no check without a bound app"
        );
        bind(st, &t, app, &input(SECOND_AGENTID, SECOND_SECRET), &actor())
            .await
            .unwrap();
        let app_check = |checks: &[bridge::domain::doctor::Check]| {
            checks
                .iter()
                .find(|c| c.id == "app_scopes")
                .cloned()
                .unwrap()
        };
        let c = app_check(&bridge::doctor::run(st, &t).await.unwrap());
        assert_eq!(c.status, Status::Pass, "{c:?}");

        // Someone widens the app in WeCom's console: 财务部 and 周九 are outside now.
        env.sim_admin(
            "PUT",
            &format!("/corps/{CORPID}/apps/{SECOND_AGENTID}/scope"),
            json!({"parties": [3, 6], "users": ["zhoujiu"]}),
        )
        .await;
        let checks = bridge::doctor::run(st, &t).await.unwrap();
        let c = app_check(&checks);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        for name in ["财务部 (6)", "周九 (zhoujiu)", "AgentId 1000003"] {
            assert!(c.evidence.contains(name), "{name} in {}", c.evidence);
        }
        assert!(c.fix_zh.contains("缩小"), "{}", c.fix_zh);
        assert!(!bridge::domain::doctor::all_passed(&checks));
    }
}

#[tokio::test]
async fn the_next_full_sync_warns_of_a_widened_app() {
    use bridge::domain::directory::{RunStatus, Trigger};
    use bridge::sync::{run_full, SyncOptions};
    for db in database_urls().await {
        let env = start(&db, Edition::Professional).await;
        let (t, app) = setup(&env).await;
        let st = &env.bridge.state;
        bind(st, &t, app, &input(SECOND_AGENTID, SECOND_SECRET), &actor())
            .await
            .unwrap();
        let sync = || run_full(st, &t, SyncOptions::new(Trigger::Console, "admin:test"));
        let o = sync().await.unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        assert!(
            !o.report
                .warnings
                .iter()
                .any(|w| w.contains("AgentId 1000003")),
            "{:?}",
            o.report.warnings
        );
        env.sim_admin(
            "PUT",
            &format!("/corps/{CORPID}/apps/{SECOND_AGENTID}/scope"),
            json!({"parties": [3, 6]}),
        )
        .await;
        let o = sync().await.unwrap();
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let w = o
            .report
            .warnings
            .iter()
            .find(|w| w.contains("AgentId 1000003"))
            .unwrap_or_else(|| panic!("{:?}", o.report.warnings));
        assert!(
            w.contains("reaches outside") && w.contains("财务部 (6)"),
            "{w}"
        );
        // The overview shows it to the admin.
        let home = env.browser.get("/console").await;
        assert_eq!(home.status, 200);
        let (_, warnings) = home
            .body
            .split_once("data-testid=\"sync-warnings\"")
            .unwrap_or_else(|| panic!("no warnings on the overview: {}", home.body));
        assert!(warnings.contains("财务部 (6)"), "{warnings}");
        // In the reader's language: Chinese by default, English when asked.
        assert!(
            warnings.contains("AgentId 1000003）：该应用的可见范围超出了"),
            "{warnings}"
        );
        let en = env.browser.get("/console?lang=en").await.body;
        assert!(en.contains("reaches outside the main app"), "{en}");
    }
}

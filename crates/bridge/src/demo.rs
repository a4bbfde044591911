//! `wecom-bridge demo`: the simulator with the example org and the bridge on an embedded
//! SQLite, a Professional tenant on `acme.localhost:<port>`, and the URLs to open.
//! Nothing of the wizard is pre-filled: the admin walks the guide's steps.

use crate::config::Config;
use crate::domain::tenant::Edition;
use std::path::PathBuf;
use std::process::ExitCode;

pub struct DemoArgs {
    pub data_dir: Option<PathBuf>,
    pub port: u16,
    pub sim_port: u16,
    /// The sample app behind forward auth.
    pub sample_port: u16,
    /// The tenant's edition when the data directory is new.
    pub edition: Edition,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run_inner(args: DemoArgs) -> Result<(), String> {
    let bridge_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{} ({e}); pick another with --port",
                args.port
            )
        })?;
    let port = bridge_listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let domain = format!("acme.localhost:{port}");

    let mut scenario = wecom_sim::fixtures::acme_example();
    let corp = scenario
        .corps
        .first_mut()
        .ok_or("the example org has no corp")?;
    // The example's apps trust acme.localhost:8080; follow the port actually used.
    for app in &mut corp.apps {
        app.redirect_domain = domain.clone();
        app.web_login_domain = domain.clone();
        app.home_url = app.home_url.replace("acme.localhost:8080", &domain);
    }
    let corpid = corp.corpid.clone();
    let corp_name = corp.name.clone();
    let main_app = corp
        .apps
        .first()
        .cloned()
        .ok_or("the example org has no app")?;
    let sim_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.sim_port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{} ({e}); pick another with --sim-port",
                args.sim_port
            )
        })?;
    let sim = wecom_sim::launch(wecom_sim::Sim::from_scenario(scenario), sim_listener)
        .await
        .map_err(|e| e.to_string())?;

    let (data_dir, fresh) = match args.data_dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("wecom-bridge-demo-{}", std::process::id())),
            true,
        ),
    };
    let cfg = Config {
        listen: bridge_listener.local_addr().map_err(|e| e.to_string())?,
        data_dir: data_dir.clone(),
        public_url_pattern: "http://{domain}".into(),
        wecom_api_base: sim.api_base(),
        wecom_open_weixin: sim.base_url.clone(),
        wecom_login_work: sim.base_url.clone(),
        wecom_open_work: sim.base_url.clone(),
        egress_ips: vec!["127.0.0.1".into()],
        bootstrap_edition: args.edition,
        bootstrap_domain: domain.clone(),
        bootstrap_name: corp_name.clone(),
        ..Config::default()
    };
    // Install the signal handlers before printing anything a caller may react to.
    let stop = crate::ops::shutdown::signal();
    let sample_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.sample_port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{} ({e}); pick another with --sample-port",
                args.sample_port
            )
        })?;
    let sample_port = sample_listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .port();
    let mut bridge = crate::launch(cfg, bridge_listener)
        .await
        .map_err(|e| e.to_string())?;
    // Cookies ignore ports, so the sample app on acme.localhost:<other port> receives the
    // member's session cookie, as an app on the tenant's domain behind a proxy would.
    let sample_url = format!("http://acme.localhost:{sample_port}/");
    let (tenant_id, app_id) = seed_sample_app(&bridge.state, &sample_url).await?;
    let oidc =
        crate::sample_app::register_oidc_client(&bridge.state, tenant_id, app_id, &sample_url)
            .await?;
    let sample = crate::sample_app::spawn(sample_listener, bridge.addr, domain.clone(), Some(oidc));
    let base = format!("http://{domain}");
    println!();
    println!("wecom-bridge demo is running (Ctrl-C stops it)");
    println!(
        "  data directory: {}{}",
        data_dir.display(),
        if fresh { " (temporary)" } else { "" }
    );
    println!();
    println!("  Admin console:   {base}/console");
    match &bridge.bootstrap {
        Some(b) => println!("    username {}  one-time password {}", b.username, b.one_time_password),
        None => println!("    (resumed: sign in with the password you chose; `wecom-bridge tenant reset-password default` issues a new one)"),
    }
    println!();
    println!("  For set-up step 2 (the example org in the simulated WeCom):");
    println!("    CorpID  {corpid}");
    println!("    AgentId {}", main_app.agentid);
    println!("    Secret  {}", main_app.secret);
    println!();
    println!("  Sample app (forward auth, on the workbench as 你好应用): {sample_url}");
    println!();
    println!(
        "  Simulated WeCom: {}  (admin API: {}/sim/admin/corps)",
        sim.base_url, sim.base_url
    );
    println!();
    let trigger = bridge.shutdown_trigger();
    stop.await;
    println!("stopping…");
    if let Some(t) = trigger {
        let _ = t.send(());
    }
    bridge.wait().await;
    sample.abort();
    sim.stop().await;
    if fresh {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

/// Puts the sample app into the demo tenant's catalogue (every authorized member may open
/// it), or points it at this run's port.
/// Returns (tenant id, app id).
async fn seed_sample_app(st: &crate::app::AppState, url: &str) -> Result<(i64, i64), String> {
    use crate::domain::apps::{Access, AppDraft};
    let store = &st.store;
    let tenant = store
        .tenant_by_slug("default")
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the demo tenant is missing")?;
    let existing = store
        .app_by_slug(tenant.id, crate::sample_app::SLUG)
        .await
        .map_err(|e| e.to_string())?;
    let draft = AppDraft {
        slug: crate::sample_app::SLUG.into(),
        name_zh: "你好应用".into(),
        name_en: "Hello app".into(),
        icon: "people".into(),
        category: "示例".into(),
        description: "Shows who you are, through forward auth".into(),
        position: 0,
        enabled: true,
        url: url.to_string(),
        access: Access::Everyone,
        contact: String::new(),
    };
    let audit = crate::domain::audit::NewAudit {
        tenant_id: tenant.id,
        actor: "demo".into(),
        action: "app.created",
        detail: format!("sample app at {url}"),
        ip: None,
    };
    let r = match existing {
        None => store.insert_app(tenant.id, &draft, &audit).await,
        Some(a) if a.url != url => {
            // Only the port moved: the admin's own edits stay.
            let d = AppDraft {
                url: url.to_string(),
                ..AppDraft::from(&a)
            };
            let audit = crate::domain::audit::NewAudit {
                action: "app.updated",
                ..audit
            };
            store
                .update_app(tenant.id, a.id, &d, &audit)
                .await
                .map(|_| a.id)
        }
        Some(a) => Ok(a.id),
    };
    r.map(|id| (tenant.id, id)).map_err(|e| e.to_string())
}

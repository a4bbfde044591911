//! The `wecom-bridge` command line.

use crate::config::Config;
use crate::domain::doctor::{all_passed, Status};
use crate::domain::tenant::Edition;
use crate::{app::AppState, operator};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "wecom-bridge",
    version,
    about = "Enterprise workbench and identity layer for a WeCom (企业微信) self-built app"
)]
pub struct Cli {
    /// TOML configuration file (also WECOM_BRIDGE_CONFIG); environment WECOM_BRIDGE_* overrides it.
    #[arg(long, global = true, env = "WECOM_BRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the console, sign-in and WeCom callbacks.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants (operator).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Run the simulator with the example org and the bridge on an embedded SQLite, and print what to open.
    Demo {
        /// Keep data here (resumed on the next run); default: a temporary directory removed at exit.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The bridge's port (the tenant is on acme.localhost:<port>).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The simulated WeCom's port.
        #[arg(long, default_value_t = 8090)]
        sim_port: u16,
        /// The sample app's port (behind forward auth); default: the bridge's port + 1, or
        /// a free port when --port is 0.
        #[arg(long)]
        sample_port: Option<u16>,
        /// The demo tenant's edition on a fresh data directory (basic shows the edition refusal).
        #[arg(long, default_value = "professional")]
        edition: Edition,
    },
    /// Check a tenant's WeCom integration and explain what to fix; exits 1 if a check fails.
    Doctor {
        #[arg(long)]
        tenant: String,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authorize, unauthorize or disable users: prints a dry-run count, changes them with --yes.
    Users {
        /// authorize, unauthorize or disable
        action: String,
        #[arg(long)]
        tenant: String,
        /// Members of this department and of every department below it.
        #[arg(long)]
        department: Option<i64>,
        /// User ids (as on the console's Users page), comma-separated.
        #[arg(long, value_delimiter = ',')]
        ids: Vec<i64>,
        /// Apply the change (without it, only the count is printed).
        #[arg(long)]
        yes: bool,
    },
    /// Import the people a previous integration knew from a CSV or JSON file (columns: id,
    /// name, open_userid, source_agentid, userid, email, mobile, external_key, notes): prints
    /// a dry run with every error's line; applies it, all rows or none, with --yes.
    Import {
        #[arg(long)]
        tenant: String,
        /// The file (UTF-8).
        #[arg(long)]
        file: PathBuf,
        /// csv or json (default: from the file's name, else its first character).
        #[arg(long, value_parser = parse_format)]
        format: Option<crate::domain::directory::import::ImportFormat>,
        /// How syncs find these people among WeCom's members: userid, email, mobile or
        /// extattr:<field> (e.g. extattr:工号 against external_key). Saved with --yes.
        #[arg(long, value_parser = parse_match_rule)]
        match_rule: Option<crate::domain::directory::matching::MatchRule>,
        /// Apply (without it, only the dry run is printed).
        #[arg(long)]
        yes: bool,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Sync a tenant's directory from WeCom (the self-built app's visible scope).
    Sync {
        #[arg(long)]
        tenant: String,
        /// Show what would change without applying it.
        #[arg(long)]
        dry_run: bool,
        /// Apply even if more users would be disabled than the tenant's limit allows.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Write a tenant's audit log as CSV to standard output (newest first).
    Export {
        #[arg(long)]
        tenant: String,
        /// Only this actor (e.g. admin:admin, operator, api-key:3:ci).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, or a prefix ending in "." (user.).
        #[arg(long)]
        action: Option<String>,
        /// From this instant, Unix milliseconds.
        #[arg(long)]
        since_ms: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant and its admin account (prints a one-time password).
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "basic")]
        edition: Edition,
        /// Custom domain, `host` or `host:port`.
        #[arg(long)]
        domain: Option<String>,
    },
    /// List tenants.
    List,
    /// Change a tenant's edition (basic, standard, professional, enterprise).
    SetEdition { slug: String, edition: Edition },
    /// Change a tenant's custom domain.
    SetDomain { slug: String, domain: String },
    /// Set the tenant's WeCom self-built app (CorpID, AgentId, Secret), checked live with
    /// WeCom before it is saved, as the console's set-up step 2.
    SetWecom {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        corpid: String,
        #[arg(long)]
        agentid: String,
        /// A file holding the app's Secret (kept off the command line and shell history).
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// Issue a new one-time password for the tenant's admin account.
    ResetPassword { slug: String },
}

/// Logs to stderr as text, or JSON lines with `log_format = "json"`; each line of a
/// request carries its `request` span (with the request id).
pub fn init_tracing(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WECOM_BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match format {
        crate::config::LogFormat::Text => b.try_init(),
        crate::config::LogFormat::Json => b.json().with_current_span(true).try_init(),
    };
}

fn parse_format(s: &str) -> Result<crate::domain::directory::import::ImportFormat, String> {
    crate::domain::directory::import::ImportFormat::parse(s)
        .ok_or_else(|| "csv or json".to_string())
}

fn parse_match_rule(s: &str) -> Result<crate::domain::directory::matching::MatchRule, String> {
    crate::domain::directory::matching::MatchRule::parse(s).map_err(|e| e.to_string())
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub async fn run(cli: Cli) -> ExitCode {
    if let Command::Demo {
        data_dir,
        port,
        sim_port,
        sample_port,
        edition,
    } = cli.command
    {
        init_tracing(crate::config::LogFormat::Text);
        return crate::demo::run(crate::demo::DemoArgs {
            data_dir,
            port,
            sim_port,
            sample_port: sample_port.unwrap_or(if port == 0 { 0 } else { port.saturating_add(1) }),
            edition,
        })
        .await;
    }
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    init_tracing(cfg.log_format);
    match cli.command {
        Command::Serve => serve(cfg).await,
        Command::Migrate => match crate::open(&cfg).await {
            Ok((store, _)) => {
                println!("migrations applied ({})", store.engine());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Tenant(TenantCmd::SetWecom {
            tenant,
            corpid,
            agentid,
            secret_file,
        }) => {
            crate::admin::cli::set_wecom_command(cfg, &tenant, &corpid, &agentid, &secret_file)
                .await
        }
        Command::Tenant(cmd) => tenant(cfg, cmd).await,
        Command::Doctor { tenant, json } => doctor(cfg, &tenant, json).await,
        Command::Sync {
            tenant,
            dry_run,
            force,
        } => crate::sync::cli::run(cfg, &tenant, dry_run, force).await,
        Command::Users {
            action,
            tenant,
            department,
            ids,
            yes,
        } => match crate::admin::StatusAction::parse(&action) {
            Some(a) => {
                crate::admin::cli::users_command(
                    cfg,
                    &tenant,
                    a,
                    crate::admin::cli::UserSelection { department, ids },
                    yes,
                )
                .await
            }
            None => fail(format!(
                "unknown action {action:?}: use authorize, unauthorize or disable"
            )),
        },
        Command::Import {
            tenant,
            file,
            format,
            match_rule,
            yes,
        } => crate::admin::cli::import_command(cfg, &tenant, &file, format, match_rule, yes).await,
        Command::Audit(AuditCmd::Export {
            tenant,
            actor,
            action,
            since_ms,
        }) => {
            crate::admin::cli::audit_command(
                cfg,
                &tenant,
                crate::store::AuditQuery {
                    actor,
                    action,
                    from_ms: since_ms,
                    ..Default::default()
                },
            )
            .await
        }
        Command::Demo { .. } => unreachable!("handled above"),
    }
}

async fn serve(cfg: Config) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", cfg.listen)),
    };
    let pattern = cfg.public_url_pattern.clone();
    let stop = crate::ops::shutdown::signal();
    let mut handle = match crate::launch(cfg, listener).await {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    tracing::info!(addr = %handle.addr, "wecom-bridge listening");
    if let Some(b) = &handle.bootstrap {
        let url = pattern.replace("{domain}", &b.domain);
        println!(
            "First start: created tenant {:?} on {}",
            b.tenant_slug, b.domain
        );
        println!("  Console:  {url}/console");
        println!("  Username: {}", b.username);
        println!(
            "  One-time password (change it at first sign-in): {}",
            b.one_time_password
        );
    }
    let trigger = handle.shutdown_trigger();
    stop.await;
    if let Some(t) = trigger {
        let _ = t.send(());
    }
    handle.wait().await;
    ExitCode::SUCCESS
}

async fn tenant(cfg: Config, cmd: TenantCmd) -> ExitCode {
    let (store, _) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let r: Result<(), operator::OperatorError> = async {
        match cmd {
            TenantCmd::Create {
                slug,
                name,
                edition,
                domain,
            } => {
                let c = operator::create_tenant(&store, &slug, &name, edition, domain.as_deref())
                    .await?;
                println!(
                    "created tenant {} ({}) on {}",
                    c.tenant.slug,
                    edition,
                    c.tenant.domain.as_deref().unwrap_or("<no domain>")
                );
                println!("admin username: {}", c.username);
                println!("one-time password: {}", c.one_time_password);
            }
            TenantCmd::List => {
                println!(
                    "{:<16} {:<14} {:<12} {:<32} name",
                    "slug", "edition", "wecom", "domain"
                );
                for t in store.list_tenants().await? {
                    println!(
                        "{:<16} {:<14} {:<12} {:<32} {}",
                        t.slug,
                        t.edition.as_str(),
                        t.integration_mode.as_str(),
                        t.domain.as_deref().unwrap_or("-"),
                        t.name
                    );
                }
            }
            TenantCmd::SetEdition { slug, edition } => {
                let t = operator::set_edition(&store, &slug, edition).await?;
                println!("tenant {} is now on {}", t.slug, t.edition);
            }
            TenantCmd::SetDomain { slug, domain } => {
                let t = operator::set_domain(&store, &slug, &domain).await?;
                println!(
                    "tenant {} now answers on {}",
                    t.slug,
                    t.domain.unwrap_or_default()
                );
            }
            TenantCmd::ResetPassword { slug } => {
                let p = operator::reset_admin_password(&store, &slug).await?;
                println!("one-time password for {slug}/admin: {p}");
            }
            // Served by `run` (it checks the credentials with WeCom).
            TenantCmd::SetWecom { .. } => {}
        }
        Ok(())
    }
    .await;
    store.close().await;
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn doctor(cfg: Config, slug: &str, json: bool) -> ExitCode {
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let tenant = match operator::tenant(&store, slug).await {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let st = AppState::new(cfg, store, sealer);
    let checks = match crate::doctor::run(&st, &tenant).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).unwrap_or_default()
        );
    } else {
        println!(
            "doctor: tenant {} ({})",
            tenant.slug,
            tenant.domain.as_deref().unwrap_or("no domain")
        );
        for c in &checks {
            let mark = match c.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skipped => "SKIP",
            };
            println!("[{mark}] {} / {}", c.title_en, c.title_zh);
            if !c.evidence.is_empty() {
                println!("       evidence: {}", c.evidence);
            }
            if !c.fix_en.is_empty() {
                println!("       fix: {}", c.fix_en);
                println!("       修复: {}", c.fix_zh);
            }
        }
    }
    st.store.close().await;
    if all_passed(&checks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

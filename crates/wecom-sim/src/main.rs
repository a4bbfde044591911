//! The `wecom-sim` binary: serve a scenario, or generate a synthetic org.
//!
//! ```text
//! wecom-sim [serve] [--scenario FILE] [--listen 127.0.0.1:8090]
//! wecom-sim generate --members 100000 --departments 5000 --tags 200 --seed 42 [--out FILE]
//! ```
//! Without `--scenario` the built-in example org (`examples/acme.toml`) is served.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wecom_sim::model::ProviderKind;
use wecom_sim::{Scenario, Sim};

/// The example org, so `wecom-sim` alone gives a working demo.
const ACME: &str = include_str!("../examples/acme.toml");

#[derive(Parser)]
#[command(
    name = "wecom-sim",
    version,
    about = "A faithful WeCom (企业微信) API simulator",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `wecom-sim --scenario …` is `wecom-sim serve --scenario …`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the WeCom API, the OAuth pages and the admin API.
    Serve(ServeArgs),
    /// Write a deterministic synthetic org as a scenario file.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Scenario file (TOML, or JSON if it ends in .json); default: the built-in example.
    #[arg(long, env = "WECOM_SIM_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "WECOM_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
}

#[derive(Args)]
struct GenerateArgs {
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    #[arg(long, default_value_t = 5_000)]
    departments: usize,
    #[arg(long, default_value_t = 200)]
    tags: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file (TOML if it ends in .toml, else JSON); default: JSON on stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
        Some(Command::Generate(args)) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wecom-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> Result<Scenario, String> {
    match path {
        Some(p) => Scenario::load(p).map_err(|e| e.to_string()),
        None => {
            let sc: Scenario =
                toml::from_str(ACME).map_err(|e| format!("built-in example: {e}"))?;
            sc.validate().map_err(|e| e.to_string())?;
            Ok(sc)
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let scenario = load(args.scenario.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        // The banner is written first so the org is not held twice (a clone of a
        // million members) while the simulator takes it over.
        let base_url = format!(
            "http://{}",
            listener
                .local_addr()
                .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?
        );
        let banner = banner(&base_url, &scenario);
        let handle = wecom_sim::launch(Sim::from_scenario(scenario), listener)
            .await
            .map_err(|e| format!("cannot start: {e}"))?;
        print!("{banner}");
        wait_for_shutdown().await;
        tracing::info!("shutting down");
        handle.stop().await;
        Ok(())
    })
}

/// What a developer needs to point a client at the sim.
fn banner(base_url: &str, scenario: &Scenario) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "wecom-sim listening on {base_url}");
    let _ = writeln!(out, "  API base:  {base_url}/cgi-bin/");
    let _ = writeln!(out, "  admin API: {base_url}/sim/admin/");
    for c in &scenario.corps {
        let _ = writeln!(out,);
        let _ = writeln!(out, "corp {} ({})", c.corpid, c.name);
        let _ = writeln!(
            out,
            "  {} departments, {} members, {} tags",
            c.departments.len(),
            c.members.len(),
            c.tags.len()
        );
        if let Some(s) = &c.contact_sync_secret {
            let _ = writeln!(out, "  contact-sync secret: {s}");
        }
        for a in &c.apps {
            let _ = writeln!(
                out,
                "  app {} {:?}: secret {}{}",
                a.agentid,
                a.name,
                a.secret,
                if a.close { " (disabled)" } else { "" }
            );
        }
        for p in &c.provider_apps {
            let _ = writeln!(
        out,
                "  provider app {} ({}, provider {}): token via POST {base_url}/sim/admin/corps/{}/provider_apps/{}/token",
                p.agentid,
                match p.kind {
                    ProviderKind::ThirdParty => "third-party",
                    ProviderKind::DaiKaiFa => "代开发",
                },
                p.provider_id,
                c.corpid,
                p.agentid
            );
        }
    }
    out
}

/// Ctrl-C (or SIGTERM on Unix) stops the server cleanly.
async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn generate(args: GenerateArgs) -> Result<(), String> {
    use std::io::Write as _;
    let scenario = wecom_sim::generate::generate(&wecom_sim::generate::GenerateOptions {
        members: args.members,
        departments: args.departments,
        tags: args.tags,
        seed: args.seed,
    });
    let toml_out = args
        .out
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e == "toml"));
    // JSON is written as it is serialized: a million members would otherwise be a
    // second, 1.5 GB copy of the org in one string.
    let write = |out: &mut dyn std::io::Write| -> Result<(), String> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        if toml_out {
            let text = scenario
                .to_toml()
                .map_err(|e| format!("cannot write TOML: {e}"))?;
            out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        } else {
            serde_json::to_writer(&mut out, &scenario)
                .map_err(|e| format!("cannot write JSON: {e}"))?;
            out.write_all(b"\n").map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())
    };
    match &args.out {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
            write(&mut f).map_err(|e| format!("cannot write {}: {e}", p.display()))
        }
        None => write(&mut std::io::stdout().lock()),
    }
}

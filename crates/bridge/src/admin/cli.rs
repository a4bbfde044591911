//! Operator commands: `users authorize|unauthorize|disable` (a dry-run count first, the
//! change only with `--yes`) and `audit export` (CSV). Each prints what to do on error.

use super::{change_status, AdminError, Selection, StatusAction, StatusOrder};
use crate::app::AppState;
use crate::config::Config;
use crate::store::{AuditQuery, UserCursorQuery};
use std::process::ExitCode;

/// Which users a CLI status change names.
pub struct UserSelection {
    /// Members of this department and the departments below it.
    pub department: Option<i64>,
    pub ids: Vec<i64>,
}

/// Resolves the selection, counts (dry run), and with `yes` applies. Returns the text
/// to print.
pub async fn users(
    st: &AppState,
    slug: &str,
    action: StatusAction,
    sel: UserSelection,
    yes: bool,
) -> Result<String, String> {
    let tenant = crate::operator::tenant(&st.store, slug)
        .await
        .map_err(|e| format!("{e} (list tenants with `wecom-bridge tenant list`)"))?;
    let selection = match (sel.department, sel.ids.is_empty()) {
        (Some(d), true) => Selection::Filter(UserCursorQuery {
            department_subtree: Some(d),
            ..Default::default()
        }),
        (None, false) => Selection::Ids(&sel.ids),
        (Some(_), false) => return Err("name the users one way: --department or --ids".into()),
        (None, true) => return Err("name the users: --department <id> or --ids 1,2,3".into()),
    };
    let sessions = crate::auth::MemberSessions::new(&st.cfg);
    let explain = |e: AdminError| match e {
        AdminError::NotFound(m) => {
            format!("{m} not found: check the ids on the console's Users page")
        }
        other => other.to_string(),
    };
    let dry = change_status(
        st,
        &sessions,
        tenant.id,
        StatusOrder {
            selection: selection.clone(),
            action,
            dry_run: true,
        },
        "operator",
        None,
    )
    .await
    .map_err(explain)?;
    if dry.matched == 0 {
        if let Some(d) = sel.department {
            return Err(format!(
                "no user is in department {d} or below it: check the id on the console's Users page, or run a sync first"
            ));
        }
    }
    let mut out = format!(
        "dry run: {} users named, {} would change\n",
        dry.matched,
        dry.changing.len()
    );
    if !yes {
        out.push_str("nothing changed; run again with --yes to apply\n");
        return Ok(out);
    }
    let done = change_status(
        st,
        &sessions,
        tenant.id,
        StatusOrder {
            selection,
            action,
            dry_run: false,
        },
        "operator",
        None,
    )
    .await
    .map_err(explain)?;
    out.push_str(&format!("changed {} users\n", done.changing.len()));
    Ok(out)
}

pub async fn users_command(
    cfg: Config,
    slug: &str,
    action: StatusAction,
    sel: UserSelection,
    yes: bool,
) -> ExitCode {
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e} (check data_dir / database_url)");
            return ExitCode::from(2);
        }
    };
    let st = AppState::new(cfg, store, sealer);
    let r = users(&st, slug, action, sel, yes).await;
    st.store.close().await;
    match r {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The audit log of a tenant as CSV (newest first, at most 100,000 entries).
pub async fn audit_export(st: &AppState, slug: &str, q: AuditQuery) -> Result<String, String> {
    let tenant = crate::operator::tenant(&st.store, slug)
        .await
        .map_err(|e| format!("{e} (list tenants with `wecom-bridge tenant list`)"))?;
    super::export::export_csv(st, tenant.id, q, crate::web::pages::format_utc)
        .await
        .map_err(|e| e.to_string())
}

pub async fn audit_command(cfg: Config, slug: &str, q: AuditQuery) -> ExitCode {
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e} (check data_dir / database_url)");
            return ExitCode::from(2);
        }
    };
    let st = AppState::new(cfg, store, sealer);
    let r = audit_export(&st, slug, q).await;
    st.store.close().await;
    match r {
        Ok(csv) => {
            print!("{csv}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `tenant set-wecom`: the console's step 2 from the command line, checked live against
/// WeCom (gettoken, then agent/get) before anything is saved. Returns the text to print.
pub async fn set_wecom(
    st: &AppState,
    slug: &str,
    corpid: &str,
    agentid: &str,
    secret: &str,
) -> Result<String, String> {
    use crate::setup::SetupError;
    let tenant = crate::operator::tenant(&st.store, slug)
        .await
        .map_err(|e| format!("{e} (list tenants with `wecom-bridge tenant list`)"))?;
    let input = crate::domain::integration::WecomCredentialsInput {
        corpid: corpid.trim().to_string(),
        agentid: agentid.trim().to_string(),
        secret: secret.trim().to_string(),
    };
    let actor = crate::setup::Actor {
        name: "operator".into(),
        ip: None,
    };
    match crate::setup::save_credentials(st, &tenant, &input, &actor).await {
        Ok(agent) => Ok(format!(
            "WeCom accepted the credentials: app {:?} (AgentId {}) saved for tenant {}\nnext: wecom-bridge doctor --tenant {}\n",
            agent.name, input.agentid, tenant.slug, tenant.slug
        )),
        Err(SetupError::Fields(f)) => Err(f
            .0
            .iter()
            .map(|(field, (_, en))| format!("--{field}: {en}"))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(SetupError::Wecom(w)) => {
            let x = w.explain();
            Err(format!("WeCom refused: {} — {} ({w}); nothing was saved", x.title_en, x.fix_en))
        }
        Err(SetupError::Edition(e)) => Err(format!(
            "{e} (raise it with `wecom-bridge tenant set-edition {} professional`)",
            tenant.slug
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn set_wecom_command(
    cfg: Config,
    slug: &str,
    corpid: &str,
    agentid: &str,
    secret_file: &std::path::Path,
) -> ExitCode {
    let secret = match std::fs::read_to_string(secret_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot read the secret file {}: {e} (put the app's Secret alone in a file readable by this user)",
                secret_file.display()
            );
            return ExitCode::from(2);
        }
    };
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e} (check data_dir / database_url)");
            return ExitCode::from(2);
        }
    };
    let st = AppState::new(cfg, store, sealer);
    let r = set_wecom(&st, slug, corpid, agentid, &secret).await;
    st.store.close().await;
    match r {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `import`: the people a previous integration knew, from a CSV or JSON file. A dry run
/// (what would be created and updated, every error with its line); with `yes` and no
/// error, applied in one transaction. Returns the text to print, or the errors.
pub async fn import(
    st: &AppState,
    slug: &str,
    text: &str,
    format: crate::domain::directory::import::ImportFormat,
    match_rule: Option<crate::domain::directory::matching::MatchRule>,
    yes: bool,
) -> Result<String, String> {
    let tenant = crate::operator::tenant(&st.store, slug)
        .await
        .map_err(|e| format!("{e} (list tenants with `wecom-bridge tenant list`)"))?;
    let r = super::import::import_people(
        st,
        tenant.id,
        super::import::ImportRequest {
            text,
            format,
            confirm: yes,
            match_rule,
        },
        "operator",
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let p = &r.plan;
    if !p.is_valid() {
        let n = p.errors.len();
        let mut out = format!(
            "{n} {}; nothing was written. Correct the file and run again:\n",
            if n == 1 { "error" } else { "errors" }
        );
        for e in &p.errors {
            out.push_str(&format!("  {e}\n"));
        }
        return Err(out);
    }
    let mut out = format!(
        "{}: {} rows, {} to create, {} to update\n",
        if r.applied { "imported" } else { "dry run" },
        p.rows.len(),
        p.create.len(),
        p.update.len()
    );
    for c in p.create.iter().take(20) {
        out.push_str(&format!("  + #{} {} (line {})\n", c.id, c.name, c.line));
    }
    for u in p.update.iter().take(20) {
        out.push_str(&format!(
            "  ~ #{} {} → {} (line {})\n",
            u.id,
            u.old_name.as_deref().unwrap_or(""),
            u.name,
            u.line
        ));
    }
    if p.create.len() + p.update.len() > 40 {
        out.push_str("  …\n");
    }
    if r.applied {
        out.push_str(&format!(
            "next: wecom-bridge sync --tenant {slug} --dry-run (shows who the sync finds, and who it cannot re-link)\n"
        ));
    } else {
        out.push_str("nothing changed; run again with --yes to apply\n");
    }
    Ok(out)
}

pub async fn import_command(
    cfg: Config,
    slug: &str,
    file: &std::path::Path,
    format: Option<crate::domain::directory::import::ImportFormat>,
    match_rule: Option<crate::domain::directory::matching::MatchRule>,
    yes: bool,
) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => {
                eprintln!(
                    "error: {} is not UTF-8 text: save it as UTF-8 (CSV UTF-8 in Excel)",
                    file.display()
                );
                return ExitCode::from(2);
            }
        },
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let format = format.unwrap_or_else(|| {
        crate::domain::directory::import::ImportFormat::guess(file.to_str(), &text)
    });
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e} (check data_dir / database_url)");
            return ExitCode::from(2);
        }
    };
    let st = AppState::new(cfg, store, sealer);
    let r = import(&st, slug, &text, format, match_rule, yes).await;
    st.store.close().await;
    match r {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("error: {e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
    }
}

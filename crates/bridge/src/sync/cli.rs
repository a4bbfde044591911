//! `wecom-bridge sync --tenant T [--dry-run] [--force]`: a full sync with a progress bar
//! and the run's report. Exit codes: 0 done, 3 stopped by the mass-disable guard, 1 failed,
//! 2 bad input.

use super::{start_full, RunOutcome, SyncError, SyncOptions};
use crate::app::AppState;
use crate::config::Config;
use crate::domain::directory::{RunReport, RunStatus, Trigger};
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(cfg: Config, slug: &str, dry_run: bool, force: bool) -> ExitCode {
    let fail = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(2)
    };
    let (store, sealer) = match crate::open(&cfg).await {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let tenant = match crate::operator::tenant(&store, slug).await {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let concurrency = cfg.sync_concurrency;
    let st = AppState::new(cfg, store, sealer);
    let mut opts = SyncOptions::new(Trigger::Cli, "operator");
    opts.dry_run = dry_run;
    opts.force = force;
    opts.concurrency = concurrency;
    let started = match start_full(&st, &tenant, opts).await {
        Ok(s) => s,
        Err(e) => {
            st.store.close().await;
            return fail(e.explain().0);
        }
    };
    let progress = started.progress.clone();
    let stats = started.stats.clone();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:<14} [{bar:40}] {pos}/{len} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let work = started.execute(&st);
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                let (phase, done, total) = progress.snapshot();
                match crate::sync::rate_wait_secs(&st, &stats) {
                    Some(secs) => bar.set_message(format!("{phase}: {}", crate::sync::rate_wait_note(secs).0)),
                    None => bar.set_message(phase),
                }
                bar.set_length(total);
                bar.set_position(done);
            }
        }
    };
    bar.finish_and_clear();
    st.store.close().await;
    match result {
        Ok(o) => {
            print!("{}", render(&o, dry_run));
            match o.status {
                RunStatus::Blocked => ExitCode::from(3),
                RunStatus::Succeeded => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            }
        }
        Err(e) => {
            let (en, zh) = SyncError::explain(&e);
            eprintln!("sync failed: {en}\n同步失败：{zh}\nNothing was changed.");
            ExitCode::from(1)
        }
    }
}

/// The report as text: counts, API calls against the lower bound, withheld fields,
/// samples of the diff.
pub fn render(o: &RunOutcome, dry_run: bool) -> String {
    let mut s = String::new();
    let r: &RunReport = &o.report;
    let c = r.diff.counts;
    let _ = writeln!(
        s,
        "run #{} {}{} in {:.1} s ({} members in scope)",
        o.run_id,
        o.status.as_str(),
        if dry_run {
            " (dry run: nothing applied)"
        } else {
            ""
        },
        o.duration.as_secs_f64(),
        r.members
    );
    if let Some(m) = &o.message {
        let _ = writeln!(s, "\n{m}");
        if let Some(g) = &r.guard {
            let _ = writeln!(s, "{}", g.message_zh());
        }
    }
    let _ = writeln!(s, "\n{:<22} {:>8}", "users added", c.users_added);
    for (k, v) in [
        ("users updated", c.users_updated),
        ("users moved", c.users_moved),
        ("users disabled", c.users_disabled),
        ("users re-enabled", c.users_reenabled),
        ("departments added", c.departments_added),
        ("departments updated", c.departments_updated),
        ("departments removed", c.departments_removed),
        ("tags added", c.tags_added),
        ("tags updated", c.tags_updated),
        ("tags removed", c.tags_removed),
        ("identities re-linked", c.identities_linked),
    ] {
        let _ = writeln!(s, "{k:<22} {v:>8}");
    }
    let total: u64 = r.api_calls.values().map(|e| e.calls).sum();
    let _ = writeln!(
        s,
        "\n{:<28} {:>8} {:>8} {:>8}",
        "WeCom API", "calls", "retries", "errors"
    );
    for (k, e) in &r.api_calls {
        let _ = writeln!(s, "{k:<28} {:>8} {:>8} {:>8}", e.calls, e.retries, e.errors);
    }
    if let Some(b) = &r.bound {
        let _ = writeln!(
            s,
            "{:<28} {:>8}   lower bound C_min = D {} + T {} + U {} + {} = {}",
            "total",
            total,
            b.departments,
            b.tags,
            b.loose_users,
            b.c_min() - b.departments - b.tags - b.loose_users,
            b.c_min()
        );
    }
    if let Some(res) = &r.resumed {
        let _ = writeln!(s, "{}", res.note().0);
    }
    let (waits, wait_ms) = r
        .api_calls
        .values()
        .fold((0, 0), |(n, ms), e| (n + e.rate_waits, ms + e.rate_wait_ms));
    if waits > 0 {
        let _ = writeln!(
            s,
            "waited {waits} time(s), {:.0} s in all, for WeCom's rate limit",
            wait_ms as f64 / 1000.0
        );
    }
    if !r.withheld.is_empty() {
        let _ = writeln!(s, "\nFields WeCom withheld:");
        for w in &r.withheld {
            let _ = writeln!(
                s,
                "  {} ({} of {}): {}",
                w.field, w.count, w.total, w.note_en
            );
        }
    }
    if !r.coverage.is_empty() {
        let _ = writeln!(s, "\nMember fields (members not disabled: from the directory / from the member's consent / none):");
        for c in &r.coverage {
            let _ = writeln!(
                s,
                "  {}: {} / {} / {}",
                c.field,
                c.directory,
                c.consent,
                c.missing()
            );
        }
    }
    if let Some(rl) = &r.relink {
        let _ = writeln!(
            s,
            "\nSwitch from the third-party app: {} imported users, {} re-linked, {} not re-linked ({} conversion calls)",
            rl.imported,
            rl.relinked,
            rl.unlinked.len(),
            rl.conversion_calls
        );
        for u in &rl.unlinked {
            let _ = writeln!(
                s,
                "  user #{} {} ({}): {}",
                u.user_id, u.name, u.open_userid, u.reason
            );
        }
    }
    if let Some(m) = &r.matching {
        let _ = writeln!(
            s,
            "\nMatching the people already stored (rule {}): {} not linked to WeCom, {} matched, {} ambiguous, {} not found",
            m.rule,
            m.candidates,
            m.matched,
            m.ambiguous.len(),
            m.unmatched
        );
        for a in &m.ambiguous {
            let users: Vec<String> = a.users.iter().map(|(id, n)| format!("#{id} {n}")).collect();
            let members: Vec<&str> = a.members.iter().map(|(u, _)| u.as_str()).collect();
            let _ = writeln!(
                s,
                "  {}: stored {}; members {} (what to do: see the warnings)",
                a.value,
                users.join(", "),
                if members.is_empty() {
                    a.linked
                        .as_ref()
                        .map_or("-".to_string(), |(u, id)| format!("{u} (user #{id})"))
                } else {
                    members.join(", ")
                }
            );
        }
    }
    let lists = [
        ("added", &r.diff.added),
        ("updated", &r.diff.updated),
        ("disabled", &r.diff.disabled),
    ];
    for (what, list) in lists {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n{what}:");
        for u in list.iter().take(20) {
            let changes: Vec<String> = u
                .changes
                .iter()
                .map(|c| format!("{}: {:?} → {:?}", c.field, c.old, c.new))
                .collect();
            let _ = writeln!(
                s,
                "  {} {} {} {}",
                u.userid,
                u.name,
                u.note,
                changes.join("; ")
            );
        }
        if list.len() > 20 {
            let _ = writeln!(s, "  … (the console shows up to {})", super::REPORT_SAMPLES);
        }
    }
    for (old, new, name) in &r.diff.possible_renames {
        let _ = writeln!(
            s,
            "possible userid change: {old} → {new} ({name}); link by hand if it is one person"
        );
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

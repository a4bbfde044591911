//! Issue 17, "words" and "times": the Chinese console shows no raw machine string (run
//! statuses, triggers, kinds, phases, audit actions, `user:3` / `wecom:lisi`, "UTC UTC"),
//! times are in the tenant's time zone (Asia/Shanghai by default, a console setting), and
//! the admin's profile menu links to "change password".

mod common;
mod sync_support;

use bridge::domain::audit::NewAudit;
use bridge::testing::database_urls;
use sync_support::*;

/// The text a person reads: tags, scripts and attribute values left out.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        let tail = &rest[i..];
        let skip_to = if tail.starts_with("<script") {
            tail.find("</script>").map(|j| j + "</script>".len())
        } else if tail.starts_with("<style") {
            tail.find("</style>").map(|j| j + "</style>".len())
        } else {
            tail.find('>').map(|j| j + 1)
        };
        match skip_to {
            Some(j) => rest = &tail[j..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Raw machine words that must not reach a person in the Chinese console.
const RAW: [&str; 24] = [
    "succeeded",
    "running",
    "failed",
    "blocked",
    "interrupted",
    "wizard",
    "dry_run",
    "incremental",
    "unauthorized",
    "authorized",
    "left_scope",
    "loose_members",
    "UTC UTC",
    "member.login",
    "admin.login",
    "directory.sync",
    "wecom.credentials",
    "app.wecom",
    "wecom_qr",
    "wecom_client",
    "user:",
    "wecom:",
    "admin:",
    "authorize:",
];

fn assert_no_raw(path: &str, html: &str) {
    let text = visible_text(html);
    for w in RAW {
        assert!(
            !text.contains(w),
            "{path}: the raw word {w:?} is shown:\n{text}"
        );
    }
    // A bare "full" kind or "added" note, as a word of its own.
    for w in ["full", "added", "console", "scope", "tags"] {
        assert!(
            !text
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|t| t == w),
            "{path}: the raw word {w:?} is shown:\n{text}"
        );
    }
}

async fn wait_run(t: &T, location: &str) -> serde_json::Value {
    loop {
        let p = t.env.browser.get(&format!("{location}/progress")).await;
        let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
        if v["finished"] == true {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn chinese_console_reads_as_words_in_the_tenants_time_zone() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        let b = &t.env.browser;
        // A dry run from the wizard and a sync from the console.
        let r = b
            .post(
                "/console/sync/run",
                &[("csrf", &csrf), ("dry_run", "1"), ("trigger", "wizard")],
            )
            .await;
        let dry = r.location.unwrap();
        assert_eq!(wait_run(&t, &dry).await["status"], "succeeded");
        let r = b.post("/console/sync/run", &[("csrf", &csrf)]).await;
        let run = r.location.unwrap();
        assert_eq!(wait_run(&t, &run).await["status"], "succeeded");
        // A bulk authorization, and a member's sign-in recorded by both of their names.
        let st = t.st();
        let lisi = st
            .store
            .users_by_wecom_userids(t.tenant.id, &["lisi".to_string()])
            .await
            .unwrap()[0]
            .1;
        let r = b
            .post(
                "/console/users",
                &[
                    ("csrf", &csrf),
                    ("action", "authorize"),
                    (&format!("u{lisi}"), "on"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let done = r.location.unwrap();
        for (actor, action, detail) in [
            ("wecom:lisi", "member.login", "signed in via wecom_qr"),
            (&format!("user:{lisi}") as &str, "member.logout", ""),
            ("wecom:lisi", "member.login_denied", "not authorized"),
        ] {
            st.store
                .audit(&NewAudit {
                    tenant_id: t.tenant.id,
                    actor: actor.into(),
                    action,
                    detail: detail.into(),
                    ip: None,
                })
                .await
                .unwrap();
        }

        for path in [
            "/console/sync".to_string(),
            dry.clone(),
            run.clone(),
            "/console/audit".to_string(),
            done.clone(),
            "/console/api-keys".to_string(),
        ] {
            let p = b.get(&path).await;
            assert_eq!(p.status, 200, "{path}");
            assert_no_raw(&path, &p.body);
        }
        let sync = visible_text(&b.get("/console/sync").await.body);
        for w in ["成功", "设置向导", "管理后台", "预览（未修改）", "全量同步"]
        {
            assert!(sync.contains(w), "{w}: {sync}");
        }
        let report = visible_text(&b.get(&dry).await.body);
        assert!(
            report.contains("未授权"),
            "the added people's status: {report}"
        );
        let audit = b.get("/console/audit").await;
        // The entries' table (the filter above it lists the names too).
        let table = &audit.body[audit.body.find("<table class=\"audit\">").unwrap()..];
        let text = visible_text(table);
        // One person, one name: `user:N` and `wecom:lisi` both read 李四.
        assert_eq!(text.matches("成员 李四").count(), 3, "{text}");
        // ... and one choice in the filter, which finds the entries of both names.
        let choice = format!("<option value=\"member:{lisi}\">成员 李四</option>");
        assert_eq!(audit.body.matches(&choice).count(), 1, "{}", audit.body);
        assert_eq!(audit.body.matches(">成员 李四</option>").count(), 1);
        let by_lisi = b
            .get(&format!("/console/audit?actor=member%3A{lisi}"))
            .await;
        assert_eq!(by_lisi.status, 200);
        let rows = by_lisi.body.matches("<tr data-action=").count();
        assert_eq!(rows, 3, "{}", by_lisi.body);
        assert!(by_lisi.body.contains("data-actor=\"wecom:lisi\""));
        assert!(by_lisi
            .body
            .contains(&format!("data-actor=\"user:{lisi}\"")));
        for w in [
            "成员登录",
            "通过企业微信扫码登录",
            "成员登录被拒绝",
            "授权用户",
            "未授权 → 已授权",
            "管理员 admin",
            "通讯录同步",
        ] {
            assert!(text.contains(w), "{w}: {text}");
        }
        // The stored values stay available to tools, in attributes.
        assert!(audit.body.contains("data-action=\"member.login_denied\""));
        assert!(audit.body.contains("data-actor=\"wecom:lisi\""));
        assert!(visible_text(&b.get(&done).await.body).contains("已授权 1 人"));

        // Times: Asia/Shanghai by default, with the offset; no "UTC" anywhere.
        assert_eq!(t.tenant.time_zone, "Asia/Shanghai");
        for path in ["/console/sync", "/console/audit"] {
            let body = b.get(path).await.body;
            assert!(body.contains("+08:00"), "{path}: {body}");
            assert!(body.contains("Asia/Shanghai"), "{path}");
            assert!(!visible_text(&body).contains("UTC"), "{path}");
        }
        // The admin picks another zone in the console; an unknown name is refused.
        let page = b.get("/console/settings/time-zone").await;
        assert_eq!(page.status, 200);
        assert!(page
            .body
            .contains("<option value=\"Asia/Shanghai\" selected>"));
        assert!(page.body.contains("<option value=\"Europe/Paris\""));
        let r = b
            .post(
                "/console/settings/time-zone",
                &[("csrf", &csrf), ("time_zone", "Mars/Olympus")],
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("Mars/Olympus"), "{}", r.body);
        let r = b
            .post(
                "/console/settings/time-zone",
                &[("csrf", "wrong"), ("time_zone", "America/New_York")],
            )
            .await;
        assert_eq!(r.status, 403);
        let r = b
            .post(
                "/console/settings/time-zone",
                &[("csrf", &csrf), ("time_zone", "America/New_York")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let tenant = st.store.tenant_by_id(t.tenant.id).await.unwrap().unwrap();
        assert_eq!(tenant.time_zone, "America/New_York");
        let audit = b.get("/console/audit").await.body;
        assert!(
            audit.contains("-05:00") || audit.contains("-04:00"),
            "{audit}"
        );
        assert!(!audit.contains("+08:00"));
        assert!(visible_text(&audit).contains("修改时区"));
        assert!(
            b.get(&run).await.body.contains("America/New_York")
                || b.get("/console/sync")
                    .await
                    .body
                    .contains("America/New_York")
        );

        // The profile menu: the username, change password, time zone, sign out.
        let home = b.get("/console").await.body;
        assert!(home.contains("data-testid=\"profile-menu\""));
        assert!(home.contains("href=\"/console/password\""));
        assert!(home.contains("href=\"/console/settings/time-zone\""));
        assert!(home.contains("action=\"/console/logout\""));
        let pw = b.get("/console/password").await;
        assert_eq!(pw.status, 200);
        assert!(pw.body.contains("data-testid=\"change-password-title\""));
        assert!(pw.body.contains("修改密码"));
        assert!(
            pw.body.contains("data-testid=\"profile-menu\""),
            "the menu is there too"
        );
        t.env.bridge.stop().await;
    }
}

/// Issue 17, "language": the browser's Accept-Language counts until the person picks a
/// language; the 404 page is in both languages with the way back.
#[tokio::test]
async fn accept_language_until_chosen_and_a_bilingual_404() {
    let env = common::start(
        &bridge::testing::sqlite_url(),
        bridge::domain::tenant::Edition::Professional,
    )
    .await;
    let b = &env.browser;
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &str| {
        b.send(
            http.get(b.url(path))
                .header("accept-language", accept.to_string()),
        )
    };
    let lang_of = |body: &str| {
        let i = body.find("<html lang=\"").unwrap() + "<html lang=\"".len();
        body[i..i + body[i..].find('"').unwrap()].to_string()
    };
    // An English browser gets English; a Chinese one, or none, Chinese.
    let p = get("/console/login", "en-US,en;q=0.9").await;
    assert_eq!(lang_of(&p.body), "en", "{}", p.body);
    assert_eq!(
        lang_of(&get("/console/login", "zh-CN,zh;q=0.9,en;q=0.8").await.body),
        "zh-CN"
    );
    assert_eq!(lang_of(&b.get("/console/login").await.body), "zh-CN");
    assert_eq!(lang_of(&get("/login", "en-GB").await.body), "en");
    // Caches are told that a page depends on the language headers.
    let r = http
        .get(b.url("/console/login"))
        .header("host", &b.host)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Accept-Language")),
        "{:?}",
        r.headers()
    );
    // The person chooses Chinese: the choice sticks, whatever the browser says.
    let p = b
        .send(
            http.get(b.url("/console/login?lang=zh"))
                .header("accept-language", "en-US"),
        )
        .await;
    assert_eq!(lang_of(&p.body), "zh-CN");
    assert_eq!(lang_of(&get("/console/login", "en-US").await.body), "zh-CN");
    assert_eq!(lang_of(&get("/login", "en-US").await.body), "zh-CN");

    // A page that does not exist: both languages, and links back.
    let p = b.get("/no/such/page").await;
    assert_eq!(p.status, 404);
    for w in [
        "找不到此页面",
        "Page not found",
        "返回工作台",
        "Back to the workbench",
        "管理后台",
        "Admin console",
        "data-testid=\"error-nav\"",
        "href=\"/\"",
        "href=\"/console\"",
        "/no/such/page",
    ] {
        assert!(p.body.contains(w), "{w}: {}", p.body);
    }
    assert!(!p.body.contains("not found: this page"));
    // Another error (a form without its CSRF token) reads in both languages too.
    let p = b.post("/console/login", &[("username", "x")]).await;
    assert!(p.status == 403 || p.status == 400, "{}", p.status);
    assert!(p.body.contains("data-testid=\"error-page\""), "{}", p.body);
    assert!(p.body.contains("data-testid=\"error-nav\""));
    env.bridge.stop().await;
}

/// Issue 17, Doctor: its evidence reads in the page's language.
#[tokio::test]
async fn doctor_evidence_in_both_languages() {
    let t = setup(&bridge::testing::sqlite_url()).await;
    t.env.admin_login().await;
    let b = &t.env.browser;
    let zh = visible_text(&b.get("/console/doctor").await.body);
    for w in [
        "gettoken 成功",
        "企业微信接受来自本服务器的调用",
        "已启用",
        "企业微信的可信域名是",
    ] {
        assert!(zh.contains(w), "{w}: {zh}");
    }
    for w in [
        "succeeded",
        "accepted from this server",
        "found and enabled",
        "not checked",
    ] {
        assert!(!zh.contains(w), "{w}: {zh}");
    }
    let en_page = b.get("/console/doctor?lang=en").await.body;
    let en = visible_text(&en_page);
    assert!(
        en.contains("gettoken succeeded") && en.contains("found and enabled"),
        "{en}"
    );
    // Every evidence line of the English page is in English.
    let evidence: Vec<&str> = en_page
        .split("data-testid=\"evidence\">")
        .skip(1)
        .map(|s| &s[..s.find("</div>").unwrap()])
        .collect();
    assert!(evidence.len() >= 6, "{en_page}");
    for e in evidence {
        // Names from WeCom (the app's, quoted) are data, not words of the page.
        let words: String = e.split("&#34;").step_by(2).collect();
        assert!(
            !words
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{e}"
        );
    }
    t.env.bridge.stop().await;
}

/// Issue 17, "Audit": the log is filtered by who, what and day (the tenant's days), the
/// filter survives paging and goes into the CSV export, a date that is no date is
/// refused by name, an empty result says "no match", and the retention period is shown
/// (and kept: older entries are deleted).
#[tokio::test]
async fn audit_log_filters_exports_and_shows_its_retention() {
    for db in database_urls().await {
        let t = setup(&db).await;
        t.env.admin_login().await;
        let b = &t.env.browser;
        let st = t.st();
        for i in 0..60 {
            st.store
                .audit(&NewAudit {
                    tenant_id: t.tenant.id,
                    actor: "api-key:7:deploy".into(),
                    action: "user.authorized",
                    detail: format!("user {i}"),
                    ip: None,
                })
                .await
                .unwrap();
        }
        let today = &bridge::web::time::Clock::of(&t.tenant).show(st.clock.now_ms())[..10];

        // Unfiltered: every kind of entry; the filter's lists name them in words.
        let all = b.get("/console/audit").await;
        assert_eq!(all.status, 200);
        assert!(all.body.contains("<option value=\"admin.login\""));
        assert!(all.body.contains("<option value=\"user.authorized\""));
        assert!(all.body.contains("<option value=\"api-key:7:deploy\""));
        assert!(all.body.contains("data-testid=\"retention\""));
        assert!(
            visible_text(&all.body).contains("400"),
            "the retention period"
        );

        // By action: only those, 50 a page, and the next page keeps the filter.
        let page = b
            .get(&format!(
                "/console/audit?action=user.authorized&from={today}&to={today}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(
            page.body.matches("data-action=\"user.authorized\"").count(),
            50
        );
        assert!(!page.body.contains("data-action=\"admin.login\""));
        assert!(
            page.body.contains(&format!("value=\"{today}\"")),
            "the dates stay"
        );
        let older = page
            .body
            .split("\" data-testid=\"older\"")
            .next()
            .and_then(|s| s.rsplit("href=\"/console/audit?").next())
            .filter(|_| page.body.contains("data-testid=\"older\""))
            .expect("a link to older entries")
            .replace("&#38;", "&");
        assert!(older.contains("action=user.authorized") && older.contains("before="));
        let next = b.get(&format!("/console/audit?{older}")).await;
        assert_eq!(
            next.body.matches("data-action=\"user.authorized\"").count(),
            10
        );
        assert!(!next.body.contains("data-action=\"admin.login\""));

        // By actor, combined with the action: the admin never authorized anyone here.
        let none = b
            .get("/console/audit?actor=admin%3Aadmin&action=user.authorized")
            .await;
        assert_eq!(none.status, 200);
        assert!(none.body.contains("data-testid=\"empty\""));
        assert!(visible_text(&none.body).contains("没有符合筛选条件的记录"));
        let mine = b.get("/console/audit?actor=admin%3Aadmin").await;
        assert!(mine.body.contains("data-actor=\"admin:admin\""));
        assert!(!mine.body.contains("data-actor=\"api-key:7:deploy\""));

        // A day before any entry: nothing; a day that does not exist: refused by name.
        let past = b.get("/console/audit?to=2020-01-01").await;
        assert!(past.body.contains("data-testid=\"empty\""));
        let bad = b.get("/console/audit?from=2026-13-40").await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("data-testid=\"audit-error\""));
        assert!(bad.body.contains("2026-13-40"));
        assert_eq!(
            b.get("/console/audit/export.csv?from=nope").await.status,
            400
        );

        // The export follows the filter: the header and the 60 entries, no others.
        assert!(page
            .body
            .contains("href=\"/console/audit/export.csv?action=user.authorized&#38;from="));
        let csv = b
            .get("/console/audit/export.csv?action=user.authorized")
            .await;
        assert_eq!(csv.status, 200);
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "id,at,actor,action,detail,ip");
        assert_eq!(lines.len(), 61, "{}", csv.body);
        assert!(lines[1..].iter().all(|l| l.contains(",user.authorized,")));

        // Retention: entries older than the cut are deleted, newer ones kept.
        let now = st.clock.now_ms();
        assert_eq!(st.store.purge_audit(now - 3_600_000).await.unwrap(), 0);
        let n = st.store.purge_audit(now + 1).await.unwrap();
        assert!(n >= 61, "{n}");
        assert!(st
            .store
            .list_audit(t.tenant.id, 10, None)
            .await
            .unwrap()
            .is_empty());
        t.env.bridge.stop().await;
    }
}

/// Issue 17, "the overview never says done": the overview is a health summary (set-up
/// steps with ticks, the last and next sync, users by status, members signed in today,
/// doctor's last finding), and the next-step card moves on as each step is done, to
/// "set-up complete". The wizard's step pills carry the same ticks.
#[tokio::test]
async fn overview_is_a_health_summary_and_the_next_step_moves_on() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let csrf = t.env.admin_login().await;
        let b = &t.env.browser;
        let step_of = |body: &str| {
            let i = body.find("data-testid=\"next-step\" data-step=\"").unwrap();
            body[i + 35..].split('"').next().unwrap().to_string()
        };
        let done_of = |body: &str| body.matches("data-done=\"true\"").count();
        // Credentials saved, doctor never run: step 3 is next, and says to run doctor.
        let home = b.get("/console").await.body;
        assert_eq!(step_of(&home), "3", "{home}");
        assert_eq!(done_of(&home), 2);
        assert!(home.contains("data-testid=\"health\""));
        assert!(visible_text(&home).contains("还没有同步"));
        assert!(home.contains("href=\"/console/doctor\""));
        // Doctor runs (and is kept): its worst finding is on the overview, and the
        // callback URL WeCom has not verified is a warning that does not hold step 3.
        assert_eq!(b.get("/console/doctor").await.status, 200);
        let home = b.get("/console").await.body;
        assert!(home.contains("data-testid=\"doctor\""));
        assert_eq!(step_of(&home), "4", "{home}");
        let doctor = &home[home.find("data-testid=\"doctor\"").unwrap()..];
        assert!(
            doctor.contains("badge warn") || doctor.contains("badge pass"),
            "{doctor}"
        );
        // The wizard's pills tick the same steps.
        let wizard = b.get("/console/setup/4").await.body;
        assert_eq!(done_of(&wizard), 3, "steps 1-3 ticked");

        // A sync: step 4 done, the last sync and the next reconcile shown, users counted.
        let r = b.post("/console/sync/run", &[("csrf", &csrf)]).await;
        assert_eq!(
            wait_run(&t, &r.location.unwrap()).await["status"],
            "succeeded"
        );
        let home = b.get("/console").await.body;
        assert_eq!(step_of(&home), "5");
        let text = visible_text(&home);
        assert!(home.contains("class=\"badge succeeded\""), "{home}");
        assert!(text.contains("未授权"), "users by status: {text}");
        assert!(home.contains("href=\"/console/users?status=unauthorized\""));
        assert!(
            !text.contains("首次同步后开始"),
            "the next reconcile has a time"
        );

        // WeCom ticked in the login configuration: step 5 done.
        let r = b
            .post(
                "/console/settings/login",
                &[("csrf", csrf.as_str()), ("wecom", "on"), ("password", "on")],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(step_of(&b.get("/console").await.body), "6");
        // A member signs in: set-up complete, counted among today's sign-ins.
        let st = t.st();
        let lisi = st
            .store
            .users_by_wecom_userids(t.tenant.id, &["lisi".to_string()])
            .await
            .unwrap()[0]
            .1;
        // (The session row as a WeCom sign-in writes it: login_e2e drives the real one.)
        st.store
            .start_user_session(
                &bridge::store::NewUserSession {
                    id_hash: "overview-test",
                    tenant_id: t.tenant.id,
                    user_id: lisi,
                    via: "wecom_client",
                    now: st.clock.now_ms(),
                    ip: None,
                    user_agent: None,
                },
                &NewAudit {
                    tenant_id: t.tenant.id,
                    actor: format!("user:{lisi}"),
                    action: "member.login",
                    detail: "signed in via wecom_client".into(),
                    ip: None,
                },
            )
            .await
            .unwrap();
        let home = b.get("/console").await.body;
        assert_eq!(step_of(&home), "done", "{home}");
        assert_eq!(done_of(&home), 6);
        assert!(visible_text(&home).contains("设置已完成"));
        let today = &home[home.find("data-testid=\"signed-in-today\"").unwrap()..];
        assert!(
            today.starts_with("data-testid=\"signed-in-today\">1<"),
            "{today}"
        );
        t.env.bridge.stop().await;
    }
}

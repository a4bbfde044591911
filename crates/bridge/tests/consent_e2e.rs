//! Withheld fields filled with the member's consent (issue 20), end to end against
//! wecom-sim on SQLite and (with TEST_DATABASE_URL) PostgreSQL: the opt-in in the login
//! configuration, the in-client `snsapi_privateinfo` sign-in through the simulated
//! WeCom client's consent page, `auth/getuserdetail`, the values' provenance, and a
//! full sync and a change_contact callback that lack the fields leaving them intact.

mod common;
mod sync_support;

use bridge::domain::consent::{FieldSource, PrivateField};
use bridge::domain::user::UserStatus;
use bridge::testing::database_urls;
use common::*;
use serde_json::json;
use sync_support::*;
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID};

const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A member's browser: its own cookies and User-Agent, the tenant's Host.
struct Member {
    b: Browser,
    ua: &'static str,
}

impl Member {
    async fn get(&self, path: &str) -> Page {
        self.b
            .send(
                no_redirects()
                    .get(self.b.url(path))
                    .header("user-agent", self.ua),
            )
            .await
    }
}

/// A page of wecom-sim, fetched as the member's client would.
async fn sim_get(url: &str, ua: &str) -> Page {
    let r = no_redirects()
        .get(url)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    Page {
        status: r.status().as_u16(),
        location: r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string()),
        body: r.text().await.unwrap(),
    }
}

/// Appends `k=v` to a URL's query (the `#wechat_redirect` fragment stays client-side).
fn with_param(url: &str, k: &str, v: &str) -> String {
    format!("{}&{k}={v}", url.split('#').next().unwrap())
}

struct C {
    t: T,
    csrf: String,
    zhangsan: i64,
}

/// The fixture's org synced (its main app is post-2022: no mobile, email, avatar or
/// gender in the directory), the admin signed in, WeCom sign-in on, 张三 authorized.
async fn setup_consent(db: &str) -> C {
    let t = setup(db).await;
    t.sync().await;
    let csrf = t.env.admin_login().await;
    let r = set_login(&t, &csrf, false).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let zhangsan = t.user("zhangsan").await.unwrap().2;
    t.st()
        .store
        .set_users_status(t.tenant.id, &[zhangsan], UserStatus::Authorized, None)
        .await
        .unwrap();
    // The fixture has no corporate mailbox: give 张三 one.
    t.sim(
        "PATCH",
        "/members/zhangsan",
        json!({"biz_mail": "zhangsan@corp.example.com"}),
    )
    .await;
    C { t, csrf, zhangsan }
}

async fn set_login(t: &T, csrf: &str, consent: bool) -> Page {
    let mut form = vec![("csrf", csrf), ("wecom", "on"), ("password", "on")];
    if consent {
        form.push(("consent_fields", "on"));
    }
    t.env.browser.post("/console/settings/login", &form).await
}

impl C {
    fn member(&self, ua: &'static str) -> Member {
        Member {
            b: Browser::new(self.t.env.bridge.addr, &self.t.env.domain),
            ua,
        }
    }

    /// From the app's home page to WeCom's authorize URL.
    async fn to_wecom(&self, m: &Member, start: &str) -> String {
        let p = m.get(start).await;
        assert_eq!(p.status, 303, "{start}: {}", p.body);
        p.location.unwrap()
    }

    /// Picks `userid` on the simulated WeCom page (consenting, if it asks) and opens
    /// the callback; returns its answer.
    async fn finish(&self, m: &Member, to_wecom: &str, userid: &str) -> Page {
        let r = sim_get(&with_param(to_wecom, "sim_userid", userid), m.ua).await;
        assert_eq!(r.status, 302, "sim: {}", r.body);
        let loc = r.location.unwrap();
        let prefix = format!("http://{}", self.t.env.domain);
        m.get(loc.strip_prefix(&prefix).unwrap()).await
    }

    async fn consented(&self) -> Vec<(PrivateField, String, FieldSource, i64)> {
        self.t
            .st()
            .store
            .consented_fields(self.t.tenant.id, self.zhangsan)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.field, c.value, c.source, c.recorded_at))
            .collect()
    }

    async fn audit(&self) -> Vec<(String, String, String)> {
        self.t
            .st()
            .store
            .list_audit(self.t.tenant.id, 200, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action, e.detail))
            .collect()
    }

    async fn sim_member(&self, userid: &str) -> serde_json::Value {
        self.t
            .env
            .sim_admin(
                "GET",
                &format!("/corps/{CORPID}/members/{userid}"),
                json!({}),
            )
            .await
    }
}

#[tokio::test]
async fn consent_fills_withheld_fields_and_no_sync_erases_them() {
    for db in database_urls().await {
        let c = setup_consent(&db).await;
        let t = &c.t;

        // Off by default: the in-client sign-in stays silent (snsapi_base).
        let page = t.env.browser.get("/console/settings/login").await;
        assert!(
            page.body.contains("name=\"consent_fields\""),
            "{}",
            page.body
        );
        assert!(!page
            .body
            .contains("name=\"consent_fields\" value=\"on\" checked"));
        assert!(
            page.body.contains("授权页面"),
            "the consent page is explained"
        );
        let m = c.member(WXWORK_UA);
        let loc = c.to_wecom(&m, "/wecom/home").await;
        assert!(loc.contains("scope=snsapi_base"), "{loc}");

        // Turned on (audited): the in-client sign-in asks for snsapi_privateinfo, with
        // the agentid WeCom requires for it.
        let r = set_login(t, &c.csrf, true).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let page = t.env.browser.get("/console/settings/login").await;
        assert!(page
            .body
            .contains("name=\"consent_fields\" value=\"on\" checked"));
        assert!(c
            .audit()
            .await
            .iter()
            .any(|(_, a, d)| a == "login_config.consent_fields" && d.ends_with("off → on")));

        let m = c.member(WXWORK_UA);
        let loc = c.to_wecom(&m, "/wecom/home").await;
        assert!(
            loc.contains("scope=snsapi_privateinfo")
                && loc.contains(&format!("agentid={MAIN_AGENTID}")),
            "{loc}"
        );
        // The simulated WeCom client shows the consent page before anyone is picked.
        let consent_page = sim_get(&loc, WXWORK_UA).await;
        assert_eq!(consent_page.status, 200);
        assert!(
            consent_page.body.contains("申请获取你的以下信息"),
            "{}",
            consent_page.body
        );
        let done = c.finish(&m, &loc, "zhangsan").await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/")),
            "{}",
            done.body
        );

        // The fields WeCom holds for 张三, each recorded as consented, with its time.
        let sim = c.sim_member("zhangsan").await;
        let filled = c.consented().await;
        let value = |f: PrivateField| {
            filled
                .iter()
                .find(|x| x.0 == f)
                .unwrap_or_else(|| panic!("{f:?} not filled: {filled:?}"))
                .1
                .clone()
        };
        assert_eq!(value(PrivateField::Mobile), sim["mobile"].as_str().unwrap());
        assert_eq!(value(PrivateField::Email), sim["email"].as_str().unwrap());
        assert_eq!(value(PrivateField::BizMail), "zhangsan@corp.example.com");
        assert_eq!(value(PrivateField::Avatar), sim["avatar"].as_str().unwrap());
        assert_eq!(value(PrivateField::Gender), sim["gender"].to_string());
        assert_eq!(filled.len(), 5);
        assert!(filled
            .iter()
            .all(|x| x.2 == FieldSource::WecomConsent && x.3 > 0));
        // The audit names the fields, never their values.
        let audit = c.audit().await;
        let entry = audit
            .iter()
            .find(|(_, a, _)| a == "member.consent_fields")
            .expect("audited");
        assert_eq!(entry.0, "wecom:zhangsan");
        assert!(
            entry.2.contains("biz_mail") && !entry.2.contains('@'),
            "{entry:?}"
        );

        // Forward auth passes the corporate mailbox (verified) as Remote-Email.
        let r = t
            .env
            .browser
            .post(
                "/console/apps",
                &[
                    ("csrf", c.csrf.as_str()),
                    ("slug", "hello"),
                    ("name_zh", "你好"),
                    ("url", "/apps/hello/"),
                    ("enabled", "on"),
                    ("access", "everyone"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let v = no_redirects()
            .get(format!(
                "http://{}/auth/verify?app=hello",
                t.env.bridge.addr
            ))
            .header("host", &t.env.domain)
            .header("cookie", m.b.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(v.status(), 200);
        assert_eq!(v.headers()["remote-email"], "zhangsan@corp.example.com");

        // The console shows each value's source; the Users page counts them.
        let detail = t
            .env
            .browser
            .get(&format!("/console/users/{}?lang=en", c.zhangsan))
            .await;
        assert_eq!(detail.status, 200, "{}", detail.body);
        assert!(detail.body.contains("zhangsan@corp.example.com"));
        assert_eq!(
            detail.body.matches("data-source=\"wecom_consent\"").count(),
            5,
            "{}",
            detail.body
        );
        assert!(
            detail.body.contains("from member&#39;s consent (")
                || detail.body.contains("from member&#x27;s consent ("),
            "{}",
            detail.body
        );
        let users = t.env.browser.get("/console/users?lang=en").await;
        assert!(
            users.body.contains(
                "<tr data-field=\"biz_mail\"><td>Corporate email</td><td data-source=\"wecom_directory\">0</td><td data-source=\"wecom_consent\">1</td>"
            ),
            "{}",
            users.body
        );

        // A full sync cannot see the fields (post-2022 app): values and provenance stay,
        // and its report counts them.
        let o = t.sync().await;
        assert_eq!(c.consented().await, filled);
        let email = o
            .report
            .coverage
            .iter()
            .find(|x| x.field == "email")
            .expect("coverage in the report");
        assert_eq!((email.directory, email.consent), (0, 1));
        let dir = t.dir().await;
        let zs = dir
            .users
            .iter()
            .find(|u| u.key.as_deref() == Some("zhangsan"))
            .unwrap();
        assert_eq!(
            (zs.record.mobile.as_deref(), zs.record.email.as_deref()),
            (None, None)
        );
        let run = t
            .env
            .browser
            .get(&format!("/console/sync/runs/{}?lang=en", o.run_id))
            .await;
        assert!(
            run.body.contains("data-testid=\"field-coverage\""),
            "{}",
            run.body
        );

        // A change_contact callback (the post-2022 profile has none of the fields) that
        // updates 张三 leaves them too.
        t.enable_callbacks().await;
        t.sim("PATCH", "/members/zhangsan", json!({"position": "架构师"}))
            .await;
        t.flush().await;
        eventually!(
            t.dir()
                .await
                .users
                .iter()
                .any(|u| u.key.as_deref() == Some("zhangsan") && u.record.position == "架构师"),
            "update_user not applied"
        );
        t.settle().await;
        assert_eq!(c.consented().await, filled);

        // A later consenting sign-in refreshes the values (and their time).
        t.sim(
            "PATCH",
            "/members/zhangsan",
            json!({"mobile": "13911112222"}),
        )
        .await;
        let m = c.member(WXWORK_UA);
        let loc = c.to_wecom(&m, "/wecom/home").await;
        let done = c.finish(&m, &loc, "zhangsan").await;
        assert_eq!(done.status, 303, "{}", done.body);
        let again = c.consented().await;
        let mobile = again.iter().find(|x| x.0 == PrivateField::Mobile).unwrap();
        assert_eq!(mobile.1, "13911112222");

        // An app that sees the fields (created before the 2022 cut): the directory's
        // values win where it has them; consent still fills the rest.
        t.env.patch_main_app(json!({"post_2022": false})).await;
        t.sim(
            "PATCH",
            "/members/zhangsan",
            json!({"email": "zs.dir@example.com"}),
        )
        .await;
        t.settle().await;
        t.sync().await;
        let detail = t
            .env
            .browser
            .get(&format!("/console/users/{}?lang=en", c.zhangsan))
            .await;
        let source_of = |field: &str| {
            let row = detail
                .body
                .split(&format!("data-field=\"{field}\""))
                .nth(1)
                .unwrap_or_else(|| panic!("{field}: {}", detail.body));
            let row = &row[..row.find("</dd>").unwrap()];
            row.to_string()
        };
        let email = source_of("email");
        assert!(
            email.contains("zs.dir@example.com")
                && email.contains("data-source=\"wecom_directory\""),
            "{email}"
        );
        assert!(source_of("biz_mail").contains("data-source=\"wecom_consent\""));
        // The consented values themselves are kept as they were.
        assert_eq!(c.consented().await, again);
    }
}

#[tokio::test]
async fn qr_login_is_unchanged_and_a_refused_ticket_does_not_fail_the_sign_in() {
    for db in database_urls().await {
        let c = setup_consent(&db).await;
        let t = &c.t;
        let r = set_login(t, &c.csrf, true).await;
        assert_eq!(r.status, 303, "{}", r.body);

        // QR login in a browser: no scope, no ticket, no auth/getuserdetail call.
        t.env.sim_admin("DELETE", "/counters", json!({})).await;
        let m = c.member(CHROME_UA);
        let loc = c.to_wecom(&m, "/login/wecom").await;
        assert!(!loc.contains("scope="), "{loc}");
        let done = c.finish(&m, &loc, "zhangsan").await;
        assert_eq!(done.status, 303, "{}", done.body);
        let counters = t.env.sim_admin("GET", "/counters", json!({})).await;
        assert!(
            counters["counters"]["auth/getuserdetail"].is_null(),
            "{counters}"
        );
        assert!(c.consented().await.is_empty());

        // WeCom refuses the ticket (40029): the member is signed in all the same, and
        // the audit says what failed and why.
        t.env
            .sim_admin(
                "POST",
                "/faults",
                json!({"path": "auth/getuserdetail", "errcode": 40029}),
            )
            .await;
        let m = c.member(WXWORK_UA);
        let loc = c.to_wecom(&m, "/wecom/home").await;
        let done = c.finish(&m, &loc, "zhangsan").await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/")),
            "{}",
            done.body
        );
        assert_eq!(m.get("/").await.status, 200, "signed in");
        assert!(c.consented().await.is_empty());
        let audit = c.audit().await;
        let failed = audit
            .iter()
            .find(|(_, a, _)| a == "member.consent_fields_failed")
            .expect("the failure is audited");
        assert!(failed.2.contains("40029"), "{failed:?}");
        assert!(audit
            .iter()
            .any(|(who, a, _)| who == "wecom:zhangsan" && a == "member.login"));
        // Doctor reports the failure, with the errcode and what to check.
        let doctor = t.env.browser.get("/console/doctor?lang=en").await;
        let row = doctor
            .body
            .split("data-check=\"consent_fields\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{}", doctor.body));
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(
            row.contains("status-warn") || row.starts_with(" class=\"status-warn"),
            "{row}"
        );
        assert!(row.contains("40029"), "{row}");

        // The app lacks the privilege (no field ticked): nothing to keep, signed in.
        t.env
            .patch_main_app(json!({"privateinfo_fields": []}))
            .await;
        let m = c.member(WXWORK_UA);
        let loc = c.to_wecom(&m, "/wecom/home").await;
        let done = c.finish(&m, &loc, "zhangsan").await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert!(c.consented().await.is_empty());

        // The audit page shows the new actions in words.
        let page = t.env.browser.get("/console/audit?lang=en").await;
        assert!(
            page.body.contains("Filling consented fields failed"),
            "{}",
            page.body
        );
    }
}

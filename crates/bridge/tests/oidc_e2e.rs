//! The OpenID Connect provider end to end over HTTP against wecom-sim, on SQLite and (with
//! TEST_DATABASE_URL) PostgreSQL: discovery and JWKS, the code flow with sign-in through
//! WeCom (in-client and QR), the token, userinfo, revocation and end-session endpoints,
//! and every negative case of the issue, each its own test.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use bridge::domain::oidc::SigningAlg;
use bridge::domain::tenant::Edition;
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::store::WecomUserSeed;
use bridge::testing::database_urls;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wecom_sim::fixtures::{CORPID, MAIN_AGENTID, MAIN_SECRET};

const WXWORK_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.20 MicroMessenger/7.0.1 Language/zh ColorScheme/Light";
const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
const RP: &str = "https://rp.example.com/callback";
const RP_LOGOUT: &str = "https://rp.example.com/signed-out";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A member's browser: its own cookies, a User-Agent, the tenant's Host.
struct Member {
    b: Browser,
    ua: &'static str,
    http: reqwest::Client,
}

impl Member {
    async fn get(&self, path: &str) -> Page {
        self.b
            .send(
                self.http
                    .get(self.b.url(path))
                    .header("user-agent", self.ua),
            )
            .await
    }
}

fn seed(
    userid: &str,
    name: &str,
    deps: &[(i64, &str, i64)],
    tags: &[(i64, &str)],
) -> WecomUserSeed {
    WecomUserSeed {
        userid: userid.into(),
        name: name.into(),
        status: UserStatus::Authorized,
        position: "工程师".into(),
        departments: deps
            .iter()
            .map(|(i, n, p)| (*i, n.to_string(), *p))
            .collect(),
        tags: tags.iter().map(|(i, n)| (*i, n.to_string())).collect(),
    }
}

struct Setup {
    env: Env,
    tenant_id: i64,
    csrf: String,
    zhangsan: i64,
    issuer: String,
}

/// A registered client.
#[derive(Clone)]
struct Rp {
    id: String,
    secret: Option<String>,
}

/// Both servers, the admin signed in, credentials saved, WeCom sign-in on, and 张三
/// (authorized; 研发中心/后端组, tag 项目A) and 李四 in the directory.
async fn setup(db: &str) -> Setup {
    let env = start(db, Edition::Professional).await;
    let csrf = env.admin_login().await;
    let r = env
        .save_credentials(&csrf, CORPID, &MAIN_AGENTID.to_string(), MAIN_SECRET)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = env
        .browser
        .post(
            "/console/settings/login",
            &[("csrf", &csrf), ("wecom", "on")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let store = &env.bridge.state.store;
    let tenant_id = store.tenant_by_slug("default").await.unwrap().unwrap().id;
    let zhangsan = store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed(
                "zhangsan",
                "张三",
                &[(2, "研发中心", 1), (3, "后端组", 2)],
                &[(1, "项目A")],
            ),
        )
        .await
        .unwrap();
    store
        .upsert_wecom_user(
            tenant_id,
            CORPID,
            &seed("lisi", "李四", &[(3, "后端组", 2)], &[]),
        )
        .await
        .unwrap();
    let issuer = format!("http://{}", env.domain);
    Setup {
        env,
        tenant_id,
        csrf,
        zhangsan,
        issuer,
    }
}

fn testid(body: &str, id: &str) -> Option<String> {
    let needle = format!("data-testid=\"{id}\">");
    let i = body.find(&needle)? + needle.len();
    let end = body[i..].find('<')?;
    Some(body[i..i + end].to_string())
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        bridge::auth::random_token(),
        bridge::auth::random_token()
    );
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &str, k: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v)
}

fn with_param(url: &str, k: &str, v: &str) -> String {
    let base = url.split('#').next().unwrap();
    format!("{base}&{k}={v}")
}

/// The answer to a token-endpoint (or any form) request.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
}

impl Setup {
    fn member(&self, ua: &'static str) -> Member {
        Member {
            b: Browser::new(self.env.bridge.addr, &self.env.domain),
            ua,
            http: no_redirects(),
        }
    }

    async fn register(&self, fields: &[(&str, &str)]) -> Rp {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let p = self.env.browser.post("/console/oidc/clients", &form).await;
        assert_eq!(p.status, 200, "{}", p.body);
        Rp {
            id: testid(&p.body, "new-client-id").expect("client id shown"),
            secret: testid(&p.body, "new-client-secret"),
        }
    }

    async fn confidential(&self) -> Rp {
        self.register(&[
            ("name", "Grafana"),
            ("kind", "confidential"),
            ("redirect_uris", RP),
            ("post_logout_redirect_uris", RP_LOGOUT),
        ])
        .await
    }

    async fn public(&self) -> Rp {
        self.register(&[("name", "SPA"), ("kind", "public"), ("redirect_uris", RP)])
            .await
    }

    fn authorize_path(&self, rp: &Rp, extra: &[(&str, &str)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("client_id", &rp.id);
        s.append_pair("redirect_uri", RP);
        s.append_pair("response_type", "code");
        // `extra` may name its own scope.
        let scope = extra
            .iter()
            .find(|(k, _)| *k == "scope")
            .map_or("openid profile email groups", |(_, v)| *v);
        s.append_pair("scope", scope);
        s.append_pair("state", "st-123");
        for (k, v) in extra.iter().filter(|(k, _)| *k != "scope") {
            s.append_pair(k, v);
        }
        format!("/oidc/authorize?{}", s.finish())
    }

    /// Opens `path` as the member, signing in at wecom-sim as `userid` when sent there,
    /// and returns the final answer (the redirect to the client, or a page).
    async fn through(&self, m: &Member, path: &str, userid: &str) -> Page {
        let mut p = m.get(path).await;
        for _ in 0..4 {
            let Some(loc) = p.location.clone() else {
                return p;
            };
            if loc.starts_with(&self.env.sim.base_url) {
                let r = no_redirects()
                    .get(with_param(&loc, "sim_userid", userid))
                    .header("user-agent", m.ua)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 302);
                let cb = r.headers()["location"].to_str().unwrap().to_string();
                let local = cb
                    .strip_prefix(&self.issuer)
                    .expect("WeCom returns to the tenant's domain");
                p = m.get(local).await;
            } else if loc.starts_with('/') {
                p = m.get(&loc).await;
            } else {
                return p;
            }
        }
        p
    }

    /// A code for `rp` (signing in as `userid` if needed).
    async fn code(&self, m: &Member, rp: &Rp, extra: &[(&str, &str)], userid: &str) -> String {
        let p = self
            .through(m, &self.authorize_path(rp, extra), userid)
            .await;
        let loc = p
            .location
            .unwrap_or_else(|| panic!("{}: {}", p.status, p.body));
        assert!(loc.starts_with(RP), "{loc}");
        assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
        assert_eq!(param(&loc, "iss").as_deref(), Some(self.issuer.as_str()));
        param(&loc, "code").unwrap_or_else(|| panic!("no code in {loc}"))
    }

    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Answer {
        let mut req = no_redirects()
            .post(format!("http://{}{path}", self.env.bridge.addr))
            .header("host", &self.env.domain)
            .form(form);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn token(&self, rp: &Rp, form: &[(&str, &str)]) -> Answer {
        match &rp.secret {
            Some(s) => self.post_form("/oidc/token", form, Some((&rp.id, s))).await,
            None => {
                let mut f = form.to_vec();
                f.push(("client_id", &rp.id));
                self.post_form("/oidc/token", &f, None).await
            }
        }
    }

    async fn exchange(&self, rp: &Rp, code: &str, verifier: Option<&str>) -> Answer {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", RP),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v));
        }
        self.token(rp, &f).await
    }

    async fn refresh(&self, rp: &Rp, refresh_token: &str) -> Answer {
        self.token(
            rp,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A complete login of 张三 in the WeCom client: the token response.
    async fn login(&self, rp: &Rp, extra: &[(&str, &str)]) -> Value {
        let m = self.member(WXWORK_UA);
        let (verifier, challenge) = pkce();
        let mut e = vec![
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        e.extend_from_slice(extra);
        let code = self.code(&m, rp, &e, "zhangsan").await;
        let a = self.exchange(rp, &code, Some(&verifier)).await;
        assert_eq!(a.status, 200, "{}", a.json);
        a.json
    }

    async fn userinfo(&self, access_token: &str) -> (u16, Value) {
        let r = no_redirects()
            .get(format!("http://{}/oidc/userinfo", self.env.bridge.addr))
            .header("host", &self.env.domain)
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn jwks(&self) -> Vec<Value> {
        let p = self.env.browser.get("/oidc/jwks").await;
        assert_eq!(p.status, 200);
        let v: Value = serde_json::from_str(&p.body).unwrap();
        v["keys"].as_array().unwrap().clone()
    }

    /// Verifies an ID token's signature against the published JWKS (with ring, not the
    /// provider's code) and returns (header, claims).
    async fn verify(&self, jwt: &str) -> (Value, Value) {
        let keys = self.jwks().await;
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let kid = header["kid"].as_str().unwrap();
        let jwk = keys
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
        let sig = B64.decode(parts[2]).unwrap();
        let msg = format!("{}.{}", parts[0], parts[1]);
        let field = |k: &str| B64.decode(jwk[k].as_str().unwrap()).unwrap();
        let ok = match header["alg"].as_str().unwrap() {
            "RS256" => ring::signature::RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                msg.as_bytes(),
                &sig,
            )
            .is_ok(),
            "ES256" => {
                let mut point = vec![4u8];
                point.extend(field("x"));
                point.extend(field("y"));
                ring::signature::UnparsedPublicKey::new(
                    &ring::signature::ECDSA_P256_SHA256_FIXED,
                    point,
                )
                .verify(msg.as_bytes(), &sig)
                .is_ok()
            }
            other => panic!("unexpected alg {other}"),
        };
        assert!(ok, "the ID token's signature does not verify");
        (header, claims)
    }

    async fn grants(&self) -> usize {
        self.env
            .bridge
            .state
            .store
            .oidc_grants_of_user(self.tenant_id, self.zhangsan)
            .await
            .unwrap()
            .len()
    }
}

fn now_secs() -> i64 {
    bridge::domain::now_ms() / 1000
}

// ------------------------------------------------------------------------ happy paths

#[tokio::test]
async fn discovery_and_jwks_describe_the_tenant_issuer() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let p = s.env.browser.get("/.well-known/openid-configuration").await;
        assert_eq!(p.status, 200);
        let d: Value = serde_json::from_str(&p.body).unwrap();
        assert_eq!(d["issuer"], s.issuer.as_str());
        assert_eq!(
            d["authorization_endpoint"],
            format!("{}/oidc/authorize", s.issuer)
        );
        assert_eq!(d["jwks_uri"], format!("{}/oidc/jwks", s.issuer));
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            d["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256", "ES256"])
        );
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        let keys = s.jwks().await;
        assert_eq!(keys.len(), 2);
        assert!(keys
            .iter()
            .all(|k| k["use"] == "sig" && k.get("d").is_none()));
        // Another Host is another tenant (or none): nothing crosses.
        let other = Browser::new(s.env.bridge.addr, "other.localhost");
        assert_eq!(
            other.get("/.well-known/openid-configuration").await.status,
            404
        );
    }
}

#[tokio::test]
async fn in_client_login_gives_verified_tokens_and_userinfo() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[("nonce", "n-0S6_WzA2Mj")]).await;
        assert_eq!(t["token_type"], "Bearer");
        assert!(t["refresh_token"].as_str().is_some());
        let (header, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert_eq!(header["alg"], "RS256");
        assert_eq!(c["sub"], s.zhangsan.to_string());
        assert_eq!(c["preferred_username"], "zhangsan");
        assert_eq!(c["name"], "张三");
        assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
        assert!(
            c.get("email").is_none(),
            "no email is known: none is made up"
        );
        let (status, u) = s.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["sub"], s.zhangsan.to_string());
        assert_eq!(
            u["groups"],
            serde_json::json!(["研发中心", "后端组", "项目A"])
        );
        assert!(u["locale"].as_str().is_some());
        // Only hashes are stored.
        let grants = s
            .env
            .bridge
            .state
            .store
            .oidc_grants_of_user(s.tenant_id, s.zhangsan)
            .await
            .unwrap();
        assert_eq!(grants.len(), 1);
        assert_ne!(grants[0].id, t["refresh_token"].as_str().unwrap());
    }
}

#[tokio::test]
async fn qr_login_in_a_browser() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(CHROME_UA);
        let first = m.get(&s.authorize_path(&rp, &[])).await;
        let loc = first.location.unwrap();
        assert!(
            loc.contains("/wwlogin/sso/login?login_type=CorpApp"),
            "a browser is sent to QR login: {loc}"
        );
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let a = s.exchange(&rp, &code, None).await;
        assert_eq!(a.status, 200, "{}", a.json);
        s.verify(a.json["id_token"].as_str().unwrap()).await;
    }
}

#[tokio::test]
async fn userinfo_by_post_with_the_token_in_the_form() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let at = t["access_token"].as_str().unwrap();
        let a = s
            .post_form("/oidc/userinfo", &[("access_token", at)], None)
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(a.json["preferred_username"], "zhangsan");
        let a = s
            .post_form("/oidc/userinfo", &[("access_token", "nope")], None)
            .await;
        assert_eq!(a.status, 401);
        assert_eq!(a.json["error"], "invalid_token");
        assert!(a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
}

#[tokio::test]
async fn es256_client_full_path_groups_and_synthesized_email() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s
            .register(&[
                ("name", "Outline"),
                ("kind", "confidential"),
                ("redirect_uris", RP),
                ("id_token_alg", "ES256"),
                ("groups_full_path", "on"),
                ("synthesize_email", "on"),
                ("email_domain", "acme.example"),
            ])
            .await;
        let t = s.login(&rp, &[]).await;
        let (header, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert_eq!(header["alg"], "ES256");
        assert_eq!(c["email"], "zhangsan@acme.example");
        assert_eq!(c["email_verified"], false);
        assert_eq!(
            c["groups"],
            serde_json::json!(["研发中心", "研发中心/后端组", "项目A"])
        );
    }
}

/// Issue 20: with the tenant's opt-in, the in-client sign-in fills the fields WeCom
/// withholds, and the claims carry them per scope (OIDC Core §5.4): a personal email
/// the member shared is unverified, the corporate mailbox is verified and preferred.
#[tokio::test]
async fn consented_fields_give_email_phone_picture_and_gender() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let r = s
            .env
            .browser
            .post(
                "/console/settings/login",
                &[
                    ("csrf", s.csrf.as_str()),
                    ("wecom", "on"),
                    ("consent_fields", "on"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let sim = s
            .env
            .sim_admin(
                "GET",
                &format!("/corps/{CORPID}/members/zhangsan"),
                Value::Null,
            )
            .await;
        let rp = s.confidential().await;

        let t = s
            .login(&rp, &[("scope", "openid profile email phone")])
            .await;
        let (_, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert_eq!(c["email"], sim["email"], "{c}");
        assert_eq!(
            c["email_verified"], false,
            "shared by the member, unverified"
        );
        assert_eq!(c["phone_number"], sim["mobile"]);
        assert_eq!(c["phone_number_verified"], false);
        assert_eq!(c["picture"], sim["avatar"]);
        assert_eq!(c["gender"], "male");
        let (status, u) = s.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(
            (&u["email"], &u["phone_number"], &u["picture"], &u["gender"]),
            (&c["email"], &c["phone_number"], &c["picture"], &c["gender"])
        );

        // Without the `phone` scope there is no phone number; without `profile`, no
        // picture or gender.
        let t = s.login(&rp, &[("scope", "openid email")]).await;
        let (_, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert!(c.get("phone_number").is_none(), "{c}");
        assert!(
            c.get("picture").is_none() && c.get("gender").is_none(),
            "{c}"
        );
        assert!(c.get("email").is_some(), "{c}");

        // With a corporate mailbox (the company's own), that one wins, verified.
        s.env
            .sim_admin(
                "PATCH",
                &format!("/corps/{CORPID}/members/zhangsan"),
                serde_json::json!({"biz_mail": "zhangsan@corp.example.com"}),
            )
            .await;
        let t = s.login(&rp, &[("scope", "openid email")]).await;
        let (_, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert_eq!(c["email"], "zhangsan@corp.example.com");
        assert_eq!(c["email_verified"], true);
    }
}

#[tokio::test]
async fn refresh_rotates_and_a_retry_within_the_grace_works() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let r1 = t["refresh_token"].as_str().unwrap();
        let a = s.refresh(&rp, r1).await;
        assert_eq!(a.status, 200, "{}", a.json);
        let r2 = a.json["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(r2, r1);
        let (_, c) = s.verify(a.json["id_token"].as_str().unwrap()).await;
        assert_eq!(c["sub"], s.zhangsan.to_string());
        // The answer was lost: the client retries with r1 at once and gets a new pair;
        // the lost pair (r2) no longer works, and the grant lives on.
        let retry = s.refresh(&rp, r1).await;
        assert_eq!(retry.status, 200, "{}", retry.json);
        let r3 = retry.json["refresh_token"].as_str().unwrap();
        assert_eq!(s.refresh(&rp, &r2).await.status, 400);
        assert_eq!(s.grants().await, 1);
        assert_eq!(s.refresh(&rp, r3).await.status, 200);
    }
}

#[tokio::test]
async fn revocation_of_a_refresh_token_revokes_the_grant() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let secret = rp.secret.clone().unwrap();
        let a = s
            .post_form(
                "/oidc/revoke",
                &[
                    ("token", t["refresh_token"].as_str().unwrap()),
                    ("token_type_hint", "refresh_token"),
                ],
                Some((&rp.id, &secret)),
            )
            .await;
        assert_eq!(a.status, 200);
        let (status, _) = s.userinfo(t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 401, "the grant's access token died with it");
        assert_eq!(s.grants().await, 0);
        // Unknown tokens are answered 200 (RFC 7009 §2.2); a bad client is not.
        let a = s
            .post_form(
                "/oidc/revoke",
                &[("token", "unknown")],
                Some((&rp.id, &secret)),
            )
            .await;
        assert_eq!(a.status, 200);
        let a = s
            .post_form("/oidc/revoke", &[("token", "x")], Some((&rp.id, "wrong")))
            .await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
}

#[tokio::test]
async fn end_session_with_hint_ends_the_member_session_and_redirects_exactly() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let t = s.exchange(&rp, &code, None).await.json;
        let hint = t["id_token"].as_str().unwrap();
        // An unregistered post-logout URI: a page, no redirect, the session lives on.
        let bad = m
            .get(&format!(
                "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
                urlencode("https://evil.example/")
            ))
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.location.is_none());
        let p = m
            .get(&format!(
                "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
                urlencode(RP_LOGOUT)
            ))
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(
            p.location.as_deref(),
            Some(format!("{RP_LOGOUT}?state=bye").as_str())
        );
        assert!(s
            .env
            .bridge
            .state
            .store
            .list_user_sessions(s.tenant_id, s.zhangsan)
            .await
            .unwrap()
            .is_empty());
        // Signed out: prompt=none now answers login_required.
        let p = m.get(&s.authorize_path(&rp, &[("prompt", "none")])).await;
        assert_eq!(
            param(&p.location.unwrap(), "error").as_deref(),
            Some("login_required")
        );
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn client_secret_post_and_secret_rotation() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let secret = rp.secret.clone().unwrap();
        let a = s
            .post_form(
                "/oidc/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", RP),
                    ("client_id", &rp.id),
                    ("client_secret", &secret),
                ],
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.json);
        // Rotation: the new secret is shown once; the old one stops working.
        let p = s
            .env
            .browser
            .post(
                &format!("/console/oidc/clients/{}/secret", rp.id),
                &[("csrf", &s.csrf)],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let new_secret = testid(&p.body, "new-client-secret").unwrap();
        assert_ne!(new_secret, secret);
        let list = s.env.browser.get("/console/oidc").await;
        assert!(!list.body.contains(&new_secret), "shown once only");
        let old = s
            .refresh(&rp, a.json["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(old.status, 401);
        let rotated = Rp {
            id: rp.id.clone(),
            secret: Some(new_secret),
        };
        let ok = s
            .refresh(&rotated, a.json["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(ok.status, 200, "{}", ok.json);
    }
}

// ------------------------------------------------------------------------ negative cases

async fn assert_error_page(p: &Page) {
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.location.is_none(), "never a redirect: {:?}", p.location);
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_a_page_not_a_redirect() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let path = s
            .authorize_path(&rp, &[])
            .replace(&urlencode(RP), &urlencode("https://evil.example/callback"));
        assert_error_page(&m.get(&path).await).await;
        // An unknown client too.
        let path = s.authorize_path(
            &Rp {
                id: "c_unknown".into(),
                secret: None,
            },
            &[],
        );
        assert_error_page(&m.get(&path).await).await;
    }
}

#[tokio::test]
async fn changed_redirect_uri_gets_a_page_not_a_redirect() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        for changed in [
            format!("{RP}/"),
            format!("{RP}?next=/admin"),
            RP.replace("https", "http"),
            RP.to_uppercase(),
        ] {
            let path = s
                .authorize_path(&rp, &[])
                .replace(&urlencode(RP), &urlencode(&changed));
            assert_error_page(&m.get(&path).await).await;
        }
    }
}

#[tokio::test]
async fn fragment_redirect_uri_is_refused_at_registration_and_at_authorize() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let mut form = vec![("csrf", s.csrf.as_str())];
        form.extend_from_slice(&[
            ("name", "Frag"),
            ("kind", "confidential"),
            ("redirect_uris", "https://rp.example.com/cb#frag"),
        ]);
        let p = s.env.browser.post("/console/oidc/clients", &form).await;
        assert_eq!(p.status, 400, "{}", p.body);
        let rp = s.confidential().await;
        let path = s
            .authorize_path(&rp, &[])
            .replace(&urlencode(RP), &urlencode(&format!("{RP}#x")));
        assert_error_page(&s.member(WXWORK_UA).get(&path).await).await;
    }
}

#[tokio::test]
async fn reused_code_is_refused_and_the_first_tokens_are_revoked() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let first = s.exchange(&rp, &code, None).await;
        assert_eq!(first.status, 200);
        let at = first.json["access_token"].as_str().unwrap();
        assert_eq!(s.userinfo(at).await.0, 200);
        let again = s.exchange(&rp, &code, None).await;
        assert_eq!(again.status, 400);
        assert_eq!(again.json["error"], "invalid_grant");
        assert_eq!(
            s.userinfo(at).await.0,
            401,
            "the first access token is revoked"
        );
        let r = s
            .refresh(&rp, first.json["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(r.json["error"], "invalid_grant", "and its refresh token");
        assert_eq!(s.grants().await, 0);
    }
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.public().await;
        let m = s.member(WXWORK_UA);
        let (_, challenge) = pkce();
        let code = s
            .code(
                &m,
                &rp,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
                "zhangsan",
            )
            .await;
        let (other_verifier, _) = pkce();
        let a = s.exchange(&rp, &code, Some(&other_verifier)).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
}

#[tokio::test]
async fn missing_pkce_verifier_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let (_, challenge) = pkce();
        // Accepted from a confidential client, then enforced.
        let code = s
            .code(
                &m,
                &rp,
                &[
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                ],
                "zhangsan",
            )
            .await;
        let a = s.exchange(&rp, &code, None).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
}

#[tokio::test]
async fn plain_pkce_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.public().await;
        let m = s.member(WXWORK_UA);
        let (verifier, _) = pkce();
        for extra in [
            vec![
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
            vec![("code_challenge", verifier.as_str())],
        ] {
            let p = m.get(&s.authorize_path(&rp, &extra)).await;
            let loc = p.location.unwrap();
            assert!(loc.starts_with(RP), "{loc}");
            assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
            assert_eq!(param(&loc, "iss").as_deref(), Some(s.issuer.as_str()));
            assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
        }
    }
}

#[tokio::test]
async fn public_client_without_pkce_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.public().await;
        let p = s.member(WXWORK_UA).get(&s.authorize_path(&rp, &[])).await;
        let loc = p.location.unwrap();
        assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
        assert!(param(&loc, "code").is_none());
    }
}

#[tokio::test]
async fn wrong_client_secret_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", RP),
        ];
        let a = s
            .post_form("/oidc/token", &form, Some((&rp.id, "wrong-secret")))
            .await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (401, Some("invalid_client"))
        );
        assert!(a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let mut post = form.to_vec();
        post.extend([("client_id", rp.id.as_str()), ("client_secret", "wrong")]);
        let a = s.post_form("/oidc/token", &post, None).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (401, Some("invalid_client"))
        );
        // No secret at all for a confidential client.
        let mut none = form.to_vec();
        none.push(("client_id", rp.id.as_str()));
        let a = s.post_form("/oidc/token", &none, None).await;
        assert_eq!(a.json["error"], "invalid_client");
    }
}

#[tokio::test]
async fn id_token_nonce_is_echoed() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let with = s.login(&rp, &[("nonce", "abc-123")]).await;
        let (_, c) = s.verify(with["id_token"].as_str().unwrap()).await;
        assert_eq!(c["nonce"], "abc-123");
        let without = s.login(&rp, &[]).await;
        let (_, c) = s.verify(without["id_token"].as_str().unwrap()).await;
        assert!(c.get("nonce").is_none());
    }
}

#[tokio::test]
async fn id_token_iss_aud_exp_iat_auth_time_are_right() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let before = now_secs();
        let t = s.login(&rp, &[("max_age", "300")]).await;
        let after = now_secs();
        let (header, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        assert_eq!(header["typ"], "JWT");
        assert_eq!(c["iss"], s.issuer.as_str());
        assert_eq!(c["aud"], rp.id.as_str());
        let iat = c["iat"].as_i64().unwrap();
        let exp = c["exp"].as_i64().unwrap();
        let auth_time = c["auth_time"].as_i64().unwrap();
        assert!((before..=after).contains(&iat), "{before} {iat} {after}");
        assert!(exp > iat && exp - iat <= 3600);
        assert!(auth_time >= before - 1 && auth_time <= iat);
    }
}

#[tokio::test]
async fn id_token_at_hash_matches_the_access_token() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let (_, c) = s.verify(t["id_token"].as_str().unwrap()).await;
        let d = Sha256::digest(t["access_token"].as_str().unwrap().as_bytes());
        assert_eq!(c["at_hash"], B64.encode(&d[..16]));
    }
}

#[tokio::test]
async fn signing_keys_have_distinct_kids() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let keys = s.jwks().await;
        let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        kids.sort();
        kids.dedup();
        assert_eq!(kids.len(), keys.len());
        let p = s
            .env
            .browser
            .post("/console/oidc/keys/rotate", &[("csrf", &s.csrf)])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let keys = s.jwks().await;
        assert_eq!(keys.len(), 4, "two new keys beside the two retired ones");
        let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        kids.sort();
        kids.dedup();
        assert_eq!(kids.len(), 4);
        // The private keys are sealed in the store, never in clear.
        for alg in SigningAlg::ALL {
            let k = s
                .env
                .bridge
                .state
                .store
                .oidc_active_key(s.tenant_id, alg)
                .await
                .unwrap()
                .unwrap();
            assert!(!k.public_jwk.contains("\"d\""));
            assert!(s
                .env
                .bridge
                .state
                .sealer
                .open("tenant:999:oidc.key:x", &k.private_sealed)
                .is_err());
        }
    }
}

#[tokio::test]
async fn a_rotated_key_still_verifies_old_tokens() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let old = s.login(&rp, &[]).await;
        let old_id = old["id_token"].as_str().unwrap().to_string();
        let (h_old, _) = s.verify(&old_id).await;
        let p = s
            .env
            .browser
            .post("/console/oidc/keys/rotate", &[("csrf", &s.csrf)])
            .await;
        assert_eq!(p.status, 303);
        // The old token still verifies against the published JWKS ...
        s.verify(&old_id).await;
        // ... and new tokens are signed by the new key.
        let new = s.login(&rp, &[]).await;
        let (h_new, _) = s.verify(new["id_token"].as_str().unwrap()).await;
        assert_ne!(h_old["kid"], h_new["kid"]);
    }
}

#[tokio::test]
async fn refresh_token_of_another_client_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let a = s.confidential().await;
        let b = s
            .register(&[
                ("name", "Other"),
                ("kind", "confidential"),
                ("redirect_uris", RP),
            ])
            .await;
        let t = s.login(&a, &[]).await;
        let r = s.refresh(&b, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        // The rightful client keeps its grant.
        let ok = s.refresh(&a, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(ok.status, 200, "{}", ok.json);
    }
}

#[tokio::test]
async fn token_endpoint_answers_no_store() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        let ok = s.exchange(&rp, &code, None).await;
        assert_eq!(ok.status, 200);
        assert_eq!(ok.headers["cache-control"], "no-store");
        assert_eq!(ok.headers["pragma"], "no-cache");
        let err = s.exchange(&rp, "bogus", None).await;
        assert_eq!(err.status, 400);
        assert_eq!(err.headers["cache-control"], "no-store");
        let unsupported = s.token(&rp, &[("grant_type", "password")]).await;
        assert_eq!(unsupported.json["error"], "unsupported_grant_type");
        assert_eq!(unsupported.headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        for ua in [WXWORK_UA, CHROME_UA] {
            let p = s
                .member(ua)
                .get(&s.authorize_path(&rp, &[("prompt", "none")]))
                .await;
            assert_eq!(p.status, 303, "never a page: {}", p.body);
            let loc = p.location.unwrap();
            assert!(loc.starts_with(RP), "{loc}");
            assert_eq!(param(&loc, "error").as_deref(), Some("login_required"));
            assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
            assert_eq!(param(&loc, "iss").as_deref(), Some(s.issuer.as_str()));
        }
    }
}

#[tokio::test]
async fn prompt_login_signs_in_again_then_issues_a_code() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        s.code(&m, &rp, &[], "zhangsan").await;
        // With a session, prompt=login still goes to WeCom once, then comes back with a code.
        let p = m.get(&s.authorize_path(&rp, &[("prompt", "login")])).await;
        assert!(p
            .location
            .as_deref()
            .unwrap()
            .starts_with(&s.env.sim.base_url));
        s.code(&m, &rp, &[("prompt", "login")], "zhangsan").await;
        // prompt=none with the session: a code without any page.
        let p = m.get(&s.authorize_path(&rp, &[("prompt", "none")])).await;
        assert!(param(&p.location.unwrap(), "code").is_some());
    }
}

#[tokio::test]
async fn a_disabled_members_refresh_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        s.env
            .bridge
            .state
            .store
            .set_users_status(
                s.tenant_id,
                &[s.zhangsan],
                UserStatus::Disabled,
                Some(DisabledReason::LeftScope),
            )
            .await
            .unwrap();
        assert_eq!(s.grants().await, 0, "every grant goes at once");
        let r = s.refresh(&rp, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(
            (r.status, r.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(s.userinfo(t["access_token"].as_str().unwrap()).await.0, 401);
    }
}

#[tokio::test]
async fn an_unauthorized_member_gets_a_page_not_a_code() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        s.code(&m, &rp, &[], "zhangsan").await;
        s.env
            .bridge
            .state
            .store
            .set_users_status(s.tenant_id, &[s.zhangsan], UserStatus::Unauthorized, None)
            .await
            .unwrap();
        // The session ended with the status change: sign-in again, refused by the gate.
        let p = s.through(&m, &s.authorize_path(&rp, &[]), "zhangsan").await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.location.is_none());
    }
}

/// Time goes by: the bridge's clock moves forward (no test sleeps).
fn time_passes(s: &Setup, ms: u64) {
    s.env
        .bridge
        .state
        .clock
        .advance(std::time::Duration::from_millis(ms));
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let m = s.member(WXWORK_UA);
        let code = s.code(&m, &rp, &[], "zhangsan").await;
        // 61 s later (codes live 60 s).
        time_passes(&s, 61_000);
        let a = s.exchange(&rp, &code, None).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(s.grants().await, 0);
    }
}

#[tokio::test]
async fn refresh_reuse_after_the_grace_revokes_the_grant() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let r1 = t["refresh_token"].as_str().unwrap();
        let a = s.refresh(&rp, r1).await;
        assert_eq!(a.status, 200, "{}", a.json);
        let r2 = a.json["refresh_token"].as_str().unwrap();
        let at2 = a.json["access_token"].as_str().unwrap();
        // 11 s after the rotation (the retry grace is 10 s), r1 comes back: a replay.
        time_passes(&s, 11_000);
        let replay = s.refresh(&rp, r1).await;
        assert_eq!(
            (replay.status, replay.json["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(s.grants().await, 0, "the whole grant is revoked");
        assert_eq!(
            s.refresh(&rp, r2).await.status,
            400,
            "the current refresh token too"
        );
        assert_eq!(s.userinfo(at2).await.0, 401, "and the current access token");
    }
}

#[tokio::test]
async fn a_second_instance_signs_with_the_same_sealed_keys() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let t = s.login(&rp, &[]).await;
        let (h1, _) = s.verify(t["id_token"].as_str().unwrap()).await;
        // Another instance on the same database and instance key.
        let cfg = config(
            &s.env.sim,
            &s.env.data_dir,
            &s.env.database_url,
            &s.env.domain,
            Edition::Professional,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = bridge::launch(cfg, listener).await.unwrap();
        let r = no_redirects()
            .post(format!("http://{}/oidc/token", second.addr))
            .header("host", &s.env.domain)
            .basic_auth(&rp.id, rp.secret.as_deref())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let (h2, c2) = s.verify(v["id_token"].as_str().unwrap()).await;
        assert_eq!(
            h1["kid"], h2["kid"],
            "one key per tenant and algorithm, shared"
        );
        assert_eq!(c2["iss"], s.issuer.as_str());
        assert_eq!(s.jwks().await.len(), 2, "no instance made keys of its own");
        second.stop().await;
    }
}

#[tokio::test]
async fn housekeeping_drops_expired_tokens_and_empty_grants_only() {
    for db in database_urls().await {
        let s = setup(&db).await;
        let rp = s.confidential().await;
        let old = s.login(&rp, &[]).await;
        // 31 days later for this grant's tokens: they have all expired.
        time_passes(&s, 2_678_400_000);
        let live = s.login(&rp, &[]).await;
        let store = &s.env.bridge.state.store;
        store
            .prune_oidc(s.env.bridge.state.clock.now_ms())
            .await
            .unwrap();
        assert_eq!(
            s.grants().await,
            1,
            "the expired grant is gone, the live one stays"
        );
        assert_eq!(
            s.refresh(&rp, old["refresh_token"].as_str().unwrap())
                .await
                .status,
            400
        );
        assert_eq!(
            s.refresh(&rp, live["refresh_token"].as_str().unwrap())
                .await
                .status,
            200
        );
    }
}

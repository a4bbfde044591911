//! The client against wecom-sim over real HTTP: every typed call, every error path the
//! bridge relies on, the token cache's single flight and the retry policy under
//! injected faults. A fresh simulator per test, so tests run in parallel.

use serde_json::{json, Value};
use std::time::Duration;
use wecom::types::UserInfo;
use wecom::{Client, RetryPolicy};
use wecom_sim::fixtures::*;
use wecom_sim::{launch, Sim, SimHandle};

async fn sim() -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    launch(Sim::from_scenario(small_org()), listener)
        .await
        .unwrap()
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn client(s: &SimHandle, secret: &str) -> Client {
    Client::builder(CORPID, secret)
        .api_base(s.api_base())
        .retry(fast_retry())
        .build()
        .unwrap()
}

async fn admin(s: &SimHandle, method: &str, path: &str, body: Value) -> Value {
    let url = format!("{}/sim/admin{path}", s.base_url);
    let http = reqwest::Client::new();
    let req = match method {
        "POST" => http.post(&url).json(&body),
        "PATCH" => http.patch(&url).json(&body),
        "PUT" => http.put(&url).json(&body),
        "DELETE" => http.delete(&url),
        _ => http.get(&url),
    };
    let resp = req.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "admin {method} {path}: {}",
        resp.status()
    );
    resp.json().await.unwrap()
}

async fn counter(s: &SimHandle, endpoint: &str) -> u64 {
    let c = admin(s, "GET", "/counters", json!({})).await;
    c["counters"][endpoint].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn hundred_concurrent_calls_on_a_cold_cache_make_one_gettoken() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let calls = (0..100).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.agent_get(MAIN_AGENTID).await.map(|a| a.agentid) })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().unwrap(), MAIN_AGENTID);
    }
    assert_eq!(counter(&s, "gettoken").await, 1);
    assert_eq!(counter(&s, "agent/get").await, 100);
    assert_eq!(c.stats().calls("gettoken"), 1);
}

#[tokio::test]
async fn revoked_token_is_refreshed_once_and_the_call_retried() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    c.agent_get(MAIN_AGENTID).await.unwrap();
    admin(
        &s,
        "POST",
        &format!("/corps/{CORPID}/tokens/invalidate"),
        json!({}),
    )
    .await;
    let a = c.agent_get(MAIN_AGENTID).await.unwrap();
    assert_eq!(a.name, "工作台");
    assert_eq!(counter(&s, "gettoken").await, 2);
    assert_eq!(
        counter(&s, "agent/get").await,
        3,
        "first call, the 40014, the retry"
    );
}

#[tokio::test]
async fn expired_token_42001_is_refreshed() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    c.tag_list().await.unwrap();
    // Past the sim's 7200 s lifetime; our own clock still thinks the token is fresh.
    admin(&s, "POST", "/clock/advance", json!({"secs": 7300})).await;
    c.tag_list().await.unwrap();
    assert_eq!(counter(&s, "gettoken").await, 2);
}

#[tokio::test]
async fn persistent_40014_fails_after_one_refresh() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    admin(
        &s,
        "POST",
        "/faults",
        json!({"path": "tag/list", "errcode": 40014, "count": 5}),
    )
    .await;
    let e = c.tag_list().await.unwrap_err();
    assert_eq!(e.errcode(), Some(40014));
    assert_eq!(
        counter(&s, "tag/list").await,
        2,
        "one refresh-and-retry, no more"
    );
}

#[tokio::test]
async fn wrong_secret_and_wrong_corp_are_never_retried() {
    let s = sim().await;
    let e = client(&s, "not-the-secret")
        .agent_get(MAIN_AGENTID)
        .await
        .unwrap_err();
    assert_eq!(e.errcode(), Some(40001));
    assert!(e.explain().fix_en.contains("Secret"));
    let wrong_corp = Client::builder("wwnotacorp0000000", MAIN_SECRET)
        .api_base(s.api_base())
        .retry(fast_retry())
        .build()
        .unwrap();
    assert_eq!(
        wrong_corp.tag_list().await.unwrap_err().errcode(),
        Some(40013)
    );
    assert_eq!(counter(&s, "gettoken").await, 2, "one call each");
}

#[tokio::test]
async fn system_busy_is_retried_with_backoff() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    admin(
        &s,
        "POST",
        "/faults",
        json!({"path": "user/get", "errcode": -1, "count": 2}),
    )
    .await;
    let m = c.user_get("zhangsan").await.unwrap();
    assert_eq!(m.name, "张三");
    assert_eq!(counter(&s, "user/get").await, 3);
    let st = c.stats().snapshot();
    assert_eq!(
        (
            st["user/get"].calls,
            st["user/get"].retries,
            st["user/get"].errors
        ),
        (3, 2, 2)
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    admin(
        &s,
        "POST",
        "/faults",
        json!({"path": "user/get", "errcode": -1, "count": 10}),
    )
    .await;
    let e = c.user_get("zhangsan").await.unwrap_err();
    assert_eq!(e.errcode(), Some(-1));
    assert!(e.is_transient());
    assert_eq!(counter(&s, "user/get").await, 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn untrusted_ip_names_the_ip_to_add() {
    let s = sim().await;
    admin(
        &s,
        "PATCH",
        &format!("/corps/{CORPID}/apps/{MAIN_AGENTID}"),
        json!({"trusted_ips": ["203.0.113.9"]}),
    )
    .await;
    let c = client(&s, MAIN_SECRET);
    let e = c.agent_get(MAIN_AGENTID).await.unwrap_err();
    assert_eq!(e.errcode(), Some(60020));
    let api = e.api().unwrap();
    assert_eq!(api.from_ip(), Some("127.0.0.1"));
    assert!(api.hint().is_some_and(|h| h.len() == 25));
    assert!(e.explain().fix_en.contains("127.0.0.1"));
    assert_eq!(
        counter(&s, "agent/get").await,
        1,
        "60020 is configuration, not retried"
    );
}

#[tokio::test]
async fn agent_and_scope() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let a = c.agent_get(MAIN_AGENTID).await.unwrap();
    assert_eq!(a.allow_partys.partyid, vec![2]);
    assert_eq!(a.allow_tags.tagid, vec![1]);
    assert_eq!(a.scope_users().collect::<Vec<_>>(), vec!["qianba"]);
    assert_eq!(a.redirect_domain, DOMAIN);
    assert_eq!(
        c.agent_get(SECOND_AGENTID).await.unwrap_err().errcode(),
        Some(301002)
    );
    assert_eq!(
        c.agent_get(424242).await.unwrap_err().errcode(),
        Some(40056)
    );
}

#[tokio::test]
async fn departments_within_scope() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let mut ids: Vec<u32> = c
        .department_list(None)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![2, 3, 5],
        "dept 2's subtree and the tag's department 5"
    );
    let simple = c.department_simplelist(None).await.unwrap();
    assert_eq!(simple.len(), 3);
    let d = c.department_get(3).await.unwrap();
    assert_eq!((d.name.as_str(), d.parentid), ("后端组", 2));
    assert_eq!(
        c.department_get(4).await.unwrap_err().errcode(),
        Some(60011)
    );
    assert_eq!(
        c.department_get(99).await.unwrap_err().errcode(),
        Some(60003)
    );
}

#[tokio::test]
async fn members_with_withheld_fields() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let m = c.user_get("ZhangSan").await.unwrap();
    assert_eq!(
        m.userid, "zhangsan",
        "look-up ignores case, answer has the stored spelling"
    );
    assert_eq!(
        (m.mobile.clone(), m.email.clone(), m.gender.as_str()),
        (None, None, "0"),
        "post-2022 app"
    );
    assert_eq!(m.department, vec![2, 3]);
    assert_eq!(m.is_leader_in_dept, vec![1, 0]);
    let list = c.user_list(3).await.unwrap();
    let mut ids: Vec<&str> = list.iter().map(|m| m.userid.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["lisi", "sunqi", "zhangsan"]);
    assert_eq!(list.iter().find(|m| m.userid == "sunqi").unwrap().status, 2);
    assert_eq!(c.user_simplelist(2).await.unwrap().len(), 1);
    let solo = c.user_get("qianba").await.unwrap();
    assert!(
        solo.department.is_empty(),
        "individually scoped: no visible department"
    );
    assert_eq!(
        c.user_get("zhoujiu").await.unwrap_err().errcode(),
        Some(60011)
    );
    assert_eq!(
        c.user_get("nobody").await.unwrap_err().errcode(),
        Some(60111)
    );
    assert_eq!(c.user_list(6).await.unwrap_err().errcode(), Some(60011));
}

#[tokio::test]
async fn tags() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let tags = c.tag_list().await.unwrap();
    assert_eq!(tags.len(), 2, "a self-built app sees every tag");
    let t = c.tag_get(1).await.unwrap();
    assert_eq!(t.tagname, "项目A");
    assert_eq!(
        t.userlist
            .iter()
            .map(|u| u.userid.as_str())
            .collect::<Vec<_>>(),
        ["wangwu"]
    );
    assert_eq!(t.partylist, vec![5]);
    let t2 = c.tag_get(2).await.unwrap();
    assert!(
        t2.userlist.is_empty(),
        "members outside the scope are filtered out"
    );
    assert_eq!(c.tag_get(77).await.unwrap_err().errcode(), Some(40068));
}

#[tokio::test]
async fn list_id_pages_through_everything_with_the_contact_sync_secret() {
    let s = sim().await;
    let sync = client(&s, CONTACT_SYNC_SECRET);
    let first = sync.user_list_id(None, Some(3)).await.unwrap();
    assert_eq!(first.dept_user.len(), 3);
    assert!(!first.next_cursor.is_empty());
    let all = sync.user_list_id_all().await.unwrap();
    assert_eq!(all.len(), 8, "one row per (member, department)");
    let app = client(&s, MAIN_SECRET);
    assert_eq!(
        app.user_list_id(None, None).await.unwrap_err().errcode(),
        Some(48002)
    );
    assert_eq!(
        sync.user_list_id(Some("bogus"), None)
            .await
            .unwrap_err()
            .errcode(),
        Some(50100)
    );
    assert_eq!(
        sync.agent_get(MAIN_AGENTID).await.unwrap_err().errcode(),
        Some(48002)
    );
}

/// Signs `userid` in through the sim's in-client authorize page and returns the code.
async fn oauth_code(s: &SimHandle, userid: &str, scope: &str) -> String {
    let redirect = format!("http://{DOMAIN}/auth/wecom/callback?x=1");
    let url = wecom::oauth::authorize_url(
        &wecom::oauth::OAuthHosts::same_origin(&s.base_url),
        CORPID,
        MAIN_AGENTID,
        &redirect,
        if scope == "snsapi_privateinfo" {
            wecom::oauth::Scope::PrivateInfo
        } else {
            wecom::oauth::Scope::Base
        },
        "st4te",
    );
    let url = format!(
        "{}&sim_userid={userid}",
        url.trim_end_matches("#wechat_redirect")
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(url)
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone) wxwork/4.1.20 MicroMessenger/7.0.1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        302,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["x"], "1");
    q["code"].clone()
}

#[tokio::test]
async fn oauth_code_exchange_and_user_detail() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    let code = oauth_code(&s, "lisi", "snsapi_base").await;
    match c.auth_getuserinfo(&code).await.unwrap() {
        UserInfo::Member {
            userid,
            user_ticket,
        } => {
            assert_eq!(userid, "lisi");
            assert!(user_ticket.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.auth_getuserinfo(&code).await.unwrap_err().errcode(),
        Some(40029),
        "single use"
    );

    let code = oauth_code(&s, "lisi", "snsapi_privateinfo").await;
    let UserInfo::Member {
        user_ticket: Some(ticket),
        ..
    } = c.auth_getuserinfo(&code).await.unwrap()
    else {
        panic!("privateinfo must give a user_ticket");
    };
    let d = c.auth_getuserdetail(&ticket).await.unwrap();
    assert_eq!(d.userid, "lisi");
    assert_eq!(d.email.as_deref(), Some("lisi@example.com"));
    assert_eq!(d.gender, "1");
    assert_eq!(
        c.auth_getuserdetail("bogus").await.unwrap_err().errcode(),
        Some(40029)
    );

    // The second app may not redeem the first app's code (50001).
    let code = oauth_code(&s, "zhangsan", "snsapi_base").await;
    let other = client(&s, SECOND_SECRET);
    assert_eq!(
        other.auth_getuserinfo(&code).await.unwrap_err().errcode(),
        Some(50001)
    );
}

#[tokio::test]
async fn outsider_gets_an_openid() {
    let s = sim().await;
    let redirect = format!("http://{DOMAIN}/cb");
    let url = wecom::oauth::authorize_url(
        &wecom::oauth::OAuthHosts::same_origin(&s.base_url),
        CORPID,
        MAIN_AGENTID,
        &redirect,
        wecom::oauth::Scope::Base,
        "s",
    );
    let url = format!(
        "{}&sim_openid={OUTSIDER_OPENID}",
        url.trim_end_matches("#wechat_redirect")
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(url)
        .header("user-agent", "wxwork/4.1")
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    match client(&s, MAIN_SECRET)
        .auth_getuserinfo(&code)
        .await
        .unwrap()
    {
        UserInfo::NonMember { openid, .. } => assert_eq!(openid, OUTSIDER_OPENID),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn open_userid_conversion() {
    let s = sim().await;
    let corp = wecom_sim::model::open_userid(PROVIDER_ID, CORPID, "lisi");
    let foreign = wecom_sim::model::open_userid("other-provider", CORPID, "lisi");
    let outside = wecom_sim::model::open_userid(PROVIDER_ID, CORPID, "zhoujiu");
    let c = client(&s, MAIN_SECRET);
    let r = c
        .openuserid_to_userid(
            &[corp.clone(), foreign.clone(), outside.clone()],
            PROVIDER_AGENTID,
        )
        .await
        .unwrap();
    assert_eq!(r.userid_list.len(), 1);
    assert_eq!(
        (
            r.userid_list[0].open_userid.as_str(),
            r.userid_list[0].userid.as_str()
        ),
        (corp.as_str(), "lisi")
    );
    assert_eq!(r.invalid_open_userid_list.len(), 2);
    assert_eq!(
        c.openuserid_to_userid(&[corp], 999)
            .await
            .unwrap_err()
            .errcode(),
        Some(40056)
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("wo{i}")).collect();
    assert_eq!(
        c.openuserid_to_userid(&too_many, PROVIDER_AGENTID)
            .await
            .unwrap_err()
            .errcode(),
        Some(40058)
    );
}

#[tokio::test]
async fn ip_lists_and_tickets() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    assert_eq!(c.get_api_domain_ip().await.unwrap(), vec!["127.0.0.1"]);
    assert!(!c.getcallbackip().await.unwrap().is_empty());
    let t1 = c.jsapi_ticket().await.unwrap();
    let t2 = c.jsapi_ticket().await.unwrap();
    assert_eq!(t1, t2);
    assert_eq!(counter(&s, "get_jsapi_ticket").await, 1, "cached");
    let a = c.agent_config_ticket().await.unwrap();
    assert_ne!(a, t1);
    let sig = wecom::jssdk::signature(
        &a,
        "nonce",
        1_700_000_000,
        "http://acme.localhost:8080/x#frag",
    );
    assert_eq!(
        sig,
        wecom::jssdk::signature(&a, "nonce", 1_700_000_000, "http://acme.localhost:8080/x")
    );
}

#[tokio::test]
async fn unreachable_wecom_is_a_transport_error_without_secrets() {
    let c = Client::builder(CORPID, "SUPERSECRET")
        .api_base("http://127.0.0.1:9/cgi-bin/")
        .retry(fast_retry())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let e = c.tag_list().await.unwrap_err();
    assert!(matches!(e, wecom::Error::Transport { .. }));
    let text = format!("{e} {e:?}");
    assert!(!text.contains("SUPERSECRET"), "{text}");
    assert!(Client::builder(CORPID, "s")
        .api_base("not a url")
        .build()
        .is_err());
}

#[tokio::test]
async fn an_interactive_call_over_the_limit_fails_at_once_with_45009() {
    let s = sim().await;
    let c = client(&s, MAIN_SECRET);
    admin(
        &s,
        "POST",
        "/faults",
        json!({"path": "user/get", "errcode": 45009, "count": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let e = c.user_get("zhangsan").await.unwrap_err();
    assert_eq!(e.errcode(), Some(45009));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(counter(&s, "user/get").await, 1);
    // The minute's block holds: the next call is refused without reaching WeCom.
    let e = c.user_get("zhangsan").await.unwrap_err();
    assert_eq!(e.errcode(), Some(45009));
    assert!(e.to_string().contains("pacing"), "{e}");
    assert_eq!(counter(&s, "user/get").await, 1);
    // Other APIs are not blocked.
    c.agent_get(MAIN_AGENTID).await.unwrap();
}

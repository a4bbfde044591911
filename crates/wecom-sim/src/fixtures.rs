//! A small deterministic org for tests of the client, the simulator and the bridge.
//! Ids and secrets are constants so tests can name them.

use crate::model::{
    status, App, Department, Member, MemberDept, ProviderApp, ProviderKind, Scope, Tag,
};
use crate::scenario::{CorpSpec, Scenario};
use crate::settings::Settings;

pub const CORPID: &str = "wwtestcorp00000001";
pub const CONTACT_SYNC_SECRET: &str = "test-secret-contact-sync";
/// The main self-built app (the workbench).
pub const MAIN_AGENTID: u32 = 1000002;
pub const MAIN_SECRET: &str = "test-secret-workbench-000000000000000000001";
/// A second self-built app with a narrower scope.
pub const SECOND_AGENTID: u32 = 1000003;
pub const SECOND_SECRET: &str = "test-secret-expense-00000000000000000000002";
pub const PROVIDER_AGENTID: u32 = 2000001;
pub const PROVIDER_ID: &str = "provider-one";
pub const OUTSIDER_OPENID: &str = "oOutsider000000000000000000001";
/// The trusted domain of both apps.
pub const DOMAIN: &str = "acme.localhost:8080";

fn dept(id: u32, name: &str, parentid: u32, order: u32) -> Department {
    Department {
        id,
        name: name.into(),
        name_en: String::new(),
        parentid,
        order,
        leaders: vec![],
    }
}

fn member(userid: &str, name: &str, depts: &[(u32, bool)]) -> Member {
    let mut m = Member::new(userid, name, &[]);
    m.departments = depts
        .iter()
        .map(|&(id, leader)| MemberDept {
            id,
            order: 0,
            leader,
        })
        .collect();
    m.main_department = depts.first().map(|d| d.0);
    m.mobile = format!("138{:08}", userid.len() * 1_111_111 % 100_000_000);
    m.email = format!("{userid}@example.com");
    m.gender = 1;
    m.avatar = format!("https://wework.qpic.cn/wwhead/{userid}/0");
    m.position = "工程师".into();
    m
}

/// Departments: 1 测试科技 ─ 2 研发中心 ─ 3 后端组; 1 ─ 4 市场部 ─ 5 华东区; 1 ─ 6 财务部.
/// Main app scope: department 2 (so 2, 3), tag 1 (member wangwu + department 5), member
/// `qianba` (in 6, individually). Second app scope: department 3.
pub fn small_org() -> Scenario {
    let departments = vec![
        dept(1, "测试科技", 0, 100_000_000),
        dept(2, "研发中心", 1, 99_999_000),
        dept(3, "后端组", 2, 100),
        dept(4, "市场部", 1, 99_998_000),
        dept(5, "华东区", 4, 100),
        dept(6, "财务部", 1, 99_997_000),
    ];
    let mut members = vec![
        member("zhangsan", "张三", &[(2, true), (3, false)]),
        member("lisi", "李四", &[(3, false)]),
        member("wangwu", "王五", &[(4, false)]),
        member("zhaoliu", "赵六", &[(5, true)]),
        member("qianba", "钱八", &[(6, false)]),
        member("sunqi", "孙七", &[(3, false)]),
        member("zhoujiu", "周九", &[(6, false)]),
    ];
    members[1].direct_leader = vec!["zhangsan".into()];
    members[5].status = status::DISABLED;
    let tags = vec![
        Tag {
            id: 1,
            name: "项目A".into(),
            users: ["wangwu".to_string()].into(),
            parties: [5].into(),
        },
        Tag {
            id: 2,
            name: "财务审批".into(),
            users: ["zhoujiu".to_string()].into(),
            parties: Default::default(),
        },
    ];
    let mut main = App::new(MAIN_AGENTID, "工作台", MAIN_SECRET);
    main.scope = Scope {
        users: vec!["qianba".into()],
        parties: vec![2],
        tags: vec![1],
    };
    main.redirect_domain = DOMAIN.into();
    main.web_login_domain = DOMAIN.into();
    main.home_url = format!("http://{DOMAIN}/wecom/home");
    main.trusted_ips = vec!["127.0.0.1".into()];
    let mut second = App::new(SECOND_AGENTID, "报销", SECOND_SECRET);
    second.scope = Scope {
        users: vec![],
        parties: vec![3],
        tags: vec![],
    };
    second.redirect_domain = DOMAIN.into();
    second.web_login_domain = DOMAIN.into();
    second.trusted_ips = vec!["127.0.0.1".into()];
    Scenario {
        settings: Settings::default(),
        corps: vec![CorpSpec {
            corpid: CORPID.into(),
            name: "测试科技".into(),
            contact_sync_secret: Some(CONTACT_SYNC_SECRET.into()),
            departments,
            members,
            tags,
            apps: vec![main, second],
            provider_apps: vec![ProviderApp {
                agentid: PROVIDER_AGENTID,
                provider_id: PROVIDER_ID.into(),
                kind: ProviderKind::ThirdParty,
                scope: Scope {
                    users: vec![],
                    parties: vec![1],
                    tags: vec![],
                },
            }],
            outsiders: vec![OUTSIDER_OPENID.into()],
        }],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixture_is_valid() {
        super::small_org().validate().unwrap();
    }
}

/// The readable example org of `examples/acme.toml` (示例科技), as the demo serves it.
pub const ACME_TOML: &str = include_str!("../examples/acme.toml");

pub fn acme_example() -> Scenario {
    let sc: Scenario = toml::from_str(ACME_TOML).expect("examples/acme.toml is valid");
    sc.validate().expect("examples/acme.toml is consistent");
    sc
}

#[cfg(test)]
mod acme_tests {
    #[test]
    fn acme_example_loads() {
        let sc = super::acme_example();
        assert!(sc.corps[0].members.len() >= 20);
    }
}

//! The nested-scope rule for a model app bound to its own WeCom self-built app
//! (wecom-api.md §4.3): its visible scope must lie inside the main app's, and a refusal
//! names every outsider. Pure: the caller reads both scopes from WeCom.
//!
//! `Depts(main)` is closed under subtrees (a scoped department brings its subtree), so a
//! department of the app's scope is inside iff it is in `Depts(main)`: its subtree and
//! members then are too. A member is inside iff in `Users(main)`. A tag brings its members
//! and its departments (with subtrees): it is inside iff it is one of the main app's own
//! tags, or every member and every department it brings is inside.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The main app's expanded visible scope (wecom-api.md §4.2).
#[derive(Clone, Debug, Default)]
pub struct MainScope {
    /// `Depts(main)`, closed under subtrees.
    pub departments: BTreeSet<u32>,
    /// `Users(main)`, or at least its members among those the app's scope names (the
    /// caller may ask WeCom only about those).
    pub users: BTreeSet<String>,
    /// The main app's `allow_tags`: such a tag is inside whatever it holds.
    pub tags: BTreeSet<u32>,
}

/// A tag of the app's scope, as `tag/get` with the app's own token answers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagScope {
    pub id: u32,
    pub users: Vec<String>,
    pub departments: Vec<u32>,
}

/// The app's scope as its `agent/get` names it, tags expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppScope {
    pub departments: Vec<u32>,
    pub users: Vec<String>,
    pub tags: Vec<TagScope>,
}

/// Display names known for ids; an id without one is shown as itself.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub departments: BTreeMap<u32, String>,
    pub users: BTreeMap<String, String>,
    pub tags: BTreeMap<u32, String>,
}

/// An id and its name (the id again when the name is unknown).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Named<I> {
    pub id: I,
    pub name: String,
}

/// A tag outside the main scope, with what it holds that is outside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutsiderTag {
    pub id: u32,
    pub name: String,
    pub users: Vec<Named<String>>,
    pub departments: Vec<Named<u32>>,
}

/// Everything of the app's scope that lies outside the main app's, each once, by id.
/// `departments` and `users` hold those scoped directly and those brought by a tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outsiders {
    pub departments: Vec<Named<u32>>,
    pub users: Vec<Named<String>>,
    pub tags: Vec<OutsiderTag>,
}

impl Outsiders {
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty() && self.users.is_empty() && self.tags.is_empty()
    }

    /// One line naming every outsider, with the fix, in Chinese.
    pub fn message_zh(&self) -> String {
        let mut parts = Vec::new();
        if !self.departments.is_empty() {
            parts.push(format!("部门 {}", join(&self.departments)));
        }
        if !self.users.is_empty() {
            parts.push(format!("成员 {}", join(&self.users)));
        }
        if !self.tags.is_empty() {
            let tags: Vec<_> = self
                .tags
                .iter()
                .map(|t| Named {
                    id: t.id,
                    name: t.name.clone(),
                })
                .collect();
            parts.push(format!("标签 {}", join(&tags)));
        }
        format!(
            "该应用的可见范围超出了主应用（工作台）的可见范围：{}。请在企业微信管理后台缩小该应用的可见范围后重试。",
            parts.join("；")
        )
    }

    /// The same in English.
    pub fn message_en(&self) -> String {
        let mut parts = Vec::new();
        if !self.departments.is_empty() {
            parts.push(format!("departments {}", join(&self.departments)));
        }
        if !self.users.is_empty() {
            parts.push(format!("members {}", join(&self.users)));
        }
        if !self.tags.is_empty() {
            let tags: Vec<_> = self
                .tags
                .iter()
                .map(|t| Named {
                    id: t.id,
                    name: t.name.clone(),
                })
                .collect();
            parts.push(format!("tags {}", join(&tags)));
        }
        format!(
            "This app's visible scope reaches outside the main (workbench) app's: {}. Narrow this app's visible scope in WeCom's admin console, then try again.",
            parts.join("; ")
        )
    }
}

/// `name (id)`, or the id alone when no name is known.
fn join<I: std::fmt::Display>(v: &[Named<I>]) -> String {
    v.iter()
        .map(|n| {
            let id = n.id.to_string();
            if id == n.name {
                id
            } else {
                format!("{} ({id})", n.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn dept(names: &Names, id: u32) -> Named<u32> {
    Named {
        id,
        name: names
            .departments
            .get(&id)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| id.to_string()),
    }
}

fn user(names: &Names, id: &str) -> Named<String> {
    Named {
        id: id.to_string(),
        name: names
            .users
            .get(id)
            .filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| id.to_string()),
    }
}

/// The app's outsiders: empty iff `Users(app) ⊆ Users(main)` and `Depts(app) ⊆ Depts(main)`.
pub fn outsiders(main: &MainScope, app: &AppScope, names: &Names) -> Outsiders {
    let mut depts = BTreeSet::new();
    let mut users = BTreeSet::new();
    let mut tags = BTreeMap::new();
    for &d in &app.departments {
        if !main.departments.contains(&d) {
            depts.insert(d);
        }
    }
    for u in &app.users {
        if !main.users.contains(u) {
            users.insert(u.clone());
        }
    }
    for t in &app.tags {
        if main.tags.contains(&t.id) {
            continue;
        }
        let t_depts: BTreeSet<u32> = t
            .departments
            .iter()
            .copied()
            .filter(|d| !main.departments.contains(d))
            .collect();
        let t_users: BTreeSet<&String> = t
            .users
            .iter()
            .filter(|u| !main.users.contains(*u))
            .collect();
        if t_depts.is_empty() && t_users.is_empty() {
            continue;
        }
        depts.extend(t_depts.iter().copied());
        users.extend(t_users.iter().map(|u| (*u).clone()));
        tags.insert(
            t.id,
            OutsiderTag {
                id: t.id,
                name: names
                    .tags
                    .get(&t.id)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| t.id.to_string()),
                users: t_users.into_iter().map(|u| user(names, u)).collect(),
                departments: t_depts.into_iter().map(|d| dept(names, d)).collect(),
            },
        );
    }
    Outsiders {
        departments: depts.into_iter().map(|d| dept(names, d)).collect(),
        users: users.iter().map(|u| user(names, u)).collect(),
        tags: tags.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The acme example org's main app: 研发中心 (2) and 产品部 (6) with subtrees, the tag
    /// 项目A (1), 唐莉 by name.
    fn main_scope() -> MainScope {
        MainScope {
            departments: [2, 3, 4, 5, 6, 7].into(),
            users: ["lisi", "xuting", "tangli", "maliang"]
                .map(String::from)
                .into(),
            tags: [1].into(),
        }
    }

    fn names() -> Names {
        Names {
            departments: [(5, "数据平台组".to_string()), (12, "财务部".to_string())].into(),
            users: [
                ("xuting".to_string(), "徐婷".to_string()),
                ("heqiang".to_string(), "何强".to_string()),
            ]
            .into(),
            tags: [(3, "财务审批".to_string())].into(),
        }
    }

    #[test]
    fn a_nested_scope_has_no_outsiders() {
        let app = AppScope {
            departments: vec![5],
            users: vec!["xuting".into()],
            tags: vec![
                // The main app's own tag is inside whatever it holds.
                TagScope {
                    id: 1,
                    users: vec!["someone".into()],
                    departments: vec![99],
                },
                // Another tag whose members and departments are all inside.
                TagScope {
                    id: 4,
                    users: vec!["lisi".into()],
                    departments: vec![3],
                },
            ],
        };
        assert!(outsiders(&main_scope(), &app, &names()).is_empty());
        assert!(outsiders(&main_scope(), &AppScope::default(), &names()).is_empty());
    }

    #[test]
    fn every_outsider_is_named() {
        let app = AppScope {
            departments: vec![5, 12],
            users: vec!["xuting".into(), "heqiang".into(), "ghost".into()],
            tags: vec![TagScope {
                id: 3,
                users: vec!["lisi".into(), "heqiang".into()],
                departments: vec![12, 13],
            }],
        };
        let o = outsiders(&main_scope(), &app, &names());
        assert_eq!(
            o.departments,
            vec![
                Named {
                    id: 12,
                    name: "财务部".into()
                },
                Named {
                    id: 13,
                    name: "13".into()
                }
            ]
        );
        assert_eq!(
            o.users,
            vec![
                Named {
                    id: "ghost".into(),
                    name: "ghost".into()
                },
                Named {
                    id: "heqiang".into(),
                    name: "何强".into()
                }
            ]
        );
        assert_eq!(o.tags.len(), 1);
        assert_eq!(
            (
                o.tags[0].name.as_str(),
                o.tags[0].users.len(),
                o.tags[0].departments.len()
            ),
            ("财务审批", 1, 2)
        );
        let zh = o.message_zh();
        for s in [
            "财务部 (12)",
            "何强 (heqiang)",
            "ghost",
            "财务审批 (3)",
            "缩小",
        ] {
            assert!(zh.contains(s), "{s} in {zh}");
        }
        let en = o.message_en();
        for s in ["财务部 (12)", "何强 (heqiang)", "财务审批 (3)", "Narrow"] {
            assert!(en.contains(s), "{s} in {en}");
        }
    }

    #[test]
    fn a_tag_with_only_inside_members_but_an_outside_department_is_outside() {
        let app = AppScope {
            tags: vec![TagScope {
                id: 9,
                users: vec!["lisi".into()],
                departments: vec![1],
            }],
            ..AppScope::default()
        };
        let o = outsiders(&main_scope(), &app, &names());
        assert_eq!(o.tags.iter().map(|t| t.id).collect::<Vec<_>>(), vec![9]);
        assert_eq!(
            o.departments.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![1]
        );
        assert!(o.users.is_empty());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn ids() -> impl Strategy<Value = BTreeSet<u32>> {
            proptest::collection::btree_set(1u32..20, 0..8)
        }
        fn userids() -> impl Strategy<Value = BTreeSet<String>> {
            proptest::collection::btree_set("[a-e]", 0..5)
        }
        fn tag() -> impl Strategy<Value = TagScope> {
            (1u32..6, userids(), ids()).prop_map(|(id, u, d)| TagScope {
                id,
                users: u.into_iter().collect(),
                departments: d.into_iter().collect(),
            })
        }
        fn app() -> impl Strategy<Value = AppScope> {
            (ids(), userids(), proptest::collection::vec(tag(), 0..4)).prop_map(|(d, u, t)| {
                AppScope {
                    departments: d.into_iter().collect(),
                    users: u.into_iter().collect(),
                    tags: t,
                }
            })
        }
        fn main() -> impl Strategy<Value = MainScope> {
            (
                ids(),
                userids(),
                proptest::collection::btree_set(1u32..6, 0..3),
            )
                .prop_map(|(departments, users, tags)| MainScope {
                    departments,
                    users,
                    tags,
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Soundness and completeness: every reported outsider is outside the main
            /// scope and named by the app's scope; every department or member the app
            /// brings (directly, or through a tag that is not the main app's) that is
            /// outside is reported.
            #[test]
            fn outsiders_are_exactly_what_lies_outside(main in main(), app in app()) {
                let o = outsiders(&main, &app, &Names::default());
                let mut brought_d: BTreeSet<u32> = app.departments.iter().copied().collect();
                let mut brought_u: BTreeSet<String> = app.users.iter().cloned().collect();
                for t in app.tags.iter().filter(|t| !main.tags.contains(&t.id)) {
                    brought_d.extend(t.departments.iter().copied());
                    brought_u.extend(t.users.iter().cloned());
                }
                let want_d: Vec<u32> = brought_d.into_iter().filter(|d| !main.departments.contains(d)).collect();
                let want_u: Vec<String> = brought_u.into_iter().filter(|u| !main.users.contains(u)).collect();
                prop_assert_eq!(o.departments.iter().map(|d| d.id).collect::<Vec<_>>(), want_d);
                prop_assert_eq!(o.users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), want_u);
                for t in &o.tags {
                    prop_assert!(!main.tags.contains(&t.id));
                    prop_assert!(!t.users.is_empty() || !t.departments.is_empty());
                }
            }

            /// Widening the main scope never adds an outsider; the main scope itself
            /// (as an app scope) is always nested.
            #[test]
            fn a_wider_main_scope_never_adds_outsiders(main in main(), app in app(), more_d in ids(), more_u in userids()) {
                let narrow = outsiders(&main, &app, &Names::default());
                let mut wide = main.clone();
                wide.departments.extend(more_d);
                wide.users.extend(more_u);
                let o = outsiders(&wide, &app, &Names::default());
                prop_assert!(o.departments.iter().all(|d| narrow.departments.contains(d)));
                prop_assert!(o.users.iter().all(|u| narrow.users.contains(u)));
                prop_assert!(o.tags.len() <= narrow.tags.len());
                let itself = AppScope {
                    departments: main.departments.iter().copied().collect(),
                    users: main.users.iter().cloned().collect(),
                    tags: vec![],
                };
                prop_assert!(outsiders(&main, &itself, &Names::default()).is_empty());
            }
        }
    }
}

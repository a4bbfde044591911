use super::*;

#[test]
fn interrupted_runs_say_what_they_left() {
    let m = |k, phase, done, total| interrupted_message(k, phase, done, total);
    assert!(m(RunKind::Full, "fetch", 0, 0).ends_with("nothing was applied"));
    assert!(m(RunKind::DryRun, "diff", 0, 0).contains("applies nothing"));
    // Only a version before the fix left a full sync running after its apply.
    let legacy = m(RunKind::Full, "applying", 0, 0);
    assert!(legacy.contains("the directory has its changes"), "{legacy}");
    assert!(!legacy.contains("nothing was applied"));
    let inc = m(RunKind::Incremental, "callbacks", 3, 10);
    assert!(inc.contains("3 of 10 callbacks were handled"), "{inc}");
    assert!(m(RunKind::Incremental, "", 0, 4).contains("stay pending"));
}

fn rec(userid: &str, name: &str, depts: &[i64]) -> UserRecord {
    let mut r = UserRecord {
        userid: userid.into(),
        name: name.into(),
        wecom_status: 1,
        departments: depts
            .iter()
            .map(|&d| Membership {
                department_id: d,
                sort_order: 0,
                is_leader: false,
            })
            .collect(),
        ..Default::default()
    };
    r.normalize();
    r
}

fn cur(id: i64, r: UserRecord, status: UserStatus) -> CurrentUser {
    CurrentUser {
        id,
        key: Some(user_key(&r.userid)),
        record: r,
        status,
        disabled_reason: (status == UserStatus::Disabled).then_some(DisabledReason::LeftScope),
        imported: false,
        link_identity: false,
    }
}

fn dept(id: i64, parent: i64, name: &str) -> DeptRecord {
    DeptRecord {
        id,
        parent_id: parent,
        name: name.into(),
        name_en: String::new(),
        sort_order: 0,
        leaders: String::new(),
        name_withheld: false,
    }
}

const OPTS: DiffOptions = DiffOptions {
    new_user_status: UserStatus::Unauthorized,
};

fn desired(users: Vec<UserRecord>) -> DesiredDirectory {
    DesiredDirectory {
        users: users
            .into_iter()
            .map(|u| (user_key(&u.userid), Box::new(u)))
            .collect(),
        ..Default::default()
    }
}

#[test]
fn identical_directories_give_an_empty_diff() {
    let a = rec("ZhangSan", "张三", &[2, 3]);
    let mut current = CurrentDirectory::default();
    current
        .users
        .push(cur(7, a.clone(), UserStatus::Authorized));
    current.departments.insert(
        2,
        CurrentDept {
            record: dept(2, 1, "研发"),
            active: true,
        },
    );
    let mut want = desired(vec![a]);
    want.departments.insert(2, dept(2, 1, "研发"));
    let d = diff_full(want.clone(), &current, OPTS);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn added_updated_moved_and_disabled() {
    let mut current = CurrentDirectory::default();
    current
        .users
        .push(cur(1, rec("a", "A", &[2]), UserStatus::Authorized));
    current
        .users
        .push(cur(2, rec("b", "B", &[2]), UserStatus::Unauthorized));
    current
        .users
        .push(cur(3, rec("c", "C", &[3]), UserStatus::Authorized));
    let mut b2 = rec("b", "B", &[3]);
    b2.position = "经理".into();
    let want = desired(vec![rec("a", "A2", &[2]), b2, rec("d", "D", &[2])]);
    let d = diff_full(want.clone(), &current, OPTS);
    let c = d.counts();
    assert_eq!(
        (
            c.users_added,
            c.users_updated,
            c.users_moved,
            c.users_disabled
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(d.users_added[0].status, UserStatus::Unauthorized);
    let a = &d.users_updated[0];
    assert_eq!(a.user_id, 1);
    assert_eq!(
        a.changes,
        vec![FieldChange {
            field: "name".into(),
            old: "A".into(),
            new: "A2".into()
        }]
    );
    let b = &d.users_updated[1];
    assert_eq!(b.moved_from, Some(vec![2]));
    assert!(b
        .changes
        .iter()
        .any(|c| c.field == "position" && c.new == "经理"));
    assert_eq!(d.users_disabled[0].user_id, 3);
    assert_eq!(d.users_disabled[0].reason, DisabledReason::LeftScope);
    assert!(d.users_disabled[0].clear_memberships);
    assert_eq!(d.active_disabled(), 1);
}

#[test]
fn withheld_fields_never_erase_stored_ones() {
    let mut stored = rec("a", "张三", &[2]);
    stored.mobile = Some("13800000000".into());
    stored.email = Some("a@example.com".into());
    let mut current = CurrentDirectory::default();
    current.users.push(cur(1, stored, UserStatus::Authorized));
    let mut want = rec("a", "a", &[2]);
    want.name_withheld = true;
    let d = diff_full(desired(vec![want]), &current, OPTS);
    assert!(d.is_empty(), "{d:?}");
}

/// Issue 20: an app that does see the fields (created before 2022-06-20) writes them
/// over the stored ones: the directory wins over an older value (a consented value lives
/// apart, `domain::consent::effective`, and is used only where the directory has none).
#[test]
fn a_field_the_directory_returns_replaces_the_stored_one() {
    let mut stored = rec("a", "张三", &[2]);
    stored.email = Some("old@example.com".into());
    let mut current = CurrentDirectory::default();
    current.users.push(cur(1, stored, UserStatus::Authorized));
    let mut want = rec("a", "张三", &[2]);
    want.email = Some("new@example.com".into());
    let d = diff_full(desired(vec![want]), &current, OPTS);
    assert_eq!(d.users_updated.len(), 1, "{d:?}");
    let u = &d.users_updated[0];
    assert_eq!(u.record.email.as_deref(), Some("new@example.com"));
    assert_eq!(u.record.mobile, None, "a withheld field stays unknown");
}

#[test]
fn name_fallbacks() {
    assert_eq!(
        member_name("张三", "zs", "zhangsan"),
        ("张三".into(), false)
    );
    assert_eq!(member_name("", "zs", "zhangsan"), ("zs".into(), true));
    assert_eq!(member_name(" ", "", "zhangsan"), ("zhangsan".into(), true));
    assert_eq!(department_name("", 7), ("7".into(), true));
    assert_eq!(department_name("研发", 7), ("研发".into(), false));
}

#[test]
fn wecom_status_drives_account_status() {
    let mut current = CurrentDirectory::default();
    current
        .users
        .push(cur(1, rec("a", "A", &[2]), UserStatus::Authorized));
    current
        .users
        .push(cur(2, rec("b", "B", &[2]), UserStatus::Disabled));
    let mut admin_disabled = cur(3, rec("c", "C", &[2]), UserStatus::Disabled);
    admin_disabled.disabled_reason = Some(DisabledReason::Admin);
    current.users.push(admin_disabled);
    let mut a = rec("a", "A", &[2]);
    a.wecom_status = wecom_status::DISABLED;
    let mut n = rec("n", "N", &[2]);
    n.wecom_status = wecom_status::DISABLED;
    let want = desired(vec![a, rec("b", "B", &[2]), rec("c", "C", &[2]), n]);
    let d = diff_full(want.clone(), &current, OPTS);
    let a = d.users_updated.iter().find(|u| u.user_id == 1).unwrap();
    assert_eq!(
        a.status,
        Some((UserStatus::Disabled, Some(DisabledReason::WecomDisabled)))
    );
    // Back in scope: enabled again with the policy's status.
    let b = d.users_updated.iter().find(|u| u.user_id == 2).unwrap();
    assert_eq!(b.status, Some((UserStatus::Unauthorized, None)));
    // An admin's disable is never undone by a sync.
    assert!(d.users_updated.iter().all(|u| u.user_id != 3));
    assert_eq!(d.users_added[0].status, UserStatus::Disabled);
    let c = d.counts();
    assert_eq!((c.users_reenabled, c.users_disabled), (1, 1));
    assert_eq!(d.active_disabled(), 1);
}

#[test]
fn already_disabled_users_are_not_disabled_again() {
    let mut current = CurrentDirectory::default();
    current
        .users
        .push(cur(1, rec("a", "A", &[2]), UserStatus::Disabled));
    let d = diff_full(desired(vec![]), &current, OPTS);
    assert!(d.is_empty());
}

#[test]
fn departments_and_tags() {
    let mut current = CurrentDirectory::default();
    current.departments.insert(
        2,
        CurrentDept {
            record: dept(2, 1, "研发"),
            active: true,
        },
    );
    current.departments.insert(
        3,
        CurrentDept {
            record: dept(3, 2, "后端"),
            active: true,
        },
    );
    current.departments.insert(
        4,
        CurrentDept {
            record: dept(4, 1, "旧"),
            active: false,
        },
    );
    current.tags.insert(
        1,
        CurrentTag {
            record: TagRecord {
                id: 1,
                name: "项目A".into(),
                users: ["a".to_string()].into(),
                departments: [5].into(),
            },
            active: true,
        },
    );
    let mut want = DesiredDirectory::default();
    want.departments.insert(2, dept(2, 1, "研发中心"));
    want.departments.insert(4, dept(4, 1, "旧"));
    let mut withheld = dept(9, 1, "9");
    withheld.name_withheld = true;
    want.departments.insert(9, withheld);
    want.tags.insert(
        1,
        TagRecord {
            id: 1,
            name: "项目A".into(),
            users: ["a".to_string(), "b".to_string()].into(),
            departments: [5].into(),
        },
    );
    let d = diff_full(want.clone(), &current, OPTS);
    let c = d.counts();
    assert_eq!(
        (
            c.departments_added,
            c.departments_updated,
            c.departments_removed
        ),
        (2, 1, 1)
    );
    assert_eq!(d.departments_removed[0].id, 3);
    assert_eq!(c.tags_updated, 1);
    assert!(d.tags_upsert[0].members_changed);
    assert_eq!(d.tags_upsert[0].changes[0].new, "+b");
}

#[test]
fn imported_users_without_identity_are_replaced() {
    let mut current = CurrentDirectory::default();
    let mut imported = cur(1, rec("", "woAbc", &[]), UserStatus::Authorized);
    imported.key = None;
    imported.imported = true;
    current.users.push(imported);
    let mut relinked = cur(2, rec("", "woDef", &[]), UserStatus::Authorized);
    relinked.key = Some("lisi".into());
    relinked.imported = true;
    relinked.link_identity = true;
    current.users.push(relinked);
    let d = diff_full(desired(vec![rec("LiSi", "李四", &[3])]), &current, OPTS);
    assert_eq!(d.users_disabled.len(), 1);
    assert_eq!(d.users_disabled[0].user_id, 1);
    let u = &d.users_updated[0];
    assert_eq!((u.user_id, u.link_identity), (2, true));
    assert_eq!(u.record.name, "李四");
    assert!(d.users_added.is_empty());
    assert_eq!(d.counts().identities_linked, 1);
}

#[test]
fn possible_renames_are_reported_not_merged() {
    let mut current = CurrentDirectory::default();
    current
        .users
        .push(cur(1, rec("lisi", "李四", &[2]), UserStatus::Authorized));
    let d = diff_full(desired(vec![rec("li.si", "李四", &[2])]), &current, OPTS);
    assert_eq!(d.users_added.len(), 1);
    assert_eq!(d.users_disabled.len(), 1);
    assert_eq!(
        d.possible_renames,
        vec![("lisi".into(), "li.si".into(), "李四".into())]
    );
}

#[test]
fn guard_limits() {
    assert!(!mass_disable_guard(10, 2, 200).blocked);
    assert!(mass_disable_guard(10, 3, 200).blocked);
    assert!(!mass_disable_guard(0, 0, 200).blocked);
    assert!(mass_disable_guard(0, 1, 200).blocked);
    assert!(mass_disable_guard(100_000, 20_001, 200).blocked);
    assert!(!mass_disable_guard(100_000, 20_000, 200).blocked);
    assert!(mass_disable_guard(5, 1, 0).blocked);
    assert!(!mass_disable_guard(5, 5, 1000).blocked);
    let v = mass_disable_guard(10, 3, 200);
    assert!(v.message_en().contains("3 of 10"), "{}", v.message_en());
    assert!(v.message_en().contains("20.0%"));
}

#[test]
fn call_bound_matches_the_worked_example() {
    let b = CallBound {
        departments: 5000,
        tags: 200,
        loose_users: 0,
        with_token: true,
    };
    assert_eq!(b.c_min(), 5204);
    let warm = CallBound {
        with_token: false,
        ..b
    };
    assert_eq!(warm.c_min(), 5203);
    let none = CallBound {
        departments: 0,
        tags: 2,
        loose_users: 1,
        with_token: true,
    };
    // gettoken, agent/get, no department/list, tag/list, 2 tag/get, 1 user/get
    assert_eq!(none.c_min(), 6);
}

#[test]
fn summary_caps_samples() {
    let current = CurrentDirectory::default();
    let users: Vec<_> = (0..10).map(|i| rec(&format!("u{i}"), "x", &[1])).collect();
    let d = diff_full(desired(users), &current, OPTS);
    let s = d.summary(3);
    assert_eq!(s.counts.users_added, 10);
    assert_eq!(s.added.len(), 3);
    assert!(s.truncated);
}

#[test]
fn policy_validation_and_enums() {
    assert!(DirectoryPolicy::default().validate().is_ok());
    let bad = DirectoryPolicy {
        max_disable_permille: 1001,
        ..Default::default()
    };
    assert_eq!(bad.validate(), Err(PolicyError::Permille));
    for t in [
        Trigger::Wizard,
        Trigger::Console,
        Trigger::Schedule,
        Trigger::Callback,
        Trigger::Cli,
        Trigger::Api,
    ] {
        assert_eq!(t.as_str().parse::<Trigger>().unwrap(), t);
    }
    assert!("x".parse::<RunStatus>().is_err());
}

#[test]
fn a_changed_tag_carries_its_member_difference_and_a_returning_tag_none() {
    let tag = |users: &[&str]| TagRecord {
        id: 7,
        name: "t".into(),
        users: users.iter().map(|u| u.to_string()).collect(),
        departments: Default::default(),
    };
    let u = diff_tag(&tag(&["a", "b", "c"]), true, &tag(&["b", "c", "d", "e"])).unwrap();
    assert!(u.members_changed);
    assert_eq!(
        u.users_delta,
        Some((
            vec!["d".to_string(), "e".to_string()],
            vec!["a".to_string()]
        ))
    );
    // An inactive tag's links were deleted: all of them are written.
    let back = diff_tag(&tag(&["a"]), false, &tag(&["a", "b"])).unwrap();
    assert!(back.members_changed);
    assert_eq!(back.users_delta, None);
    assert!(diff_tag(&tag(&["a"]), true, &tag(&["a"])).is_none());
}

/// A stored directory with a member in each state the status rules know, and WeCom's
/// answer for it: some unchanged, some changed, one gone.
fn baseline(users: &[CurrentUser]) -> Option<Baseline> {
    let mut b = Baseline::new(OPTS);
    // In two slices, as the store reads them.
    let (a, z) = users.split_at(users.len() / 2);
    b.add(a.to_vec());
    b.add(z.to_vec());
    b.finish()
}

/// `current` as the sync loads it for the diff, `desired`'s set-aside members folded in.
fn fold(desired: &DesiredDirectory, current: &CurrentDirectory) -> CurrentDirectory {
    let mut dir = current.clone();
    let mut folded = Folded::default();
    dir.users.retain(|u| !desired.fold(u, OPTS, &mut folded));
    dir.folded = folded;
    dir
}

fn mixed_directory() -> (CurrentDirectory, Vec<UserRecord>) {
    let mut current = CurrentDirectory::default();
    let mut with_mobile = rec("m", "M", &[2]);
    with_mobile.mobile = Some("13800000000".into());
    let mut left_scope = cur(4, rec("d", "D", &[2]), UserStatus::Disabled);
    left_scope.disabled_reason = Some(DisabledReason::LeftScope);
    let mut by_admin = cur(5, rec("e", "E", &[2]), UserStatus::Disabled);
    by_admin.disabled_reason = Some(DisabledReason::Admin);
    let mut off_in_wecom = rec("f", "F", &[2]);
    off_in_wecom.wecom_status = wecom_status::DISABLED;
    current.users = vec![
        cur(1, rec("a", "A", &[2]), UserStatus::Authorized),
        cur(2, rec("b", "B", &[2, 3]), UserStatus::Unauthorized),
        cur(3, with_mobile.clone(), UserStatus::Authorized),
        left_scope,
        by_admin,
        cur(6, off_in_wecom.clone(), UserStatus::Authorized),
        cur(7, rec("gone", "G", &[2]), UserStatus::Authorized),
    ];
    let mut m_withheld = with_mobile;
    m_withheld.mobile = None;
    let answer = vec![
        rec("a", "A", &[2]),
        rec("b", "B2", &[2, 3]),
        m_withheld,
        rec("d", "D", &[2]),
        rec("e", "E", &[2]),
        off_in_wecom,
        rec("new", "N", &[3]),
    ];
    (current, answer)
}

#[test]
fn setting_aside_unchanged_members_leaves_the_diff_as_it_was() {
    let (current, answer) = mixed_directory();
    let whole = diff_full(desired(answer.clone()), &current, OPTS);

    let baseline = baseline(&current.users).expect("every member has a key");
    // Half read before the stored directory was there, half after.
    let mut lean = DesiredDirectory::default();
    for (i, r) in answer.iter().enumerate() {
        lean.add_user(
            user_key(&r.userid),
            r.clone(),
            (i >= 3).then_some(&baseline),
        );
    }
    lean.set_aside(&baseline);
    // a (same), m (mobile withheld: same), d (back in scope: a status change only) and
    // e (disabled by an admin: stays) and f (disabled in WeCom, still authorized: a
    // status change only) are held as fingerprints; b changed, `new` is new.
    let mut aside: Vec<_> = lean.unchanged.keys().cloned().collect();
    aside.sort();
    assert_eq!(aside, ["a", "e", "m"], "status changes are not set aside");
    assert_eq!(lean.member_count(), answer.len());
    assert!(lean.has_user("a") && lean.has_user("new") && !lean.has_user("gone"));
    let d = diff_full(lean.clone(), &current, OPTS);
    assert_eq!(format!("{d:?}"), format!("{whole:?}"));
    assert_eq!(d.changed_during_fetch, 0);
    // Folded in while the directory loads for the diff: the same diff, the same guard.
    let folded = fold(&lean, &current);
    assert_eq!(folded.users.len(), current.users.len() - 3);
    assert_eq!(folded.folded.members, 3);
    assert_eq!(folded.active_users(), current.active_users());
    let f = diff_full(lean, &folded, OPTS);
    assert_eq!(format!("{f:?}"), format!("{whole:?}"));
    let c = d.counts();
    // Disabled: the one gone, and f by WeCom's status.
    assert_eq!(
        (c.users_added, c.users_updated, c.users_disabled),
        (1, 3, 2)
    );
}

#[test]
fn a_member_changed_in_the_bridge_during_the_fetch_is_left_for_the_next_sync() {
    let (mut current, answer) = mixed_directory();
    let baseline = baseline(&current.users).unwrap();
    let mut lean = DesiredDirectory::default();
    for r in &answer {
        lean.add_user(user_key(&r.userid), r.clone(), Some(&baseline));
    }
    // A sign-in fills a's withheld email while WeCom is read; an admin re-enables e.
    current.users[0].record.email = Some("a@example.com".into());
    current.users[4].status = UserStatus::Authorized;
    current.users[4].disabled_reason = None;
    for dir in [current.clone(), fold(&lean, &current)] {
        let d = diff_full(lean.clone(), &dir, OPTS);
        assert_eq!(d.changed_during_fetch, 1);
        assert!(d.users_updated.iter().all(|u| u.user_id != 1), "a is kept");
        assert!(
            d.users_updated.iter().all(|u| u.user_id != 5),
            "e, unchanged in WeCom and enabled, stays enabled"
        );
    }
    // An admin disables a set-aside member meanwhile: nothing to undo, and the guard
    // no longer counts them as active.
    current.users[0].record.email = None;
    current.users[2].status = UserStatus::Disabled;
    current.users[2].disabled_reason = Some(DisabledReason::Admin);
    let folded = fold(&lean, &current);
    assert_eq!(folded.active_users(), current.active_users());
    assert!(diff_full(lean, &folded, OPTS)
        .users_updated
        .iter()
        .all(|u| u.user_id != 3));
}

#[test]
fn nothing_is_set_aside_while_someone_waits_to_be_matched() {
    let (mut current, _) = mixed_directory();
    current.users[1].key = None;
    assert!(baseline(&current.users).is_none());
}

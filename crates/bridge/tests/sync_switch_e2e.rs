//! The switch from a third-party app (wecom-api.md §7): an imported directory of
//! open_userids is re-linked to the same internal users through
//! batch/openuserid_to_userid, replaced by the self-built app's view, its third-party
//! identities retired, and whoever could not be re-linked reported. SQLite and PostgreSQL.

mod common;
mod sync_support;

use bridge::domain::directory::RunStatus;
use bridge::domain::user::{DisabledReason, UserStatus};
use bridge::store::ImportedMember;
use bridge::testing::database_urls;
use serde_json::json;
use sync_support::*;
use wecom_sim::fixtures::{CORPID, PROVIDER_AGENTID, PROVIDER_ID};

fn imported(userid: &str) -> ImportedMember {
    let open = wecom_sim::model::open_userid(PROVIDER_ID, CORPID, userid);
    // Third-party apps got no names: the import holds the id where the name should be.
    ImportedMember {
        name: open.clone(),
        open_userid: open,
    }
}

#[tokio::test]
async fn third_party_directory_is_relinked_and_replaced() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let store = &t.st().store;
        let mut members = vec![imported("zhangsan"), imported("lisi"), imported("zhoujiu")];
        members.push(ImportedMember {
            open_userid: "woGhost000000000000000000000001".into(),
            name: "woGhost000000000000000000000001".into(),
        });
        let ids = store
            .seed_imported_directory(
                t.tenant.id,
                CORPID,
                PROVIDER_AGENTID as i64,
                &members,
                UserStatus::Authorized,
            )
            .await
            .unwrap();

        // Two of four imported users cannot be re-linked: the guard asks first.
        let o = t.sync_with(false, false).await;
        assert_eq!(o.status, RunStatus::Blocked);
        assert_eq!(
            store.imported_identities(t.tenant.id).await.unwrap().len(),
            4
        );
        let rl = o.report.relink.as_ref().unwrap();
        assert_eq!((rl.imported, rl.relinked, rl.unlinked.len()), (4, 2, 2));

        let o = t.sync_with(false, true).await;
        assert_eq!(o.status, RunStatus::Succeeded, "{:?}", o.message);
        let rl = o.report.relink.as_ref().unwrap();
        assert_eq!(rl.conversion_calls, 1);
        assert_eq!(o.report.api_calls["batch/openuserid_to_userid"].calls, 1);
        let mut unlinked: Vec<i64> = rl.unlinked.iter().map(|u| u.user_id).collect();
        unlinked.sort();
        assert_eq!(unlinked, [ids[2], ids[3]]);
        assert!(rl
            .unlinked
            .iter()
            .all(|u| u.reason.contains("could not convert")));

        // Same internal users, real names now; status kept (they were authorized).
        let zs = t.user("zhangsan").await.unwrap();
        assert_eq!((zs.0, zs.2), (UserStatus::Authorized, ids[0]));
        assert_eq!(t.user("lisi").await.unwrap().2, ids[1]);
        let dir = t.dir().await;
        assert_eq!(
            dir.users
                .iter()
                .find(|u| u.id == ids[0])
                .unwrap()
                .record
                .name,
            "张三"
        );
        // Not re-linked: disabled (not deleted), reported for manual linking.
        for id in [ids[2], ids[3]] {
            let u = dir.users.iter().find(|u| u.id == id).unwrap();
            assert_eq!(
                (u.status, u.disabled_reason),
                (UserStatus::Disabled, Some(DisabledReason::LeftScope))
            );
        }
        // The rest of the self-built scope arrived as new users.
        assert!(t.user("qianba").await.is_some());
        // Third-party sign-in is over: no wecom_open identity left, all kept as retired.
        assert!(store
            .imported_identities(t.tenant.id)
            .await
            .unwrap()
            .is_empty());
        let retired = store.retired_identities(t.tenant.id).await.unwrap();
        assert_eq!(retired.len(), 4);
        assert_eq!(retired[0].2.as_deref(), Some("zhangsan"));
        assert_eq!(retired[3].2, None);
        let again = t.sync().await;
        assert!(again.report.relink.is_none());
        assert_eq!(again.report.diff.counts, Default::default());
    }
}

#[tokio::test]
async fn conversion_runs_in_batches_of_1000_and_needs_the_old_app() {
    for db in database_urls().await {
        let t = setup(&db).await;
        let store = &t.st().store;
        let mut members = vec![imported("zhangsan")];
        members.extend((0..1200).map(|i| ImportedMember {
            open_userid: format!("woFake{i:026}"),
            name: format!("fake {i}"),
        }));
        store
            .seed_imported_directory(
                t.tenant.id,
                CORPID,
                PROVIDER_AGENTID as i64,
                &members,
                UserStatus::Unauthorized,
            )
            .await
            .unwrap();
        let o = t.sync_with(true, false).await;
        let rl = o.report.relink.as_ref().unwrap();
        assert_eq!(
            (rl.conversion_calls, rl.relinked, rl.unlinked.len()),
            (2, 1, 1200)
        );
        // The summary keeps a sample; the counts are complete.
        assert_eq!(o.report.diff.counts.users_disabled, 1200);

        // Once the third-party app is uninstalled WeCom cannot convert its ids.
        t.sim(
            "DELETE",
            &format!("/provider_apps/{PROVIDER_AGENTID}"),
            json!({}),
        )
        .await;
        let o = t.sync_with(true, false).await;
        let rl = o.report.relink.as_ref().unwrap();
        assert_eq!(rl.relinked, 0);
        assert!(
            rl.unlinked
                .iter()
                .all(|u| u.reason.contains("no longer installed")),
            "{:?}",
            rl.unlinked[0]
        );
    }
}

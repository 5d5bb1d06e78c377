//! Users, roles, regions, visitor assignments and the audit log, on both databases.

use anxin_domain::access::{Placed, Region, Role};
use anxin_domain::registry::NewElder;

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    users_sign_in_with_the_same_answer_for_every_failure,
    visitors_see_only_their_elders_and_the_unassigned_are_listed,
);

const T: i64 = 1_780_000_000_000;

fn elder(name: &str, village: &str) -> NewElder {
    NewElder {
        name: name.into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: village.into(),
        address: "-".into(),
        phone: None,
        emergency_contact: None,
        emergency_phone: None,
        categories: String::new(),
        inactivity_hours: None,
        ..NewElder::default()
    }
}

async fn users_sign_in_with_the_same_answer_for_every_failure(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let first = store.ensure_first_admin(None, T).await.unwrap().expect("a one-time password on a fresh database");
    assert_eq!(first.len(), 20);
    assert_eq!(store.ensure_first_admin(Some("another password"), T).await.unwrap(), None, "only once");
    let admin = store.authenticate("admin", &first).await.unwrap().expect("the printed password works");
    assert_eq!(admin.role, Role::Admin);
    assert!(store.users().await.unwrap()[0].must_change_password);

    let region = Region::parse("振兴区/站前街道").unwrap();
    let refused = store.add_user("值班员 李", Role::Oncall, &[], "a long enough password", T).await.unwrap_err();
    assert_eq!(refused.to_string(), "the oncall role needs at least one --region");
    store
        .add_user("值班员 李", Role::Oncall, std::slice::from_ref(&region), "a long enough password", T)
        .await
        .unwrap();
    let twice = store.add_user("值班员 李", Role::Oncall, &[region], "a long enough password", T).await.unwrap_err();
    assert_eq!(twice.to_string(), "there is already a user called 值班员 李");
    assert!(store.add_user("short", Role::Admin, &[], "short", T).await.is_err());

    let oncall = store.authenticate("值班员 李", "a long enough password").await.unwrap().unwrap();
    assert_eq!(oncall.regions[0].to_string(), "振兴区/站前街道");
    assert!(store.authenticate("值班员 李", "a wrong password").await.unwrap().is_none());
    assert!(store.authenticate("nobody", "a long enough password").await.unwrap().is_none());
    let added: Vec<String> = store.audit_entries(None, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(added, ["user added", "user added"]);
}

async fn visitors_see_only_their_elders_and_the_unassigned_are_listed(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let mine = store.add_elder(&elder("王秀英", "锦山社区"), T).await.unwrap();
    let other = store.add_elder(&elder("李桂兰", "六道口社区"), T).await.unwrap();
    store.add_user("志愿者 赵", Role::Visitor, &[], "a long enough password", T).await.unwrap();
    store
        .add_user("值班员 李", Role::Oncall, &[Region::parse("振兴区").unwrap()], "a long enough password", T)
        .await
        .unwrap();
    assert_eq!(store.elders_without_visitor().await.unwrap(), [mine.id, other.id]);
    store.assign_visitor(mine.id, "志愿者 赵", "admin", T).await.unwrap();
    store.assign_visitor(mine.id, "志愿者 赵", "admin", T).await.unwrap();
    assert!(
        store.assign_visitor(mine.id, "值班员 李", "admin", T).await.unwrap_err().to_string().contains("not a visitor")
    );
    assert!(store.assign_visitor(999, "志愿者 赵", "admin", T).await.is_err());
    assert_eq!(store.elders_without_visitor().await.unwrap(), [other.id]);

    let visitor = store.authenticate("志愿者 赵", "a long enough password").await.unwrap().unwrap();
    assert_eq!(visitor.assigned_elders, [mine.id]);
    assert!(visitor.can_see_elder(&mine.place()));
    assert!(!visitor.can_see_elder(&other.place()));
    let audit = store.audit_entries(Some(mine.id), 10).await.unwrap();
    assert_eq!(audit.len(), 2, "both assignments are in the log: {audit:?}");
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("admin", "visitor assigned"));
}

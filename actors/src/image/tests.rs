//! The ImageStore decides "in use" itself: from the containers' read model
//! and from the claims of creates in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::watch;

use super::*;
use crate::events::Events;
use crate::ports::SystemClock;
use crate::testing::MemRecords;
use crate::view::ViewPublisher;

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The users the store sees (what the containers' read model would say).
pub(crate) type Users = Arc<Mutex<Vec<ImageUser>>>;

/// An image store with one empty image tagged `t:1`; its ID.
pub(crate) async fn start() -> (Images, Users, String) {
    let (tx, rx) = watch::channel(Arc::new(ImageIndex::default()));
    let users: Users = Arc::default();
    let u = users.clone();
    let args = ImageStoreArgs {
        records: Arc::new(MemRecords::default()),
        index: Arc::new(tx),
        view: ViewPublisher::new().0,
        events: Events::new(Arc::new(SystemClock)),
        present_layers: Arc::new(Default::default),
        release: Arc::new(|_| {}),
        users: Arc::new(move || u.lock().unwrap().clone()),
    };
    Actor::spawn(
        Some(crate::directory::IMAGE_STORE.to_string()),
        ImageStore,
        args,
    )
    .await
    .unwrap();
    let images = Images::new(rx);
    let id = images
        .commit(
            br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec(),
            vec![],
            vec![Reference::parse("t:1").unwrap()],
        )
        .await
        .unwrap()
        .id;
    (images, users, id)
}

pub(crate) async fn stop() {
    if let Some(s) = ActorRef::<ImageStoreMsg>::where_is(crate::directory::IMAGE_STORE) {
        s.stop(None);
    }
    for _ in 0..100 {
        if ractor::registry::where_is(crate::directory::IMAGE_STORE).is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn everything() -> PruneSelect {
    Box::new(|_| true)
}

#[tokio::test]
async fn a_claimed_or_used_image_is_neither_deleted_nor_pruned() {
    let _serial = SERIAL.lock().await;
    let (images, users, id) = start().await;
    // A create claims the image: delete and prune leave it.
    Images::claim(&id, "c1").await.unwrap();
    let e = images.delete("t:1".into(), false, true).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("container c1 is using its referenced image"),
        "{e}"
    );
    let e = images.delete(id.clone(), true, true).await.unwrap_err();
    assert!(e.to_string().contains("cannot be forced"), "{e}");
    assert!(images.prune(everything()).await.unwrap().items.is_empty());
    // The create is listed (a user of the read model) and its claim ends.
    users.lock().unwrap().push(ImageUser {
        container: "c1".into(),
        image: id.clone(),
        live: true,
    });
    Images::unclaim("c1");
    let e = images.delete(id.clone(), true, true).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("image is being used by running container c1"),
        "{e}"
    );
    // Removed: nothing holds it any more.
    users.lock().unwrap().clear();
    let pruned = images.prune(everything()).await.unwrap();
    assert!(
        pruned.items.contains(&DeleteItem::Deleted(id.clone())),
        "{:?}",
        pruned.items
    );
    // A create that comes after the image is gone is refused.
    assert_eq!(
        Images::claim(&id, "c2").await,
        Err(ImageError::NotFound(id.clone()))
    );
    stop().await;
}

#[tokio::test]
async fn a_failed_create_releases_its_claim() {
    let _serial = SERIAL.lock().await;
    let (images, _users, id) = start().await;
    Images::claim(&id, "c3").await.unwrap();
    Images::unclaim("c3");
    let (items, _) = images.delete("t:1".into(), false, true).await.unwrap();
    assert!(items.contains(&DeleteItem::Deleted(id)), "{items:?}");
    stop().await;
}

//! Freeing image content (layer directories and blobs) never races an
//! operation that writes or reads it.
//!
//! Blobs are named by their digest, so two operations storing the same
//! content share one file, and a layer an operation found in the store may
//! be released by an `rmi` before that operation commits. So content is
//! never removed while an image operation is in flight (a load, pull,
//! import, commit, build, push or save holds a [`Working`] from its first
//! look at the store until its records are committed): what `rmi`, prune
//! and the failure paths free waits, and is removed when the last
//! operation ends, each item checked again against the records then (an
//! operation may have committed a reference to it meanwhile). With no
//! operation in flight it is removed at once, before the request that
//! freed it answers; an operation that starts meanwhile waits for that
//! removal, so it never writes a file the removal then deletes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_actors::image::Images;

use crate::sys::blobs::BlobStore;
use crate::sys::storage::StorageDriver;

#[derive(Default)]
struct State {
    /// Image operations in flight.
    working: usize,
    /// A removal is running (no operation may start until it ends).
    removing: bool,
    cache_ids: BTreeSet<String>,
    blobs: BTreeSet<String>,
}

struct Inner {
    state: Mutex<State>,
    done: tokio::sync::Notify,
    images: Images,
    driver: Arc<dyn StorageDriver>,
    blobs: BlobStore,
}

/// The image content's collector (one per daemon, in the ImageService).
#[derive(Clone)]
pub struct Gc(Arc<Inner>);

/// An image operation in flight: nothing is removed until it is dropped
/// (or [`Working::finish`]ed).
pub struct Working {
    gc: Option<Gc>,
}

impl Gc {
    pub fn new(images: Images, driver: Arc<dyn StorageDriver>, blobs: BlobStore) -> Gc {
        Gc(Arc::new(Inner {
            state: Mutex::new(State::default()),
            done: tokio::sync::Notify::new(),
            images,
            driver,
            blobs,
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An operation starts (after a removal running now).
    pub async fn working(&self) -> Working {
        loop {
            let done = self.0.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            {
                let mut s = self.state();
                if !s.removing {
                    s.working += 1;
                    return Working {
                        gc: Some(self.clone()),
                    };
                }
            }
            done.await;
        }
    }

    /// [`Gc::working`] from a blocking thread.
    pub fn working_blocking(&self) -> Working {
        loop {
            {
                let mut s = self.state();
                if !s.removing {
                    s.working += 1;
                    return Working {
                        gc: Some(self.clone()),
                    };
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Hand over layer directories and blobs to free once no operation is
    /// in flight (from an operation's failure path: removed when it, or
    /// the last one, ends).
    pub fn defer(
        &self,
        cache_ids: impl IntoIterator<Item = String>,
        blobs: impl IntoIterator<Item = String>,
    ) {
        let mut s = self.state();
        s.cache_ids.extend(cache_ids);
        s.blobs.extend(blobs);
    }

    /// Free layer directories and blobs no record may use any more: now
    /// (on this thread, a blocking one) when no operation is in flight,
    /// else when the last one ends.
    pub fn free(
        &self,
        cache_ids: impl IntoIterator<Item = String>,
        blobs: impl IntoIterator<Item = String>,
    ) {
        self.defer(cache_ids, blobs);
        self.collect();
    }

    /// Remove what is pending unless an operation is in flight or another
    /// thread removes already (it takes what was added meanwhile too).
    fn collect(&self) {
        loop {
            let (cache_ids, blobs) = {
                let mut s = self.state();
                if s.working > 0 || s.removing || (s.cache_ids.is_empty() && s.blobs.is_empty()) {
                    return;
                }
                s.removing = true;
                (
                    std::mem::take(&mut s.cache_ids),
                    std::mem::take(&mut s.blobs),
                )
            };
            // What the records use now stays (committed meanwhile).
            let snap = self.0.images.snapshot();
            let used_dirs: BTreeSet<&String> = snap.layers.values().map(|l| &l.cache_id).collect();
            let used_blobs: BTreeSet<&String> = snap
                .layers
                .values()
                .filter_map(|l| l.blob.as_ref().map(|b| &b.digest))
                .collect();
            for id in cache_ids.iter().filter(|id| !used_dirs.contains(id)) {
                if let Err(e) = self.0.driver.remove(id) {
                    tracing::warn!(%id, "removing layer directory: {e}");
                }
            }
            for b in blobs.iter().filter(|b| !used_blobs.contains(b)) {
                self.0.blobs.remove(b);
            }
            self.state().removing = false;
            self.0.done.notify_waiters();
        }
    }
}

impl Working {
    /// The operation ended: what waits is removed (on a blocking thread)
    /// before this returns.
    pub async fn finish(mut self) {
        if let Some(gc) = self.gc.take() {
            gc.state().working -= 1;
            let _ = tokio::task::spawn_blocking(move || gc.collect()).await;
        }
    }

    /// [`Working::finish`] on a blocking thread.
    pub fn finish_blocking(mut self) {
        if let Some(gc) = self.gc.take() {
            gc.state().working -= 1;
            gc.collect();
        }
    }
}

/// An operation that ended without [`Working::finish`] (a panic, a
/// cancelled request): what waits is removed on a blocking thread.
impl Drop for Working {
    fn drop(&mut self) {
        let Some(gc) = self.gc.take() else {
            return;
        };
        gc.state().working -= 1;
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn_blocking(move || gc.collect());
            }
            Err(_) => gc.collect(),
        }
    }
}

//! Small task helpers.

use tokio::task::JoinHandle;

/// Aborts its task when dropped (also when the owning actor is killed).
pub struct AbortOnDrop<T = ()>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

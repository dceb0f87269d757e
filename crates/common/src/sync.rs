//! Locks that keep working after a panic elsewhere.
//!
//! A `std` lock is poisoned when a thread panics while holding it. Every lock in stockstream
//! guards plain data (maps, sets, queues, counters) that a panic cannot leave in an unsafe state,
//! so the data is taken as it is. What this replaces is worse: `if let Ok(guard) = lock.lock()`
//! silently skipped the update (a poisoned delivery tracker would have forgotten failed
//! deliveries, and readiness would have stopped changing).

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`] that takes the data of a poisoned lock as it is.
pub trait MutexExt<T: ?Sized> {
    /// Locks, waiting for other holders.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> MutexExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`RwLock::read`] and [`RwLock::write`] that take the data of a poisoned lock as it is.
pub trait RwLockExt<T: ?Sized> {
    /// Locks for reading.
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    /// Locks for writing.
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let shared = Arc::new((Mutex::new(vec![1]), RwLock::new(1)));
        let panicking = shared.clone();
        let outcome = std::thread::spawn(move || {
            let _vec = panicking.0.lock();
            let _number = panicking.1.write();
            panic!("a holder panics");
        })
        .join();
        assert!(outcome.is_err());
        assert!(shared.0.is_poisoned() && shared.1.is_poisoned());
        shared.0.locked().push(2);
        *shared.1.write_locked() += 1;
        assert_eq!(*shared.0.locked(), vec![1, 2]);
        assert_eq!(*shared.1.read_locked(), 2);
    }
}

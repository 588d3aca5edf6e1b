//! The buffer's reservation lock (Linux `dma_resv` ww_mutex), made
//! re-entrancy safe: a call that would take it while the same caller
//! already holds it — an importer calling back from its notification, an
//! exporter calling back from `answer`/`migrate` — is
//! [`ShareError::ReEntrant`], never a deadlock.
//!
//! Two checks, either suffices: the holding thread (with `std`; without it
//! there is no thread identity), and the attachment being notified (an
//! attachment's own calls during its own notification, which also works
//! `no_std`).

use super::error::ShareError;
use super::ids::AttachId;
use crate::sync::{Mutex, MutexGuard};
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A token for the current thread: distinct for every live thread, never 0
/// (`std`); always 0 without `std` (no thread identity).
#[cfg(feature = "std")]
fn thread_token() -> usize {
    std::thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| core::ptr::from_ref(t) as usize)
}

#[cfg(not(feature = "std"))]
fn thread_token() -> usize {
    0
}

/// The lock and who holds it.
#[derive(Debug, Default)]
pub(crate) struct Reservation<T> {
    state: Mutex<T>,
    holder: AtomicUsize,
    notifying: AtomicU64,
}

impl<T> Reservation<T> {
    pub(crate) fn new(t: T) -> Self {
        Self {
            state: Mutex::new(t),
            holder: AtomicUsize::new(0),
            notifying: AtomicU64::new(0),
        }
    }

    /// Takes the lock for `call` on behalf of `who` (the calling
    /// attachment, if any).
    pub(crate) fn lock(
        &self,
        call: &'static str,
        who: Option<AttachId>,
    ) -> Result<ResvGuard<'_, T>, ShareError> {
        let me = thread_token();
        if me != 0 && self.holder.load(Ordering::Acquire) == me {
            return Err(ShareError::ReEntrant { call });
        }
        if let Some(a) = who {
            if self.notifying.load(Ordering::Acquire) == a.0 + 1 {
                return Err(ShareError::ReEntrant { call });
            }
        }
        let guard = self.state.lock();
        self.holder.store(me, Ordering::Release);
        Ok(ResvGuard { guard, resv: self })
    }
}

/// The held reservation.
pub(crate) struct ResvGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    resv: &'a Reservation<T>,
}

impl<T> ResvGuard<'_, T> {
    /// Marks `a` as being notified until [`ResvGuard::notified`].
    pub(crate) fn notifying(&self, a: AttachId) {
        self.resv.notifying.store(a.0 + 1, Ordering::Release);
    }

    /// Ends a notification.
    pub(crate) fn notified(&self) {
        self.resv.notifying.store(0, Ordering::Release);
    }
}

impl<T> Deref for ResvGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for ResvGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for ResvGuard<'_, T> {
    fn drop(&mut self) {
        self.resv.holder.store(0, Ordering::Release);
    }
}

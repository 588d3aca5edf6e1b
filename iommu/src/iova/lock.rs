//! The one lock type of the IOVA cache: std's `Mutex` with `std`, a spin lock
//! without it (a `no_std` kernel brings interrupts-off sections of its own).
//! A poisoned std mutex is recovered, never a panic: every critical section
//! leaves the protected state consistent before it can panic.

#[cfg(feature = "std")]
pub(crate) struct Lock<T>(std::sync::Mutex<T>);

/// What [`Lock::lock`] returns.
#[cfg(feature = "std")]
pub(crate) type Guard<'a, T> = std::sync::MutexGuard<'a, T>;

/// What [`Lock::lock`] returns.
#[cfg(not(feature = "std"))]
pub(crate) type Guard<'a, T> = spin::MutexGuard<'a, T>;

#[cfg(feature = "std")]
impl<T> Lock<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(std::sync::Mutex::new(v))
    }

    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(not(feature = "std"))]
pub(crate) struct Lock<T>(spin::Mutex<T>);

#[cfg(not(feature = "std"))]
impl<T> Lock<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(spin::Mutex::new(v))
    }

    #[inline]
    pub(crate) fn lock(&self) -> Guard<'_, T> {
        self.0.lock()
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Lock(..)")
    }
}

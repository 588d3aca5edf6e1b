//! The locks of the DMA layer: `std::sync` with `std`, spin locks without.
//!
//! One API either way: `lock()`, `read()` and `write()` return the guard
//! directly. A poisoned std lock is taken over, because every structure
//! behind these locks is left consistent between statements (a panicking
//! holder cannot leave half an update that a later caller would trust).

#[cfg(feature = "std")]
mod imp {
    use std::sync::PoisonError;

    /// Guard of a [`Mutex`].
    pub type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;
    /// Shared guard of a [`RwLock`].
    pub type RwLockReadGuard<'a, T> = std::sync::RwLockReadGuard<'a, T>;
    /// Exclusive guard of a [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = std::sync::RwLockWriteGuard<'a, T>;

    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(t: T) -> Self {
            Self(std::sync::Mutex::new(t))
        }

        /// The value, consuming the lock.
        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Locks it.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// A reader-writer lock.
    #[derive(Debug, Default)]
    pub struct RwLock<T: ?Sized>(std::sync::RwLock<T>);

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(t: T) -> Self {
            Self(std::sync::RwLock::new(t))
        }
    }

    impl<T: ?Sized> RwLock<T> {
        /// Shared access.
        #[inline]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }

        /// Exclusive access.
        #[inline]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    /// Guard of a [`Mutex`].
    pub type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;
    /// Shared guard of a [`RwLock`].
    pub type RwLockReadGuard<'a, T> = spin::RwLockReadGuard<'a, T>;
    /// Exclusive guard of a [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = spin::RwLockWriteGuard<'a, T>;

    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub struct Mutex<T: ?Sized>(spin::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(t: T) -> Self {
            Self(spin::Mutex::new(t))
        }

        /// The value, consuming the lock.
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Locks it.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A reader-writer lock.
    #[derive(Debug, Default)]
    pub struct RwLock<T: ?Sized>(spin::RwLock<T>);

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(t: T) -> Self {
            Self(spin::RwLock::new(t))
        }
    }

    impl<T: ?Sized> RwLock<T> {
        /// Shared access.
        #[inline]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }

        /// Exclusive access.
        #[inline]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }
}

pub use imp::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

//! Buffers a thread keeps between requests: a request borrows one, finds it empty, and leaves
//! it for the thread's next — unless the request made it larger than [`LIMIT`], in which case
//! it is given back, so that one long request does not hold memory for the thread's life.

use std::cell::RefCell;
use std::thread::LocalKey;

/// The most a kept buffer holds allocated after a request.
pub const LIMIT: usize = 16 * 1024;

/// A buffer a thread can keep: emptied before each use, measured after it.
pub trait Kept: Default {
    fn clear(&mut self);
    /// What it holds allocated, in bytes.
    fn kept_bytes(&self) -> usize;
}

impl Kept for String {
    fn clear(&mut self) {
        String::clear(self);
    }

    fn kept_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Kept for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self);
    }

    fn kept_bytes(&self) -> usize {
        self.capacity()
    }
}

impl Kept for bytes::BytesMut {
    fn clear(&mut self) {
        bytes::BytesMut::clear(self);
    }

    /// (What is left of it past what was split off: the caller keeps only a buffer that did
    /// not grow, `backend::session`.)
    fn kept_bytes(&self) -> usize {
        self.capacity()
    }
}

/// About what one field of a header map takes in its tables (name, value, hash, links, index
/// slots).
pub const HEADER_ENTRY_BYTES: usize = 128;

/// A header map's fields, cleared for the next use with their tables kept.
impl Kept for http::HeaderMap {
    fn clear(&mut self) {
        http::HeaderMap::clear(self);
    }

    /// About what its tables hold, [`HEADER_ENTRY_BYTES`] a field. (The values beyond a name's
    /// first are not in its capacity: a map is to be given room for every value before it is
    /// filled, as `backend::session` gives it, so that its capacity counts them.)
    fn kept_bytes(&self) -> usize {
        self.capacity() * HEADER_ENTRY_BYTES
    }
}

/// `use_it` with the thread's buffer in `key`, emptied; given back afterwards if it grew past
/// [`LIMIT`]. (Not re-entrant: `use_it` must not ask for the same buffer.)
pub fn with<T: Kept, R>(key: &'static LocalKey<RefCell<T>>, use_it: impl FnOnce(&mut T) -> R) -> R {
    key.with_borrow_mut(|buffer| {
        buffer.clear();
        let result = use_it(buffer);
        if buffer.kept_bytes() > LIMIT {
            *buffer = T::default();
        }
        result
    })
}

/// The thread's buffer in `key`, emptied, for a use that spans an await (where [`with`] cannot
/// lend it); the thread keeps none meanwhile, and [`give_back`] returns it.
pub fn lend<T: Kept>(key: &'static LocalKey<RefCell<T>>) -> T {
    let mut buffer = key.with_borrow_mut(std::mem::take);
    buffer.clear();
    buffer
}

/// Returns a lent buffer to the thread (whichever thread the use ended on), unless it grew past
/// [`LIMIT`] or the thread has one again — or the thread is ending (its buffers already gone:
/// a use dropped then simply frees it).
pub fn give_back<T: Kept>(key: &'static LocalKey<RefCell<T>>, buffer: T) {
    if buffer.kept_bytes() > LIMIT {
        return;
    }
    let _ = key.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.kept_bytes() == 0 {
            *kept = buffer;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
    }

    /// Each use finds the buffer empty; a small one stays with the thread, a large one goes.
    #[test]
    fn a_kept_buffer_is_empty_when_lent_and_given_back_when_large() {
        with(&BUFFER, |b| b.push_str("left behind"));
        assert!(with(&BUFFER, |b| b.is_empty()));
        with(&BUFFER, |b| b.push_str("small"));
        assert!(BUFFER.with_borrow(String::capacity) > 0, "kept");
        with(&BUFFER, |b| b.push_str(&"x".repeat(LIMIT + 1)));
        assert_eq!(BUFFER.with_borrow(String::capacity), 0, "given back");
    }

    /// A lent buffer is empty, the thread keeps none while it is out, and it comes back unless
    /// it grew too large.
    #[test]
    fn a_lent_buffer_comes_back_unless_large() {
        with(&BUFFER, |b| b.push_str("left behind"));
        let mut lent = lend(&BUFFER);
        assert!(lent.is_empty() && lent.capacity() > 0);
        assert_eq!(BUFFER.with_borrow(String::capacity), 0, "out");
        lent.push_str("used");
        give_back(&BUFFER, lent);
        assert!(BUFFER.with_borrow(String::capacity) > 0, "back");
        let mut lent = lend(&BUFFER);
        lent.push_str(&"x".repeat(LIMIT + 1));
        give_back(&BUFFER, lent);
        assert_eq!(BUFFER.with_borrow(String::capacity), 0, "too large to keep");
    }
}

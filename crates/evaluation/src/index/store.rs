//! Copy-on-write containers behind the index: chunked vectors, sharded hash
//! tables and handle sets. Cloning any of them copies one pointer; the first
//! write after a clone copies only the chunk or shard it touches.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use workteams_domain::text::fold;

/// Entries per chunk of a [`ChunkedVec`]: large enough that cloning the
/// chunk list stays cheap, small enough that copying one chunk on write is.
const CHUNK_BITS: u32 = 9;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;

/// Shards of a [`HashIndex`].
const INDEX_SHARD_BITS: u32 = 8;
const INDEX_SHARDS: usize = 1 << INDEX_SHARD_BITS;

/// A [`HandleSet`] keeps up to this many handles in a plain array.
const SMALL_SET_MAX: usize = 16;
/// A large [`HandleSet`] doubles its shards when they hold this many
/// handles on average...
const SET_SHARD_TARGET: usize = 1_024;
/// ...up to this many shards.
const SET_SHARDS_MAX: usize = 256;

/// Fixed seed, so hashes are the same in every clone and every process.
const HASH_SEED: u64 = 0x5745_5441_4d53_0001;

pub(crate) fn hash_of<T: std::hash::Hash>(value: T) -> u64 {
    FixedState::with_seed(HASH_SEED).hash_one(value)
}

/// Picks a shard from bits that hashbrown uses for neither the bucket index
/// (low bits) nor the control byte (top seven bits).
const fn shard_of(hash: u64, bits: u32) -> usize {
    ((hash >> 32) as usize) & ((1 << bits) - 1)
}

/// Returns `text` folded for case-insensitive comparison, borrowing when it
/// is plain lowercase ASCII already.
pub(crate) fn folded(text: &str) -> Cow<'_, str> {
    if text
        .bytes()
        .any(|byte| byte.is_ascii_uppercase() || !byte.is_ascii())
    {
        Cow::Owned(fold(text))
    } else {
        Cow::Borrowed(text)
    }
}

/// Converts an instant to nanoseconds since the Unix epoch, clamped below
/// [`NEVER`] so that "no expiry" stays later than every instant.
///
/// NOTE: instants outside 1677..2262 clamp to the nearest bound, so two such
/// instants on the same side compare equal.
pub(crate) fn instant(time: DateTime<Utc>) -> i64 {
    let nanos = time
        .timestamp_nanos_opt()
        .unwrap_or(if time.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        });
    nanos.min(NEVER - 1)
}

/// The expiry of something that never expires.
pub(crate) const NEVER: i64 = i64::MAX;

pub(crate) fn expiry(time: Option<DateTime<Utc>>) -> i64 {
    time.map_or(NEVER, instant)
}

/// A growable vector addressed by dense `u32` handles, stored in shared
/// chunks.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedVec<T> {
    chunks: Arc<Vec<Arc<Vec<T>>>>,
    len: u32,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self {
            chunks: Arc::new(Vec::new()),
            len: 0,
        }
    }
}

impl<T: Clone> ChunkedVec<T> {
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Returns the entry of `handle`. Handles come only from [`push`](Self::push),
    /// so an out-of-range handle is a bug in the index.
    pub(crate) fn get(&self, handle: u32) -> &T {
        &self.chunks[(handle >> CHUNK_BITS) as usize][(handle & CHUNK_MASK) as usize]
    }

    pub(crate) fn get_mut(&mut self, handle: u32) -> &mut T {
        let chunks = Arc::make_mut(&mut self.chunks);
        let chunk = Arc::make_mut(&mut chunks[(handle >> CHUNK_BITS) as usize]);
        &mut chunk[(handle & CHUNK_MASK) as usize]
    }

    pub(crate) fn push(&mut self, value: T) -> u32 {
        let handle = self.len;
        let chunks = Arc::make_mut(&mut self.chunks);
        if (handle as usize).is_multiple_of(CHUNK_LEN) {
            chunks.push(Arc::new(Vec::with_capacity(CHUNK_LEN)));
        }
        if let Some(last) = chunks.last_mut() {
            Arc::make_mut(last).push(value);
        }
        self.len += 1;
        handle
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .zip(0_u32..)
            .map(|(value, handle)| (handle, value))
    }
}

/// A multimap from 64-bit hashes to handles, split into shared shards. The
/// table stores only handles: the caller confirms a candidate against the
/// entity it names, and recomputes an entry's hash from that entity when a
/// shard grows.
#[derive(Debug, Clone)]
pub(crate) struct HashIndex {
    shards: Arc<Vec<Arc<HashTable<u32>>>>,
}

impl Default for HashIndex {
    fn default() -> Self {
        Self {
            shards: Arc::new(
                (0..INDEX_SHARDS)
                    .map(|_| Arc::new(HashTable::new()))
                    .collect(),
            ),
        }
    }
}

impl HashIndex {
    /// Returns the first handle stored under `hash` that `matches` accepts.
    pub(crate) fn find(&self, hash: u64, mut matches: impl FnMut(u32) -> bool) -> Option<u32> {
        self.shards[shard_of(hash, INDEX_SHARD_BITS)]
            .find(hash, |handle| matches(*handle))
            .copied()
    }

    /// Stores `handle` under `hash`; `hash_of_handle` recomputes the hash of
    /// any stored handle when the shard grows.
    pub(crate) fn insert(&mut self, hash: u64, handle: u32, hash_of_handle: impl Fn(u32) -> u64) {
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[shard_of(hash, INDEX_SHARD_BITS)]);
        shard.insert_unique(hash, handle, |stored| hash_of_handle(*stored));
    }

    /// Removes `handle` from under `hash`, if it is there.
    pub(crate) fn remove(&mut self, hash: u64, handle: u32) {
        let index = shard_of(hash, INDEX_SHARD_BITS);
        if self.shards[index]
            .find(hash, |stored| *stored == handle)
            .is_none()
        {
            return;
        }
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[index]);
        if let Ok(entry) = shard.find_entry(hash, |stored| *stored == handle) {
            entry.remove();
        }
    }
}

/// A set of handles: empty, a small shared array, or shared hash shards
/// once it grows past [`SMALL_SET_MAX`]. Shards double in number as the set
/// grows, so adding one member to a team of 100,000 copies one shard of at
/// most about [`SET_SHARD_TARGET`] handles rather than the whole set.
#[derive(Debug, Clone, Default)]
pub(crate) enum HandleSet {
    #[default]
    Empty,
    Small(Arc<[u32]>),
    Large(Arc<LargeSet>),
}

#[derive(Debug, Clone)]
pub(crate) struct LargeSet {
    /// A power of two in number.
    shards: Vec<Arc<HashTable<u32>>>,
    len: usize,
}

fn hash_handle(handle: u32) -> u64 {
    hash_of(handle)
}

impl LargeSet {
    fn with_shards(count: usize, handles: impl Iterator<Item = u32>) -> Self {
        let mut tables: Vec<HashTable<u32>> = (0..count).map(|_| HashTable::new()).collect();
        let mut len = 0;
        for handle in handles {
            let hash = hash_handle(handle);
            tables[Self::shard_index(count, hash)]
                .insert_unique(hash, handle, |stored| hash_handle(*stored));
            len += 1;
        }
        Self {
            shards: tables.into_iter().map(Arc::new).collect(),
            len,
        }
    }

    fn shard_index(count: usize, hash: u64) -> usize {
        ((hash >> 32) as usize) & (count - 1)
    }

    fn contains(&self, handle: u32) -> bool {
        let hash = hash_handle(handle);
        self.shards[Self::shard_index(self.shards.len(), hash)]
            .find(hash, |stored| *stored == handle)
            .is_some()
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.shards.iter().flat_map(|shard| shard.iter().copied())
    }

    fn insert(&mut self, handle: u32) {
        if self.len >= self.shards.len() * SET_SHARD_TARGET && self.shards.len() < SET_SHARDS_MAX {
            *self = Self::with_shards(
                self.shards.len() * 2,
                self.iter().collect::<Vec<_>>().into_iter(),
            );
        }
        let hash = hash_handle(handle);
        let index = Self::shard_index(self.shards.len(), hash);
        Arc::make_mut(&mut self.shards[index])
            .insert_unique(hash, handle, |stored| hash_handle(*stored));
        self.len += 1;
    }

    fn remove(&mut self, handle: u32) {
        let hash = hash_handle(handle);
        let index = Self::shard_index(self.shards.len(), hash);
        if let Ok(entry) =
            Arc::make_mut(&mut self.shards[index]).find_entry(hash, |stored| *stored == handle)
        {
            entry.remove();
            self.len -= 1;
        }
    }
}

impl HandleSet {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Small(handles) => handles.len(),
            Self::Large(set) => set.len,
        }
    }

    pub(crate) fn contains(&self, handle: u32) -> bool {
        match self {
            Self::Empty => false,
            Self::Small(handles) => handles.contains(&handle),
            Self::Large(set) => set.contains(handle),
        }
    }

    /// Adds `handle`; returns whether it was missing.
    pub(crate) fn insert(&mut self, handle: u32) -> bool {
        if self.contains(handle) {
            return false;
        }
        match self {
            Self::Empty => *self = Self::Small(Arc::from([handle])),
            Self::Small(handles) if handles.len() < SMALL_SET_MAX => {
                let mut grown = handles.to_vec();
                grown.push(handle);
                *handles = Arc::from(grown);
            }
            Self::Small(handles) => {
                let set = LargeSet::with_shards(1, handles.iter().copied().chain([handle]));
                *self = Self::Large(Arc::new(set));
            }
            Self::Large(set) => Arc::make_mut(set).insert(handle),
        }
        true
    }

    /// Removes `handle`; returns whether it was present.
    pub(crate) fn remove(&mut self, handle: u32) -> bool {
        if !self.contains(handle) {
            return false;
        }
        match self {
            Self::Empty => {}
            Self::Small(handles) => {
                let remaining: Vec<u32> = handles
                    .iter()
                    .copied()
                    .filter(|stored| *stored != handle)
                    .collect();
                *self = if remaining.is_empty() {
                    Self::Empty
                } else {
                    Self::Small(Arc::from(remaining))
                };
            }
            Self::Large(set) => {
                let set = Arc::make_mut(set);
                set.remove(handle);
                if set.len == 0 {
                    *self = Self::Empty;
                }
            }
        }
        true
    }

    pub(crate) fn for_each(&self, mut visit: impl FnMut(u32)) {
        match self {
            Self::Empty => {}
            Self::Small(handles) => handles.iter().copied().for_each(visit),
            Self::Large(set) => set.iter().for_each(&mut visit),
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<u32> {
        let mut handles = Vec::with_capacity(self.len());
        self.for_each(|handle| handles.push(handle));
        handles
    }
}

/// Strings addressed by handle, stored back to back in shared chunks: an
/// entity needs no allocation of its own for them, and copying a chunk on
/// write copies one buffer instead of hundreds of strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct StringArena {
    chunks: Arc<Vec<Arc<StringChunk>>>,
}

#[derive(Debug, Clone, Default)]
struct StringChunk {
    text: String,
    /// Byte offset and length in `text`, by position in the chunk.
    spans: Vec<(u32, u32)>,
    /// Bytes of `text` that no span refers to any more.
    dead_bytes: usize,
}

impl StringChunk {
    fn get(&self, position: usize) -> &str {
        let Some((offset, len)) = self.spans.get(position) else {
            return "";
        };
        let start = *offset as usize;
        self.text.get(start..start + *len as usize).unwrap_or("")
    }

    /// Rewrites `text` without the dead bytes.
    fn compact(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.dead_bytes);
        for span in &mut self.spans {
            let start = span.0 as usize;
            let value = self.text.get(start..start + span.1 as usize).unwrap_or("");
            span.0 = text.len() as u32;
            text.push_str(value);
        }
        self.text = text;
        self.dead_bytes = 0;
    }
}

impl StringArena {
    /// Returns the string of `handle`, or an empty string when none was set.
    pub(crate) fn get(&self, handle: u32) -> &str {
        self.chunks
            .get((handle >> CHUNK_BITS) as usize)
            .map_or("", |chunk| chunk.get((handle & CHUNK_MASK) as usize))
    }

    pub(crate) fn set(&mut self, handle: u32, value: &str) {
        if self.get(handle) == value {
            return;
        }
        let chunk_index = (handle >> CHUNK_BITS) as usize;
        let position = (handle & CHUNK_MASK) as usize;
        let chunks = Arc::make_mut(&mut self.chunks);
        if chunks.len() <= chunk_index {
            chunks.resize_with(chunk_index + 1, Arc::default);
        }
        let chunk = Arc::make_mut(&mut chunks[chunk_index]);
        if chunk.spans.len() <= position {
            chunk.spans.resize(position + 1, (0, 0));
        }

        chunk.dead_bytes += chunk.spans[position].1 as usize;
        chunk.spans[position] = (chunk.text.len() as u32, value.len() as u32);
        chunk.text.push_str(value);
        if chunk.dead_bytes > 4_096 && chunk.dead_bytes * 2 > chunk.text.len() {
            chunk.compact();
        }
    }
}

/// The children of each parent handle, kept only for parents that have
/// children, in shared shards.
#[derive(Debug, Clone)]
pub(crate) struct ChildMap {
    shards: Arc<Vec<Arc<HashMap<u32, HandleSet, FixedState>>>>,
}

impl Default for ChildMap {
    fn default() -> Self {
        Self {
            shards: Arc::new((0..INDEX_SHARDS).map(|_| Arc::default()).collect()),
        }
    }
}

impl ChildMap {
    fn shard(parent: u32) -> usize {
        shard_of(hash_handle(parent), INDEX_SHARD_BITS)
    }

    pub(crate) fn insert(&mut self, parent: u32, child: u32) {
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[Self::shard(parent)]);
        shard.entry(parent).or_default().insert(child);
    }

    pub(crate) fn remove(&mut self, parent: u32, child: u32) {
        let index = Self::shard(parent);
        if !self.shards[index]
            .get(&parent)
            .is_some_and(|children| children.contains(child))
        {
            return;
        }
        let shards = Arc::make_mut(&mut self.shards);
        let shard = Arc::make_mut(&mut shards[index]);
        if let Some(children) = shard.get_mut(&parent) {
            children.remove(child);
            if children.len() == 0 {
                shard.remove(&parent);
            }
        }
    }

    pub(crate) fn for_each(&self, parent: u32, visit: impl FnMut(u32)) {
        if let Some(children) = self.shards[Self::shard(parent)].get(&parent) {
            children.for_each(visit);
        }
    }
}

/// A small list shared between clones and replaced as a whole when it
/// changes, such as an organization's resolved defaults.
#[derive(Debug, Clone)]
pub(crate) struct SmallList<T>(Option<Arc<[T]>>);

impl<T> Default for SmallList<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Clone> SmallList<T> {
    pub(crate) fn from_vec(items: Vec<T>) -> Self {
        if items.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::from(items)))
        }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        self.0.as_deref().unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_vec_clone_is_independent() {
        let mut original = ChunkedVec::default();
        for value in 0..2_000_u32 {
            original.push(value);
        }
        let mut copy = original.clone();
        *copy.get_mut(1_500) = 7;
        assert_eq!(*original.get(1_500), 1_500);
        assert_eq!(*copy.get(1_500), 7);
    }

    #[test]
    fn chunked_vec_iterates_with_handles() {
        let mut values = ChunkedVec::default();
        for value in 0..1_100_u32 {
            values.push(value * 2);
        }
        assert!(values.iter().all(|(handle, value)| *value == handle * 2));
        assert_eq!(values.iter().count(), 1_100);
    }

    #[test]
    fn hash_index_keeps_colliding_handles() {
        let mut index = HashIndex::default();
        index.insert(42, 1, |_| 42);
        index.insert(42, 2, |_| 42);
        assert_eq!(index.find(42, |handle| handle == 2), Some(2));
        index.remove(42, 1);
        assert_eq!(index.find(42, |_| true), Some(2));
    }

    #[test]
    fn hash_index_survives_growth() {
        let mut index = HashIndex::default();
        for handle in 0..50_000_u32 {
            index.insert(hash_of(handle), handle, hash_of);
        }
        assert!(
            (0..50_000_u32).all(
                |handle| index.find(hash_of(handle), |stored| stored == handle) == Some(handle)
            )
        );
    }

    #[test]
    fn handle_set_grows_and_shrinks() {
        let mut set = HandleSet::default();
        for handle in 0..5_000 {
            assert!(set.insert(handle));
        }
        assert!(!set.insert(5));
        assert_eq!(set.len(), 5_000);
        assert_eq!(set.to_vec().len(), 5_000);
        let copy = set.clone();
        for handle in 0..5_000 {
            assert!(set.remove(handle));
        }
        assert_eq!(set.len(), 0);
        assert!(matches!(set, HandleSet::Empty));
        assert_eq!(copy.len(), 5_000);
        assert!(copy.contains(4_999));
    }

    #[test]
    fn string_arena_replaces_and_compacts() {
        let mut arena = StringArena::default();
        for round in 0..20 {
            for handle in 0..1_000_u32 {
                arena.set(
                    handle,
                    &format!("value-{handle}-{round}-{}", "x".repeat(50)),
                );
            }
        }
        assert!(arena.get(999).starts_with("value-999-19-"));
        assert_eq!(arena.get(5_000), "");
        assert!(
            arena
                .chunks
                .iter()
                .all(|chunk| chunk.dead_bytes * 2 <= chunk.text.len().max(8_192))
        );
    }

    #[test]
    fn child_map_forgets_empty_parents() {
        let mut children = ChildMap::default();
        children.insert(1, 2);
        children.insert(1, 3);
        children.remove(1, 2);
        children.remove(1, 3);
        let mut seen = Vec::new();
        children.for_each(1, |child| seen.push(child));
        assert!(seen.is_empty());
        assert!(children.shards.iter().all(|shard| shard.is_empty()));
    }

    #[test]
    fn instants_order_before_never() {
        let far_future = DateTime::<Utc>::MAX_UTC;
        assert!(instant(far_future) < NEVER);
        assert!(instant(DateTime::<Utc>::MIN_UTC) < instant(Utc::now()));
    }
}

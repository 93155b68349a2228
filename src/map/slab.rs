//! A shard's entry cells: nodes live in chunks the shard allocates, not in
//! one heap block each (a `Box` per entry costs an allocator header and a
//! call to `malloc` and `free` per entry).
//!
//! Touched only under the shard lock (or with `&mut`). A cell's address
//! never changes while it holds a node; chunks are freed only with the
//! slab (when the shard is dropped).
//!
//! # Reuse (no ABA)
//!
//! A freed cell is reused by a later insert, which writes a new key and
//! value where a reader may once have found the old ones. A cell is freed
//! only from a raised grave (or in the map's drop, when no reader exists).
//! A grave is sealed only after its node is unreachable from every table a
//! reader can still reach from the shard (removed or replaced, and, during
//! growth, the old table unlinked too: `grave.rs`), and its ticket rises
//! only after every thread pinned at sealing has unpinned. A reader holding
//! the node (or a `&K`/`&V` in it) pinned before it became unreachable, so
//! it was pinned at sealing and the ticket waits for it; a reader pinned
//! later cannot find the node. So no reader holding the old node's address
//! is left when the cell is reused: it never sees the new contents as its
//! key's value, and a writer's "same slot, same node pointer" validation
//! (`commit`, under its own pin) cannot be fooled by a reused address.

use alloc::alloc::{alloc, dealloc, handle_alloc_error};
use alloc::vec::Vec;
use core::alloc::Layout;
use core::mem::{size_of, ManuallyDrop};
use core::ptr;

use super::raw::Node;

/// One cell: a node, or (while free) the next free cell.
#[repr(C)]
union Cell<K, V> {
    node: ManuallyDrop<Node<K, V>>,
    next: *mut Cell<K, V>,
}

/// Cells of the first chunk.
const FIRST: usize = 8;

/// A chunk's largest size in bytes (its cell count doubles up to this):
/// bounds the unused tail of the newest chunk (one per shard), while the
/// per-chunk costs (an allocator header, a `chunks` entry) stay below a
/// percent.
const CHUNK_BYTES: usize = 8 * 1024;

/// A shard's node cells.
pub(super) struct Slab<K, V> {
    /// Every chunk and its cell count.
    chunks: Vec<(*mut Cell<K, V>, usize)>,
    /// Cells of the newest chunk handed out so far.
    used: usize,
    /// Cells in all chunks.
    cells: usize,
    /// Freed cells, linked through `next`.
    free: *mut Cell<K, V>,
}

// SAFETY: the slab owns its chunks; the nodes in them are `K` and `V`,
// sent with the shard (the shard's `Sync` requires `K`, `V`: `Send + Sync`).
unsafe impl<K: Send, V: Send> Send for Slab<K, V> {}

impl<K, V> Slab<K, V> {
    pub(super) const fn new() -> Self {
        Self {
            chunks: Vec::new(),
            used: 0,
            cells: 0,
            free: ptr::null_mut(),
        }
    }

    /// Moves `node` into a cell and returns its (stable) address. Aborts
    /// if memory runs out, as `Box::new` does.
    #[inline]
    pub(super) fn alloc(&mut self, node: Node<K, V>) -> *mut Node<K, V> {
        let cell = if !self.free.is_null() {
            let cell = self.free;
            // SAFETY: a free cell holds its successor (written by `free`),
            // in a live chunk.
            self.free = unsafe { ptr::addr_of!((*cell).next).read() };
            cell
        } else {
            match self.chunks.last() {
                Some(&(chunk, len)) if self.used < len => {
                    self.used += 1;
                    // SAFETY: `used - 1 < len`: inside the chunk.
                    unsafe { chunk.add(self.used - 1) }
                }
                _ => self.grow(),
            }
        };
        let node_ptr = cell.cast::<Node<K, V>>();
        // SAFETY: the cell is ours (free or never used) and sized and
        // aligned for a node (`repr(C)` union: the node at offset 0).
        unsafe { node_ptr.write(node) };
        node_ptr
    }

    /// Adds a chunk and hands out its first cell.
    #[cold]
    fn grow(&mut self) -> *mut Cell<K, V> {
        let max = (CHUNK_BYTES / size_of::<Cell<K, V>>()).max(1);
        let len = self.cells.max(FIRST).min(max);
        let layout = Layout::array::<Cell<K, V>>(len).unwrap_or_else(|_| {
            // A single cell's layout is valid (it is a type's).
            Layout::new::<Cell<K, V>>()
        });
        // SAFETY: `layout` has a non-zero size (a cell holds a pointer).
        let chunk = unsafe { alloc(layout) }.cast::<Cell<K, V>>();
        if chunk.is_null() {
            handle_alloc_error(layout);
        }
        let len = layout.size() / size_of::<Cell<K, V>>();
        self.chunks.push((chunk, len));
        self.cells += len;
        self.used = 1;
        chunk
    }

    /// Takes back the cell of `node`, whose key and value were dropped (or
    /// moved out) already.
    ///
    /// # Safety
    ///
    /// `node` came from this slab's `alloc`, is freed once, and no reader
    /// can reach it any more (its grave was raised).
    #[inline]
    pub(super) unsafe fn free(&mut self, node: *mut Node<K, V>) {
        let cell = node.cast::<Cell<K, V>>();
        // SAFETY: the caller's contract: the cell is ours again.
        unsafe { ptr::addr_of_mut!((*cell).next).write(self.free) };
        self.free = cell;
    }
}

#[cfg(test)]
impl<K, V> Slab<K, V> {
    /// Cells in all chunks, free or not.
    pub(super) fn cells(&self) -> usize {
        self.cells
    }
}

impl<K, V> Drop for Slab<K, V> {
    fn drop(&mut self) {
        // Every node in the chunks was dropped already (their tables and
        // graves did it); only the memory is left.
        for &(chunk, len) in &self.chunks {
            // SAFETY: allocated in `grow` with this layout.
            unsafe {
                dealloc(
                    chunk.cast::<u8>(),
                    Layout::array::<Cell<K, V>>(len)
                        .unwrap_or_else(|_| Layout::new::<Cell<K, V>>()),
                );
            }
        }
    }
}

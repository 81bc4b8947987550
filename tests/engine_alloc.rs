//! Capturing nothing costs nothing: a forward pass with an empty hook set allocates exactly what a plain forward pass
//! allocates, and capturing a tensor adds about that tensor's bytes, not more (a counting global allocator).

use attn::hooks::{HookPoint, Hooks};
use attn::model::{self, Model, TextbookConfig};
use attn::trace::ForwardOptions;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes allocated by one forward pass (the median of five, to step over a rare allocation by the thread pool).
fn bytes_of(m: &dyn Model, enc: &attn::tokenize::Encoded, opts: &ForwardOptions) -> usize {
    let mut runs: Vec<usize> = (0..5)
        .map(|_| {
            let before = BYTES.load(Ordering::SeqCst);
            let t = m.forward(enc, opts).unwrap();
            let after = BYTES.load(Ordering::SeqCst);
            drop(t);
            after - before
        })
        .collect();
    runs.sort_unstable();
    runs[2]
}

#[test]
fn an_empty_hook_set_allocates_nothing_extra() {
    let m = model::load(
        "textbook",
        &TextbookConfig {
            layers: 2,
            heads: 4,
            d_model: 64,
            d_ff: 128,
            ..Default::default()
        },
    )
    .unwrap();
    let enc = m
        .tokenizer()
        .encode("the cat sat on the mat", None)
        .unwrap();
    let n = enc.ids.len();
    let plain = ForwardOptions::default();
    // Warm up the thread pool and lazy statics.
    bytes_of(m.as_ref(), &enc, &plain);
    let base = bytes_of(m.as_ref(), &enc, &plain);
    let empty = ForwardOptions {
        hooks: Hooks::default(),
        ..Default::default()
    };
    assert_eq!(
        bytes_of(m.as_ref(), &enc, &empty),
        base,
        "an empty hook set must cost nothing"
    );
    // A hook on a layer the model does not have costs nothing either (nothing is materialised).
    let mut elsewhere = ForwardOptions::default();
    elsewhere.hooks.capture.insert((HookPoint::AttnQ, 99));
    assert_eq!(bytes_of(m.as_ref(), &enc, &elsewhere), base);
    // Capturing q at one layer costs about q's bytes: [4 heads, n, 16] f32 plus one map node (under 2 KiB).
    let mut one = ForwardOptions::default();
    one.hooks.capture.insert((HookPoint::AttnQ, 1));
    let extra = bytes_of(m.as_ref(), &enc, &one) - base;
    let q_bytes = 4 * n * 16 * 4;
    assert!(
        extra >= q_bytes && extra <= q_bytes + 2048,
        "capturing q cost {extra} bytes; q is {q_bytes}"
    );
}

//! What this CPU can run, checked once: the kernels pick their AVX2 + FMA versions by it.

/// Whether the CPU has AVX2 and FMA (x86-64; checked on the first call, remembered after).
#[cfg(target_arch = "x86_64")]
pub fn avx2_fma() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

/// `f()` run on a thread of the rayon pool while the caller waits. A forward pass alternates short serial work with
/// many parallel products; run from outside the pool, each of those would wake the pool's threads and put the caller
/// to sleep (at a few tokens, 40% of a SmolLM2 forward went to that scheduling). Inside the pool, `f` runs in place.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

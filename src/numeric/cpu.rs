//! What this CPU can run, checked once: the kernels pick their AVX2 + FMA versions by it.

/// Whether the CPU has AVX2 and FMA (x86-64; checked on the first call, remembered after).
#[cfg(target_arch = "x86_64")]
pub fn avx2_fma() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

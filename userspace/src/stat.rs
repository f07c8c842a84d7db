//! Metadata backends: the `dirsync_stat` system call, or `statx`.

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// The syscall when the running kernel is verified to have it, else statx.
    #[default]
    Auto,
    /// The syscall; an error when the kernel lacks it.
    Syscall,
    /// Always statx.
    Statx,
}

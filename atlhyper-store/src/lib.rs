//! atlhyper-store (in progress).

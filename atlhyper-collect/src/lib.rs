//! atlhyper-collect (in progress).

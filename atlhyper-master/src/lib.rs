//! atlhyper-master (in progress).

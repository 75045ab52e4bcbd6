//! atlhyper-agent (in progress).

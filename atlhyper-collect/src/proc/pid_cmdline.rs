//! `/proc/[pid]/cmdline`: arguments separated (and usually terminated) by NUL. Empty for kernel
//! threads and zombies. A process may overwrite it with anything, so it is taken as bytes.

/// The arguments, without the empty piece after the final NUL.
pub fn args(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let trimmed = match bytes.iter().rposition(|&b| b != 0) {
        Some(last) => &bytes[..=last],
        None => &bytes[..0],
    };
    trimmed.split(|&b| b == 0).filter(|_| !trimmed.is_empty())
}

/// Longest command line the collector reports, bytes of UTF-8: longer ones are cut at the last
/// character boundary at or below it. A process's arguments can reach `ARG_MAX` (2 MiB and more);
/// the agent and master cut the field at the same bound ([`atlhyper_model::SnapshotBounds`]).
pub use atlhyper_model::MAX_CMDLINE_BYTES;

/// Appends the arguments to `out` separated by single spaces (invalid UTF-8 replaced), as `ps`
/// shows them, at most [`MAX_CMDLINE_BYTES`] bytes of them (cut on a character boundary).
pub fn append_display(bytes: &[u8], out: &mut String) {
    let start = out.len();
    for (i, arg) in args(bytes).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let room = MAX_CMDLINE_BYTES.saturating_sub(out.len() - start);
        // Decode no more than can be kept: every input byte gives at least one output byte, and
        // a character cut at `room + 4` starts past `room`, so the kept part decodes the same.
        let arg = arg.get(..room.saturating_add(4)).unwrap_or(arg);
        out.push_str(&String::from_utf8_lossy(arg));
        if out.len() - start >= MAX_CMDLINE_BYTES {
            let keep = out[start..].floor_char_boundary(MAX_CMDLINE_BYTES);
            out.truncate(start + keep);
            break;
        }
    }
}

/// The command line as one string (see [`append_display`]), at most [`MAX_CMDLINE_BYTES`] long.
pub fn to_display(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().min(MAX_CMDLINE_BYTES));
    append_display(bytes, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_nul() {
        assert_eq!(to_display(b"/bin/sleep\x00100\x00"), "/bin/sleep 100");
        assert_eq!(
            to_display(b"nginx: worker process\x00\x00\x00"),
            "nginx: worker process"
        );
        assert_eq!(to_display(b"a\x00\x00b\x00"), "a  b");
        assert_eq!(to_display(b""), "");
        assert_eq!(to_display(b"\x00\x00"), "");
        assert_eq!(to_display(b"\xff\x00x"), "\u{fffd} x");
        assert_eq!(args(b"a\x00b").count(), 2);
        assert_eq!(args(b"").count(), 0);
    }

    #[test]
    fn truncates_at_the_limit_on_a_char_boundary() {
        // ASCII: exactly the limit.
        let long = vec![b'a'; 10_000];
        assert_eq!(to_display(&long), "a".repeat(MAX_CMDLINE_BYTES));
        // Exactly the limit and one below are kept whole.
        let exact = vec![b'b'; MAX_CMDLINE_BYTES];
        assert_eq!(to_display(&exact).len(), MAX_CMDLINE_BYTES);
        // A 3-byte character straddling the limit is dropped whole, never split.
        let mut mixed = vec![b'x'; MAX_CMDLINE_BYTES - 1];
        mixed.extend_from_slice("€€".as_bytes());
        let shown = to_display(&mixed);
        assert_eq!(shown.len(), MAX_CMDLINE_BYTES - 1);
        assert!(shown.bytes().all(|b| b == b'x'));
        // Many arguments: separators count, and the cut lands inside a later argument.
        let mut many = Vec::new();
        for _ in 0..3000 {
            many.extend_from_slice(b"ab\x00");
        }
        let shown = to_display(&many);
        assert_eq!(shown.len(), MAX_CMDLINE_BYTES);
        assert!(shown.starts_with("ab ab "));
        // Invalid bytes become U+FFFD (3 bytes each) and the limit holds on the output.
        let bad = vec![0xffu8; 3000];
        let shown = to_display(&bad);
        assert!(shown.len() <= MAX_CMDLINE_BYTES && shown.len() > MAX_CMDLINE_BYTES - 3);
        assert!(shown.chars().all(|c| c == '\u{fffd}'));
        // append_display limits what it appends, not what was there.
        let mut out = String::from("prefix ");
        append_display(&long, &mut out);
        assert_eq!(out.len(), "prefix ".len() + MAX_CMDLINE_BYTES);
    }
}

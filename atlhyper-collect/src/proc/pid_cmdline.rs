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

/// Appends the arguments to `out` separated by single spaces (invalid UTF-8 replaced), as `ps`
/// shows them.
pub fn append_display(bytes: &[u8], out: &mut String) {
    for (i, arg) in args(bytes).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&String::from_utf8_lossy(arg));
    }
}

/// The command line as one string (see [`append_display`]).
pub fn to_display(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
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
}

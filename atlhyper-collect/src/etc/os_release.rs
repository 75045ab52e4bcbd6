//! `/etc/os-release` (or `/usr/lib/os-release`) of the host: `PRETTY_NAME`.

/// Every `KEY=value` line with the value unquoted; comments and other lines are skipped.
pub fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|line| {
        let (k, v) = line.split_once('=')?;
        let k = k.trim();
        if k.is_empty() || k.starts_with('#') {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .unwrap_or(v);
        Some((k, v))
    })
}

/// The unquoted `PRETTY_NAME` value, falling back to `NAME`.
pub fn pretty_name(text: &str) -> Option<&str> {
    let mut name = None;
    for (k, v) in fields(text) {
        match k {
            "PRETTY_NAME" if !v.is_empty() => return Some(v),
            "NAME" if !v.is_empty() => name = Some(v),
            _ => {}
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_name_or_name() {
        assert_eq!(
            pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=Alpine\n"), Some("Alpine"));
        assert_eq!(pretty_name("PRETTY_NAME=''\nNAME='x'\n"), Some("x"));
        assert_eq!(pretty_name("garbage"), None);
    }

    #[test]
    fn fields_are_unquoted_and_comments_skipped() {
        let f: Vec<_> = fields("# c=1\nID=debian\nVERSION_ID=\"12\"\nx\n=y\n").collect();
        assert_eq!(f, [("ID", "debian"), ("VERSION_ID", "12")]);
    }
}

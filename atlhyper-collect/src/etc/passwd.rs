//! `/etc/passwd` of the host (under the host root), for user names of uids.

/// Iterates over `(name, uid)` of well-formed entries; comments, blank and malformed lines (and
/// NIS `+`/`-` lines) are skipped, as libc does.
pub fn entries(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|line| {
        if line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        let mut it = line.split(':');
        let name = it.next().filter(|n| !n.is_empty())?;
        let _password = it.next()?;
        let uid = crate::num::parse_u64(it.next()?).and_then(|v| u32::try_from(v).ok())?;
        Some((name, uid))
    })
}

/// The first user name with `uid`.
pub fn lookup(text: &str, uid: u32) -> Option<&str> {
    entries(text).find(|&(_, u)| u == uid).map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nbad:x:y:0::/:\n\
daemon:x:1:1::/:/usr/sbin/nologin\nalias:x:0:0::/:\n";
        assert_eq!(lookup(text, 0), Some("root"));
        assert_eq!(lookup(text, 1), Some("daemon"));
        assert_eq!(lookup(text, 2), None);
        assert_eq!(entries(text).count(), 3);
        assert_eq!(lookup("", 0), None);
    }
}

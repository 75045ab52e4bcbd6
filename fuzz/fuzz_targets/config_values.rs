#![no_main]
//! Fuzz target: the parsers of configuration text (environment variables and flags): the
//! agent's and the master's durations, the master's agent-token map and token lists, and the
//! DNS-1123 node-name rule the agent applies to every pushed snapshot.

use atlhyper_agent::{parse_duration as agent_duration, validate_node_name};
use atlhyper_master::{parse_agent_tokens, parse_duration as master_duration, parse_token_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = agent_duration(text);
    let _ = master_duration(text);
    if let Ok(tokens) = parse_agent_tokens(text) {
        for (token, cluster) in &tokens {
            assert!(
                !token.is_empty() && !cluster.is_empty(),
                "empty token or cluster accepted"
            );
        }
    }
    for token in parse_token_list(text) {
        assert!(!token.is_empty(), "empty token in the list");
        assert_eq!(token.trim(), token, "token keeps surrounding whitespace");
    }
    if validate_node_name(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= 253, "bad length accepted");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
            "character outside DNS-1123 accepted"
        );
    }
});

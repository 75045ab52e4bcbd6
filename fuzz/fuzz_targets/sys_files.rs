#![no_main]
//! Fuzz target: sys_files. Must never panic on any input.

use atlhyper_collect::sys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The one-value /sys files and the hwmon name rules.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sys::cpufreq::parse_cur_freq_mhz(text);
        let _ = sys::hwmon::temp_attr(text);
        if let Ok(c) = sys::hwmon::parse_millidegrees(text) {
            let _ = sys::hwmon::plausible(c);
        }
        let (chip, label) = text.split_once('\n').unwrap_or((text, ""));
        let _ = sys::hwmon::cpu_sensor_rank(chip, label);
        let _ = sys::net_class::parse_operstate(text);
        let _ = sys::net_class::parse_speed(text);
        let _ = sys::net_class::parse_address(text);
        let _ = sys::net_class::parse_mtu(text);
        let _ = sys::thermal::parse_temp(text);
        let _ = sys::thermal::is_cpu_zone(text);
    }
});

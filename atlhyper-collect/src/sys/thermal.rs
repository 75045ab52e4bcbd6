//! `/sys/class/thermal/thermal_zone*`: `type` and `temp` (millidegrees Celsius). Used only when
//! hwmon gives no reading.

use crate::error::ParseResult;

/// Parses a zone's `temp` file into degrees Celsius.
pub fn parse_temp(text: &str) -> ParseResult<f64> {
    crate::sys::hwmon::parse_millidegrees(text)
}

/// Zone types that are the CPU (package or SoC) reading on their own: Intel's package sensor
/// (`x86_pkg_temp`), the Raspberry Pi SoC on older kernels (`bcm2835_thermal`; newer ones say
/// `cpu-thermal`) and the generic device-tree names.
pub const CPU_ZONE_TYPES: &[&str] = &[
    "x86_pkg_temp",
    "bcm2835_thermal",
    "cpu-thermal",
    "cpu_thermal",
    "soc_thermal",
    "soc-thermal",
];

/// True when a zone `type` names the CPU or SoC: one of [`CPU_ZONE_TYPES`], or a type starting
/// with `cpu` or `soc` or containing `-cpu`/`_cpu` (`cpu0-thermal`, `mt-cpu`, ...).
pub fn is_cpu_zone(zone_type: &str) -> bool {
    let t = zone_type.trim();
    CPU_ZONE_TYPES.contains(&t)
        || t.starts_with("cpu")
        || t.starts_with("soc")
        || t.contains("-cpu")
        || t.contains("_cpu")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(parse_temp("52000\n").unwrap(), 52.0);
        assert!(parse_temp("n/a").is_err());
        assert!(is_cpu_zone("x86_pkg_temp\n"));
        assert!(is_cpu_zone("cpu-thermal"));
        assert!(is_cpu_zone("soc_thermal"));
        assert!(is_cpu_zone("bcm2835_thermal\n"));
        assert!(!is_cpu_zone("mtktscpu"));
        assert!(!is_cpu_zone("acpitz"));
        assert!(!is_cpu_zone("iwlwifi_1"));
    }
}

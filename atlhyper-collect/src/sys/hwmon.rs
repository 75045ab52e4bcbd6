//! `/sys/class/hwmon/hwmon*`: chip `name` and `temp<N>_{input,max,crit,label}` attribute files
//! (millidegrees Celsius). Older drivers keep the attributes under `hwmon*/device/` instead; the
//! sampler looks in both places, this module only parses the texts.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_i64;

const FILE: &str = "/sys/class/hwmon/*/temp*";

/// Lowest plausible reading, Celsius; anything below is a broken sensor.
pub const MIN_PLAUSIBLE_C: f64 = -40.0;
/// Highest plausible reading, Celsius.
pub const MAX_PLAUSIBLE_C: f64 = 150.0;

/// One temperature attribute kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempAttr {
    /// `tempN_input`: current reading.
    Input,
    /// `tempN_max`: high threshold.
    Max,
    /// `tempN_crit`: critical threshold.
    Crit,
    /// `tempN_label`: sensor label.
    Label,
}

/// Recognises a temperature attribute file name: `temp3_input` -> `(3, Input)`.
pub fn temp_attr(file_name: &str) -> Option<(u32, TempAttr)> {
    let rest = file_name.strip_prefix("temp")?;
    let (idx, attr) = rest.split_once('_')?;
    let idx = crate::num::parse_u64(idx).and_then(|v| u32::try_from(v).ok())?;
    let attr = match attr {
        "input" => TempAttr::Input,
        "max" => TempAttr::Max,
        "crit" => TempAttr::Crit,
        "label" => TempAttr::Label,
        _ => return None,
    };
    Some((idx, attr))
}

/// Parses a millidegree attribute (`45000\n`) into degrees Celsius.
pub fn parse_millidegrees(text: &str) -> ParseResult<f64> {
    let v = parse_i64(text.trim()).ok_or(ParseError::new(
        FILE,
        1,
        ParseErrorKind::BadNumber("millidegrees"),
    ))?;
    Ok(v as f64 / 1000.0)
}

/// True for a reading inside -40..=150 C.
pub fn plausible(celsius: f64) -> bool {
    (MIN_PLAUSIBLE_C..=MAX_PLAUSIBLE_C).contains(&celsius)
}

/// How well a (chip, label) pair represents "the CPU temperature"; higher is better, `None` when it
/// is not a CPU sensor. coretemp `Package id N`, k10temp `Tctl`, zenpower `Tdie`/`Tctl` and
/// cpu/soc thermal chips are recognised; a coretemp core reading is a weaker match.
pub fn cpu_sensor_rank(chip: &str, label: &str) -> Option<u8> {
    match chip {
        "coretemp" if label.starts_with("Package id") => Some(10),
        "coretemp" if label.starts_with("Physical id") => Some(9),
        "k10temp" | "zenpower" if label == "Tctl" || label == "Tdie" => Some(10),
        "k10temp" | "zenpower" if label.is_empty() || label.starts_with("temp") => Some(6),
        "coretemp" => Some(5),
        // Thermal zones bound to hwmon carry the zone type as the chip name ('-' becomes '_').
        "cpu_thermal" | "soc_thermal" | "cpu-thermal" | "soc-thermal" | "x86_pkg_temp"
        | "bcm2835_thermal" => Some(8),
        c if c.starts_with("cpu") || c.starts_with("soc") => Some(4),
        _ => None,
    }
}

/// node_exporter's name of a hwmon chip: `<bus>_<device>` from the resolved path of the chip's
/// `device` link (`/sys/devices/platform/coretemp.0` gives `platform_coretemp_0`), else the
/// chip's `name` file, else the `hwmonN` directory name; each part lower-cased with characters
/// outside `[a-z0-9:_]` made `_` and `_` trimmed at both ends.
pub fn chip_name(device_link: Option<&str>, name_file: Option<&str>, dir: &str) -> String {
    if let Some(link) = device_link {
        let mut parts = link.trim_end_matches('/').rsplit('/');
        let device = clean(parts.next().unwrap_or(""));
        let bus = clean(parts.next().unwrap_or(""));
        match (bus.is_empty(), device.is_empty()) {
            (false, false) => return format!("{bus}_{device}"),
            (true, false) => return device,
            _ => {}
        }
    }
    if let Some(name) = name_file.map(clean).filter(|n| !n.is_empty()) {
        return name;
    }
    clean(dir)
}

/// Lower case, characters outside `[a-z0-9:_]` replaced by `_`, `_` trimmed.
fn clean(s: &str) -> String {
    let lowered: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    lowered.trim_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_as_node_exporter_builds_them() {
        assert_eq!(
            chip_name(
                Some("/sys/devices/platform/coretemp.0"),
                Some("coretemp\n"),
                "hwmon1"
            ),
            "platform_coretemp_0"
        );
        assert_eq!(
            chip_name(
                Some("/sys/devices/pci0000:00/0000:00:1d.0/0000:01:00.0/nvme/nvme0"),
                None,
                "hwmon2"
            ),
            "nvme_nvme0"
        );
        assert_eq!(chip_name(Some("nvme0"), None, "hwmon2"), "nvme0");
        assert_eq!(chip_name(None, Some("acpitz\n"), "hwmon0"), "acpitz");
        assert_eq!(chip_name(None, Some(" \n"), "hwmon0"), "hwmon0");
    }

    #[test]
    fn attrs_and_values() {
        assert_eq!(temp_attr("temp1_input"), Some((1, TempAttr::Input)));
        assert_eq!(temp_attr("temp12_crit"), Some((12, TempAttr::Crit)));
        assert_eq!(temp_attr("temp1_crit_alarm"), None);
        assert_eq!(temp_attr("in0_input"), None);
        assert_eq!(temp_attr("tempx_input"), None);
        assert_eq!(parse_millidegrees("45500\n").unwrap(), 45.5);
        assert_eq!(parse_millidegrees("-2000").unwrap(), -2.0);
        assert!(parse_millidegrees("").is_err());
        assert!(parse_millidegrees("hot").is_err());
        assert!(plausible(45.5) && !plausible(-273.0) && !plausible(255.0));
    }

    #[test]
    fn ranks_cpu_sensors() {
        assert_eq!(cpu_sensor_rank("coretemp", "Package id 0"), Some(10));
        assert!(
            cpu_sensor_rank("coretemp", "Core 0") < cpu_sensor_rank("coretemp", "Package id 0")
        );
        assert_eq!(cpu_sensor_rank("k10temp", "Tctl"), Some(10));
        assert_eq!(cpu_sensor_rank("nvme", "Composite"), None);
        assert_eq!(cpu_sensor_rank("acpitz", "temp1"), None);
        assert_eq!(cpu_sensor_rank("bcm2835_thermal", "temp1"), Some(8));
    }
}

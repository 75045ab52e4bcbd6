//! Temperature: hwmon first (also the legacy `device/` layout), thermal zones only as fallback;
//! implausible readings are dropped. A reading, not a counter: no previous sample.

use atlhyper_model::{SensorReading, TemperatureMetrics};

use crate::sampler::{Base, Sampler};
use crate::sys::{hwmon, thermal};

/// The CPU reading chosen so far: how CPU-like its sensor is, its value and its threshold, °C.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuReading {
    rank: u8,
    current: f64,
    threshold: f64,
}

impl CpuReading {
    /// Whether `self` is a better CPU reading than `best`: a more CPU-like sensor, or as CPU-like
    /// and hotter.
    fn beats(self, best: Option<CpuReading>) -> bool {
        best.is_none_or(|b| self.rank > b.rank || (self.rank == b.rank && self.current > b.current))
    }
}

/// Reads every hwmon temperature input, else the thermal zones, into `cur`. An error when there
/// is no sensor at all.
pub(super) fn sample(s: &mut Sampler, cur: &mut TemperatureMetrics) -> Result<(), String> {
    let mut temps = TemperatureMetrics::default();
    let mut best: Option<CpuReading> = None;
    let hwmons = s
        .list_dir(Base::Sys, &[&"class", &"hwmon"])
        .unwrap_or_default();
    for hw in &hwmons {
        // Attributes directly in hwmonN, or in the legacy hwmonN/device/ directory.
        for sub in ["", "device"] {
            let mut attrs: Vec<(u32, hwmon::TempAttr)> = s
                .list_dir(Base::Sys, &[&"class/hwmon", hw, &sub])
                .unwrap_or_default()
                .iter()
                .filter_map(|n| n.to_str().and_then(hwmon::temp_attr))
                .collect();
            if attrs.is_empty() {
                continue;
            }
            attrs.sort_by_key(|(i, _)| *i);
            let chip = match s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &"name"]) {
                Ok(t) => t.trim().to_owned(),
                Err(_) => hw.to_string_lossy().into_owned(),
            };
            for &(idx, attr) in &attrs {
                if attr != hwmon::TempAttr::Input {
                    continue;
                }
                let read = |s: &mut Sampler, suffix: &str| -> Option<f64> {
                    let f = format!("temp{idx}_{suffix}");
                    s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &f])
                        .ok()
                        .and_then(|t| hwmon::parse_millidegrees(t).ok())
                };
                let Some(current) = read(s, "input") else {
                    continue;
                };
                if !hwmon::plausible(current) {
                    continue;
                }
                let max = read(s, "max")
                    .filter(|v| hwmon::plausible(*v) && *v > 0.0)
                    .unwrap_or(0.0);
                let critical = read(s, "crit")
                    .filter(|v| hwmon::plausible(*v) && *v > 0.0)
                    .unwrap_or(0.0);
                let label_file = format!("temp{idx}_label");
                let label = match s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &label_file]) {
                    Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
                    _ => format!("temp{idx}"),
                };
                if let Some(rank) = hwmon::cpu_sensor_rank(&chip, &label) {
                    let reading = CpuReading {
                        rank,
                        current,
                        threshold: if max > 0.0 { max } else { critical },
                    };
                    if reading.beats(best) {
                        best = Some(reading);
                    }
                }
                temps.sensors.push(SensorReading {
                    name: chip.clone(),
                    label,
                    current,
                    max,
                    critical,
                });
            }
            break;
        }
    }
    // Thermal zones only as fallback: for the sensor list when hwmon has none, and for the CPU
    // reading when hwmon has no CPU sensor.
    if best.is_none() {
        let hwmon_had_sensors = !temps.sensors.is_empty();
        let zones = s
            .list_dir(Base::Sys, &[&"class", &"thermal"])
            .unwrap_or_default();
        for z in zones
            .iter()
            .filter(|z| z.to_string_lossy().starts_with("thermal_zone"))
        {
            let Ok(ty) = s
                .read_text(Base::Sys, &[&"class/thermal", z, &"type"])
                .map(|t| t.trim().to_owned())
            else {
                continue;
            };
            let Ok(Ok(current)) = s
                .read_text(Base::Sys, &[&"class/thermal", z, &"temp"])
                .map(thermal::parse_temp)
            else {
                continue;
            };
            if !hwmon::plausible(current) {
                continue;
            }
            // Zones have no rank among themselves: the hottest CPU zone wins.
            if thermal::is_cpu_zone(&ty) && best.is_none_or(|b| current > b.current) {
                best = Some(CpuReading {
                    rank: 1,
                    current,
                    threshold: 0.0,
                });
            }
            if !hwmon_had_sensors {
                temps.sensors.push(SensorReading {
                    name: ty,
                    label: z.to_string_lossy().into_owned(),
                    current,
                    max: 0.0,
                    critical: 0.0,
                });
            }
        }
    }
    if let Some(b) = best {
        temps.cpu_temp = b.current;
        temps.cpu_temp_max = b.threshold;
    }
    *cur = temps;
    if cur.sensors.is_empty() {
        return Err(format!(
            "no temperature sensors under {}/class/hwmon or {}/class/thermal",
            s.root().sys.display(),
            s.root().sys.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(rank: u8, current: f64) -> CpuReading {
        CpuReading {
            rank,
            current,
            threshold: 0.0,
        }
    }

    #[test]
    fn a_more_cpu_like_sensor_wins_then_the_hotter() {
        assert!(reading(1, 40.0).beats(None));
        assert!(reading(2, 30.0).beats(Some(reading(1, 90.0))));
        assert!(!reading(1, 90.0).beats(Some(reading(2, 30.0))));
        assert!(reading(2, 50.0).beats(Some(reading(2, 40.0))));
        assert!(
            !reading(2, 40.0).beats(Some(reading(2, 40.0))),
            "ties keep the first"
        );
    }
}

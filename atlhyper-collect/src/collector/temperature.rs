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

/// One temperature as node_exporter labels it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LabelledTemp {
    /// hwmon: the chip name ([`hwmon::chip_name`]); thermal: the zone's `type`.
    pub(super) group: String,
    /// hwmon: `tempN`; thermal: the zone number.
    pub(super) item: String,
    pub(super) celsius: f64,
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct TemperatureSample {
    /// The snapshot's view: plausible readings, the CPU's chosen.
    pub(super) metrics: TemperatureMetrics,
    /// Every hwmon temperature input that parsed (node_hwmon_temp_celsius).
    pub(super) hwmon: Vec<LabelledTemp>,
    /// Every thermal zone whose temperature parsed (node_thermal_zone_temp).
    pub(super) zones: Vec<LabelledTemp>,
}

/// Reads every hwmon temperature input and every thermal zone into `cur`; the snapshot's sensors
/// are hwmon's, the zones only as fallback. An error when there is no sensor at all.
pub(super) fn sample(s: &mut Sampler, cur: &mut TemperatureSample) -> Result<(), String> {
    cur.hwmon.clear();
    cur.zones.clear();
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
            let name_file = s
                .read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &"name"])
                .ok()
                .map(|t| t.trim().to_owned());
            let link = s
                .resolve(Base::Sys, &[&"class/hwmon", hw, &"device"])
                .ok()
                .map(|p| p.to_string_lossy().into_owned());
            let dir = hw.to_string_lossy();
            let labelled_chip = hwmon::chip_name(link.as_deref(), name_file.as_deref(), &dir);
            let chip = name_file.unwrap_or_else(|| dir.into_owned());
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
                cur.hwmon.push(LabelledTemp {
                    group: labelled_chip.clone(),
                    item: format!("temp{idx}"),
                    celsius: current,
                });
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
    let zones = s
        .list_dir(Base::Sys, &[&"class", &"thermal"])
        .unwrap_or_default();
    for z in &zones {
        let name = z.to_string_lossy();
        let Some(number) = name.strip_prefix("thermal_zone") else {
            continue;
        };
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
        cur.zones.push(LabelledTemp {
            group: ty,
            item: number.to_owned(),
            celsius: current,
        });
    }
    // Thermal zones only as fallback: for the sensor list when hwmon has none, and for the CPU
    // reading when hwmon has no CPU sensor.
    if best.is_none() {
        let hwmon_had_sensors = !temps.sensors.is_empty();
        for z in cur.zones.iter().filter(|z| hwmon::plausible(z.celsius)) {
            // Zones have no rank among themselves: the hottest CPU zone wins.
            if thermal::is_cpu_zone(&z.group) && best.is_none_or(|b| z.celsius > b.current) {
                best = Some(CpuReading {
                    rank: 1,
                    current: z.celsius,
                    threshold: 0.0,
                });
            }
            if !hwmon_had_sensors {
                temps.sensors.push(SensorReading {
                    name: z.group.clone(),
                    label: format!("thermal_zone{}", z.item),
                    current: z.celsius,
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
    cur.metrics = temps;
    if cur.metrics.sensors.is_empty() {
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

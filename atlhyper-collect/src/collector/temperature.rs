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

/// How many collections a [`SensorLayout`] serves before the sensors are looked for again.
const REDISCOVER_COLLECTIONS: u32 = 12;

/// Where the temperatures are and what never changes about them while a driver stays loaded:
/// the hwmon chips with each temperature input's label and thresholds, and the thermal zones
/// with their types. Looking for them lists several sysfs directories and reads a handful of
/// files per sensor; only the inputs change from one collection to the next. So the layout is
/// found once and reused for [`REDISCOVER_COLLECTIONS`] collections (a sensor that appears, or a
/// threshold rewritten, shows within that many), and looked for again at once when more inputs
/// fail to read than did right after it was found (a driver unloaded or reloaded; an ACPI zone
/// that never reads does not count).
#[derive(Debug, Default)]
pub(super) struct SensorLayout {
    /// The sysfs root it was found under (`None`: not yet looked for).
    sys: Option<std::path::PathBuf>,
    chips: Vec<ChipLayout>,
    zones: Vec<ZoneLayout>,
    /// Collections served since it was found.
    served: u32,
    /// How many inputs failed to read in the first collection it served.
    failing: Option<usize>,
}

/// One hwmon chip directory (`hwmonN`, or its legacy `device/`) with temperature inputs.
#[derive(Debug)]
struct ChipLayout {
    /// `hwmonN`.
    dir: std::ffi::OsString,
    /// `""` or `"device"`: where the attributes are.
    sub: &'static str,
    /// node_exporter's chip label ([`hwmon::chip_name`]).
    labelled: String,
    /// The `name` file, else the directory.
    chip: String,
    inputs: Vec<InputLayout>,
}

/// One `tempN_input` with its label and thresholds, °C (0 when absent or implausible).
#[derive(Debug)]
struct InputLayout {
    idx: u32,
    label: String,
    max: f64,
    critical: f64,
}

/// One thermal zone.
#[derive(Debug)]
struct ZoneLayout {
    /// `thermal_zoneN`.
    dir: std::ffi::OsString,
    /// `N`.
    number: String,
    /// Its `type`.
    ty: String,
}

impl SensorLayout {
    fn stale(&self, s: &Sampler) -> bool {
        self.served >= REDISCOVER_COLLECTIONS || self.sys.as_deref() != Some(s.root().sys.as_path())
    }

    /// Lists the hwmon chips and thermal zones under the sampler's sysfs and reads what does not
    /// change about them.
    fn discover(s: &mut Sampler) -> Self {
        let mut chips = Vec::new();
        let hwmons = s
            .list_dir(Base::Sys, &[&"class", &"hwmon"])
            .unwrap_or_default();
        for hw in hwmons {
            // Attributes directly in hwmonN, or in the legacy hwmonN/device/ directory.
            for sub in ["", "device"] {
                let mut attrs: Vec<(u32, hwmon::TempAttr)> = s
                    .list_dir(Base::Sys, &[&"class/hwmon", &hw, &sub])
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| n.to_str().and_then(hwmon::temp_attr))
                    .collect();
                if attrs.is_empty() {
                    continue;
                }
                attrs.sort_by_key(|(i, _)| *i);
                let name_file = s
                    .read_text(Base::Sys, &[&"class/hwmon", &hw, &sub, &"name"])
                    .ok()
                    .map(|t| t.trim().to_owned());
                let link = s
                    .resolve(Base::Sys, &[&"class/hwmon", &hw, &"device"])
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned());
                let dir = hw.to_string_lossy().into_owned();
                let labelled = hwmon::chip_name(link.as_deref(), name_file.as_deref(), &dir);
                let chip = name_file.unwrap_or(dir);
                let mut inputs = Vec::new();
                for &(idx, attr) in &attrs {
                    if attr != hwmon::TempAttr::Input {
                        continue;
                    }
                    let mut threshold = |suffix: &str| -> f64 {
                        let f = format!("temp{idx}_{suffix}");
                        s.read_text(Base::Sys, &[&"class/hwmon", &hw, &sub, &f])
                            .ok()
                            .and_then(|t| hwmon::parse_millidegrees(t).ok())
                            .filter(|v| hwmon::plausible(*v) && *v > 0.0)
                            .unwrap_or(0.0)
                    };
                    let max = threshold("max");
                    let critical = threshold("crit");
                    let label_file = format!("temp{idx}_label");
                    let label =
                        match s.read_text(Base::Sys, &[&"class/hwmon", &hw, &sub, &label_file]) {
                            Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
                            _ => format!("temp{idx}"),
                        };
                    inputs.push(InputLayout {
                        idx,
                        label,
                        max,
                        critical,
                    });
                }
                chips.push(ChipLayout {
                    dir: hw.clone(),
                    sub,
                    labelled,
                    chip,
                    inputs,
                });
                break;
            }
        }
        let mut zones = Vec::new();
        let listed = s
            .list_dir(Base::Sys, &[&"class", &"thermal"])
            .unwrap_or_default();
        for z in listed {
            let Some(number) = z.to_str().and_then(|n| n.strip_prefix("thermal_zone")) else {
                continue;
            };
            let number = number.to_owned();
            let Ok(ty) = s
                .read_text(Base::Sys, &[&"class/thermal", &z, &"type"])
                .map(|t| t.trim().to_owned())
            else {
                continue;
            };
            zones.push(ZoneLayout { dir: z, number, ty });
        }
        Self {
            sys: Some(s.root().sys.clone()),
            chips,
            zones,
            served: 0,
            failing: None,
        }
    }
}

/// Reads every hwmon temperature input and every thermal zone of the layout into `cur` (looking
/// for the sensors again first when the layout is stale); the snapshot's sensors are hwmon's,
/// the zones only as fallback. An error when there is no sensor at all.
pub(super) fn sample(
    s: &mut Sampler,
    layout: &mut SensorLayout,
    cur: &mut TemperatureSample,
) -> Result<(), String> {
    if layout.stale(s) {
        *layout = SensorLayout::discover(s);
    }
    layout.served += 1;
    cur.hwmon.clear();
    cur.zones.clear();
    let mut temps = TemperatureMetrics::default();
    let mut best: Option<CpuReading> = None;
    let mut failed = 0usize;
    for c in &layout.chips {
        for input in &c.inputs {
            let f = format!("temp{}_input", input.idx);
            let Some(current) = s
                .read_text(Base::Sys, &[&"class/hwmon", &c.dir, &c.sub, &f])
                .ok()
                .and_then(|t| hwmon::parse_millidegrees(t).ok())
            else {
                failed += 1;
                continue;
            };
            cur.hwmon.push(LabelledTemp {
                group: c.labelled.clone(),
                item: format!("temp{}", input.idx),
                celsius: current,
            });
            if !hwmon::plausible(current) {
                continue;
            }
            if let Some(rank) = hwmon::cpu_sensor_rank(&c.chip, &input.label) {
                let reading = CpuReading {
                    rank,
                    current,
                    threshold: if input.max > 0.0 {
                        input.max
                    } else {
                        input.critical
                    },
                };
                if reading.beats(best) {
                    best = Some(reading);
                }
            }
            temps.sensors.push(SensorReading {
                name: c.chip.clone(),
                label: input.label.clone(),
                current,
                max: input.max,
                critical: input.critical,
            });
        }
    }
    for z in &layout.zones {
        let Ok(Ok(current)) = s
            .read_text(Base::Sys, &[&"class/thermal", &z.dir, &"temp"])
            .map(thermal::parse_temp)
        else {
            failed += 1;
            continue;
        };
        cur.zones.push(LabelledTemp {
            group: z.ty.clone(),
            item: z.number.clone(),
            celsius: current,
        });
    }
    if failed > *layout.failing.get_or_insert(failed) {
        // A sensor that read before went away: look again next time.
        layout.served = REDISCOVER_COLLECTIONS;
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

//! `/proc/cpuinfo`: model name, current MHz, logical and physical core counts.
//!
//! Not a hot file (the collector reads it once, and again only for MHz when cpufreq is absent).

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{parse_f64, parse_u64};

const FILE: &str = "/proc/cpuinfo";

/// Summary of `/proc/cpuinfo`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CpuInfo {
    /// `model name` of the first processor (x86), else `Processor`/`cpu model`; empty if none.
    pub model: String,
    /// Logical CPUs (`processor` entries).
    pub logical: u32,
    /// Physical cores: distinct (`physical id`, `core id`) pairs; without topology lines
    /// `cpu cores` per package, else the logical count.
    pub physical: u32,
    /// Average `cpu MHz` over the processors that report it.
    pub mhz: Option<f64>,
    /// `cpu MHz` of each processor in the file's order (`processor` order); empty unless every
    /// processor reports one (ARM and s390 print none).
    pub per_processor_mhz: Vec<f64>,
}

/// Parses `/proc/cpuinfo`.
pub fn parse(text: &str) -> ParseResult<CpuInfo> {
    let mut info = CpuInfo::default();
    let mut model_fallback: Option<&str> = None;
    let mut model: Option<&str> = None;
    let (mut mhz_sum, mut mhz_n) = (0.0f64, 0u32);
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    let mut packages: Vec<u64> = Vec::new();
    let mut cores_per_package: Option<u64> = None;
    let (mut phys_id, mut core_id) = (None, None);
    let flush = |phys: &mut Option<u64>, core: &mut Option<u64>, pairs: &mut Vec<(u64, u64)>| {
        if let (Some(p), Some(c)) = (phys.take(), core.take())
            && !pairs.contains(&(p, c))
        {
            pairs.push((p, c));
        }
    };
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            flush(&mut phys_id, &mut core_id, &mut pairs);
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            // Some architectures print bare lines; they carry nothing we use.
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        let bad = |what| ParseError::new(FILE, idx + 1, ParseErrorKind::BadNumber(what));
        match key {
            // ARM prints "Processor : ARMv7 ..." (capital P) as the model; "processor" is the index.
            "processor" if parse_u64(value).is_some() => info.logical += 1,
            "model name" if model.is_none() => model = Some(value),
            "Processor" | "cpu model" | "Hardware" if model_fallback.is_none() => {
                model_fallback = Some(value)
            }
            "cpu MHz" => {
                let v = parse_f64(value).ok_or(bad("cpu MHz"))?;
                mhz_sum += v;
                mhz_n += 1;
                info.per_processor_mhz.push(v);
            }
            "physical id" => {
                let v = parse_u64(value).ok_or(bad("physical id"))?;
                if !packages.contains(&v) {
                    packages.push(v);
                }
                phys_id = Some(v);
            }
            "core id" => core_id = Some(parse_u64(value).ok_or(bad("core id"))?),
            "cpu cores" => cores_per_package = Some(parse_u64(value).ok_or(bad("cpu cores"))?),
            _ => {}
        }
    }
    flush(&mut phys_id, &mut core_id, &mut pairs);
    if info.logical == 0 {
        return Err(ParseError::new(
            FILE,
            1,
            ParseErrorKind::Missing("processor"),
        ));
    }
    info.model = model.or(model_fallback).unwrap_or_default().to_owned();
    info.physical = if !pairs.is_empty() {
        u32::try_from(pairs.len()).unwrap_or(u32::MAX)
    } else if let Some(c) = cores_per_package {
        let n = c.saturating_mul(packages.len().max(1) as u64);
        u32::try_from(n).unwrap_or(u32::MAX)
    } else {
        info.logical
    };
    info.mhz = (mhz_n > 0).then(|| mhz_sum / f64::from(mhz_n));
    if mhz_n != info.logical {
        info.per_processor_mhz.clear();
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_with_hyperthreads() {
        let mut text = String::new();
        for (cpu, core) in [(0, 0), (1, 1), (2, 0), (3, 1)] {
            text.push_str(&format!(
                "processor\t: {cpu}\nmodel name\t: Intel(R) Xeon(R)\ncpu MHz\t\t: {}\n\
physical id\t: 0\ncore id\t\t: {core}\ncpu cores\t: 2\n\n",
                2000 + cpu * 100
            ));
        }
        let c = parse(&text).unwrap();
        assert_eq!(c.model, "Intel(R) Xeon(R)");
        assert_eq!((c.logical, c.physical), (4, 2));
        assert_eq!(c.mhz, Some(2150.0));
        assert_eq!(c.per_processor_mhz, [2000.0, 2100.0, 2200.0, 2300.0]);
    }

    #[test]
    fn arm_without_topology() {
        let c =
            parse("processor : 0\nBogoMIPS : 50\n\nprocessor : 1\n\nHardware : BCM2835\n").unwrap();
        assert_eq!((c.logical, c.physical), (2, 2));
        assert_eq!(c.model, "BCM2835");
        assert_eq!(c.mhz, None);
        assert!(c.per_processor_mhz.is_empty());
        // One processor without MHz: no per-processor list (it would not line up).
        let c = parse("processor : 0\ncpu MHz : 1000\n\nprocessor : 1\n").unwrap();
        assert_eq!(c.mhz, Some(1000.0));
        assert!(c.per_processor_mhz.is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("processor : 0\ncpu MHz : fast\n").is_err());
        assert!(parse("processor : 0\ncore id : -1\n").is_err());
    }
}

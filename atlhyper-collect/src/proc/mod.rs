//! Parsers for files under `/proc`, one module per kernel file. They take text (or bytes), never
//! open files, never panic, and report errors with the kernel file name and line.

pub mod cpuinfo;
pub mod diskstats;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod net_addr;
pub mod net_dev;
pub mod net_snmp;
pub mod net_sockstat;
pub mod net_softnet_stat;
pub mod pid_cmdline;
pub mod pid_stat;
pub mod pid_statm;
pub mod pid_status;
pub mod pressure;
pub mod stat;
pub mod sys_fs_file_nr;
pub mod sys_kernel_random;
pub mod sys_net_netfilter;
pub mod uptime;
pub mod vmstat;
pub mod zoneinfo;

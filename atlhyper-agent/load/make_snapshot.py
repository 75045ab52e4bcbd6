#!/usr/bin/env python3
"""Writes a realistic node snapshot (10 processes, 4 disks, 4 interfaces, ~3 KB) for load runs.

Usage: make_snapshot.py OUT_DIR
Writes OUT_DIR/snapshot.json (one fixed body, for oha) and OUT_DIR/template.lua (the same body
split around the node name and timestamp, for wrk's post.lua).
"""
import json
import sys

NODE = "@@NODE@@"
TS = "@@TS@@"


def snapshot():
    procs = []
    names = ["kubelet", "containerd", "etcd", "kube-apiserver", "java", "postgres",
             "nginx", "node", "python3", "coredns"]
    for i, name in enumerate(names):
        procs.append({
            "pid": 1000 + i * 137, "name": name,
            "cmdline": f"/usr/bin/{name} --v=2",
            "user": "root" if i % 2 == 0 else "app", "status": "S",
            "cpu_percent": round(12.5 - i, 2), "mem_percent": round(3.1 + i * 0.4, 2),
            "mem_rss": 104857600 + i * 7340032, "threads": 12 + i, "start_time": 1705700000 + i,
        })
    disks = []
    for i, (dev, mnt) in enumerate([("nvme0n1p2", "/"), ("nvme0n1p3", "/var"),
                                   ("sda1", "/data"), ("dm-0", "/var/lib/kubelet")]):
        disks.append({
            "device": dev, "mount_point": mnt, "fs_type": "ext4",
            "total": 512110190592, "used": 123456789012 + i, "available": 362540000000,
            "usage_percent": 25.4 + i, "read_bytes": 98765432100, "write_bytes": 123456789000,
            "read_rate": 40960.5, "write_rate": 81920.25, "read_iops": 12.5, "write_iops": 30.75,
            "io_util": 3.5,
        })
    nets = []
    for i, iface in enumerate(["eth0", "eth1", "bond0", "ens5"]):
        nets.append({
            "interface": iface, "ip_address": f"10.0.{i}.15", "mac_address": f"52:54:00:12:34:{i:02x}",
            "status": "up", "speed": 10000, "mtu": 1500, "rx_bytes": 987654321000,
            "tx_bytes": 123456789000, "rx_packets": 987654321, "tx_packets": 123456789,
            "rx_rate": 1250000.5, "tx_rate": 250000.25, "rx_errors": 0, "tx_errors": 0,
            "rx_dropped": 12, "tx_dropped": 0,
        })
    return {
        "node_name": NODE, "timestamp": TS, "hostname": "worker", "os": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-18-amd64", "uptime": 8640000,
        "cpu": {"usage_percent": 37.5, "user_percent": 25.0, "system_percent": 10.0,
                "idle_percent": 60.0, "iowait_percent": 2.5, "per_core": [40.0, 35.0, 38.5, 36.0],
                "load_1": 1.25, "load_5": 1.5, "load_15": 1.75,
                "model": "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "cores": 4, "threads": 4,
                "frequency": 2400.0, "steal_percent": 0.5},
        "memory": {"total": 16777216000, "used": 8388608000, "available": 8388608000,
                   "free": 1048576000, "usage_percent": 50.0, "cached": 6291456000,
                   "buffers": 209715200, "swap_total": 0, "swap_used": 0, "swap_free": 0,
                   "swap_percent": 0.0},
        "disks": disks, "networks": nets,
        "temperature": {"cpu_temp": 55.0, "cpu_temp_max": 100.0, "sensors": [
            {"name": "coretemp", "label": "Package id 0", "current": 55.0, "max": 100.0, "critical": 100.0},
            {"name": "coretemp", "label": "Core 0", "current": 53.0, "max": 100.0, "critical": 100.0}]},
        "processes": procs,
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    text = json.dumps(snapshot(), separators=(",", ":"))
    fixed = text.replace(NODE, "load-node-1").replace(TS, "2024-01-20T10:30:00Z")
    with open(f"{out}/snapshot.json", "w") as f:
        f.write(fixed)
    a, rest = text.split(NODE)
    b, c = rest.split(TS)
    with open(f"{out}/template.lua", "w") as f:
        f.write("return {%s, %s, %s}\n" % tuple(json.dumps(p) for p in (a, b, c)))
    print(f"snapshot.json: {len(fixed)} bytes")


if __name__ == "__main__":
    main()

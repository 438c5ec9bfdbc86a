# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool and volume gauges of one storage host in node_exporter's textfile collector format.

The text is Prometheus' exposition format 0.0.4 (``# HELP``, ``# TYPE``, one sample per line, label values with
``\\``, ``"`` and newline escaped), as node_exporter's textfile collector reads it from ``*.prom`` files. It holds
no timestamp, so a run that changes nothing writes the same bytes (node_exporter exports each file's mtime as
``node_textfile_mtime_seconds``, which tells how fresh the numbers are).
"""

from __future__ import annotations

__all__ = ["textfile", "PREFIX"]

PREFIX = "ember_blockstore_"

# (name, help, value of a pool_usage entry); gauges in bytes unless named otherwise.
_POOL_GAUGES = (
    ("pool_capacity_bytes", "Size of the pool (volume group or thin pool data).", lambda p: p["total_bytes"]),
    ("pool_allocated_bytes", "Bytes of the pool in use (thick volumes and snapshots; thin: data written).",
     lambda p: p["used_bytes"]),
    ("pool_provisioned_bytes", "Sum of the sizes of the volumes in the pool.", lambda p: p["provisioned_bytes"]),
    ("pool_free_bytes", "Bytes of the pool not in use.", lambda p: p["free_bytes"]),
    ("pool_over_subscription_ratio", "Provisioned bytes divided by the pool's size (Cinder's capacity filter).",
     lambda p: p["over_subscription"]),
    ("pool_reserved_ratio", "Share of the pool the capacity filter keeps free (reserved_percentage / 100).",
     lambda p: (p.get("reserved_percentage") or 0) / 100.0),
)
_STATES = ("available", "in-use", "creating", "deleting", "error", "unknown", "not in inventory")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    return "{" + ",".join('%s="%s"' % (key, _escape(value)) for key, value in pairs) + "}"


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _ratio(value):
    """A max_over_subscription_ratio as a float, or None (``auto``, missing)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def textfile(report, host):
    """The metrics text of storage host ``host`` from a run's report (the ``report`` filter's result: its
    ``pool_usage`` entries of that host and its ``rows`` on those pools). Volumes that are deleted or absent have
    no samples. Returns a str ending in a newline (empty when the host has no pool); raises ValueError when the
    report has no ``pool_usage``."""
    if "pool_usage" not in report:
        raise ValueError("the report has no pool_usage (it was made by an older report filter)")
    pools = [p for p in report["pool_usage"] if p.get("host") == host]
    pool_ids = {p["id"] for p in pools}
    rows = sorted((r for r in report.get("rows") or [] if r.get("pool") in pool_ids and r.get("state") in _STATES),
                  key=lambda r: (r["pool"], r["volume"]))
    lines = []

    def family(name, help_text, samples):
        if not samples:
            return
        lines.append("# HELP %s%s %s" % (PREFIX, name, help_text))
        lines.append("# TYPE %s%s gauge" % (PREFIX, name))
        lines.extend("%s%s%s %s" % (PREFIX, name, _labels(labels), _number(value)) for labels, value in samples)

    def pool_labels(pool):
        return (("pool", pool["id"]), ("backend", pool["backend"]), ("driver", pool.get("driver") or ""),
                ("availability_zone", pool.get("availability_zone") or ""))

    for name, help_text, value in _POOL_GAUGES:
        family(name, help_text, [(pool_labels(p), value(p)) for p in pools])
    ratios = [(p, _ratio(p.get("max_over_subscription_ratio"))) for p in pools if p.get("thin")]
    family("pool_max_over_subscription_ratio", "The thin pool's max_over_subscription_ratio (absent when auto).",
           [(pool_labels(p), ratio) for p, ratio in ratios if ratio is not None])
    counts = {}
    for row in rows:
        counts[(row["pool"], row["state"])] = counts.get((row["pool"], row["state"]), 0) + 1
    family("pool_volumes", "Volumes in the pool per status (Cinder's statuses; not in inventory: managed, "
           "not declared).", [((("pool", pool["id"]), ("status", state)), counts.get((pool["id"], state), 0))
                              for pool in pools for state in _STATES])

    def volume_labels(row):
        return (("volume", row["volume"]), ("pool", row["pool"]),
                ("volume_type", "" if row.get("type") in (None, "-") else row["type"]))

    family("volume_size_bytes", "Size of the volume.",
           [(volume_labels(r), r["size_bytes"]) for r in rows if r.get("size_bytes")])
    family("volume_status", "1 for the volume's status after the run.",
           [(volume_labels(r) + (("status", r["state"]),), 1) for r in rows])
    family("volume_attachments", "Consumers the volume is declared attached to.",
           [(volume_labels(r), 0 if r.get("attached_to") in (None, "-") else len(r["attached_to"].split(", ")))
            for r in rows])
    return "\n".join(lines) + "\n" if lines else ""

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduler's error, with a message that stays small whatever the size of the inventory.

Cinder answers one request at a time, so its ``NoValidBackend`` names one volume. A plan fails for all the
volumes that fit nowhere at once: with 1,000 of them over 1,000 pools, one line per pool per volume would be
a message of megabytes. :class:`NoValidBackendReport` keeps it under :data:`MAX_MESSAGE` characters: the first
:data:`FULL_VOLUMES` volumes are shown with their reasons (at most :data:`SAMPLES` pools per filter, the rest
counted), the other volumes are grouped by which filters rejected how many pools, and a last line names every
filter that rejected a pool.
"""

from __future__ import annotations

__all__ = ["ScheduleError", "NoValidBackendReport", "Rejection", "MAX_MESSAGE", "shorten"]

MAX_MESSAGE = 7900  # characters; under 8 KiB
MAX_LINE = 400  # other problems (validation, shrink, in-use delete...) are cut to this many characters each
MAX_LINES = 8  # and at most this many of them are shown, then counted
FULL_VOLUMES = 3  # volumes shown with their reasons when several fit nowhere
SAMPLES = 2  # pools named per filter for a volume shown in full (when it was rejected by many pools)
FEW_POOLS = 6  # up to this many rejecting pools, each one is named with its reason
REASON = 180  # characters of one pool's reason
GROUPS = 10  # groups of volumes shown, then counted
NAMES = 5  # volume names shown per group


def shorten(text, limit=MAX_LINE):
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    cut = f" ... ({len(text) - limit + 30} more characters)"
    return text[:max(limit - len(cut), 0)] + cut


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


class Rejection:
    """One volume that fits nowhere: for each filter that rejected pools (the first filter each pool failed, in
    Cinder's filter order), how many pools and the reasons of the first :data:`SAMPLES` of them (by pool id)."""

    __slots__ = ("by_filter", "name", "pools")

    def __init__(self, name, by_filter, pools):
        self.name = name
        self.by_filter = by_filter  # {filter name: (count, [(pool id, reason without the filter name)])}
        self.pools = pools  # how many pools were tried

    def signature(self):
        """What the rejection looks like without the volume: ``CapacityFilter on all 12 pools``."""
        if not self.pools:
            return "no pools reported"
        parts = [f"{flt} on {'all ' if count == self.pools else ''}{_plural(count, 'pool')}"
                 for flt, (count, dummy) in self.by_filter.items()]
        return ", ".join(parts)

    def message(self):
        """``No valid backend for <name>: <pool>: <filter>: <reason>; ...`` (every pool, when there are few),
        else the pools counted per filter with the first reasons of each."""
        head = f"No valid backend for {self.name}: "
        if not self.pools:
            return head + "no pools reported"
        if self.pools <= FEW_POOLS and all(count == len(samples) for count, samples in self.by_filter.values()):
            rows = sorted((pid, flt, reason) for flt, (dummy, samples) in self.by_filter.items()
                          for pid, reason in samples)
            return head + "; ".join(f"{pid}: {flt}: {shorten(reason, REASON)}" for pid, flt, reason in rows)
        parts = []
        for flt, (count, samples) in self.by_filter.items():
            shown = "; ".join(f"{pid}: {shorten(reason, REASON)}" for pid, reason in samples)
            more = f"; and {count - len(samples)} more" if count > len(samples) else ""
            parts.append(f"{flt} on {'all ' if count == self.pools else ''}{_plural(count, 'pool')} "
                         f"({shown}{more})")
        return head + ", ".join(parts)


class NoValidBackendReport:
    """The volumes of one plan that fit nowhere, rendered in bounded space (see the module docstring)."""

    def __init__(self, filters=()):
        self.rejections = []
        self.filters = list(filters)  # filter names in the order they run

    def __bool__(self):
        return bool(self.rejections)

    def add(self, rejection):
        self.rejections.append(rejection)

    def messages(self):
        """One string per volume (for ``ScheduleError.errors``): in full for the first volumes, then the short
        form ``No valid backend for <name>: <signature>``."""
        out = [r.message() for r in self.rejections[:FULL_VOLUMES]]
        out += [f"No valid backend for {r.name}: {r.signature()}" for r in self.rejections[FULL_VOLUMES:]]
        return out

    def lines(self):
        """The report as message lines: the first volumes in full, the others grouped, every filter named."""
        lines = [r.message() for r in self.rejections[:FULL_VOLUMES]]
        rest = self.rejections[FULL_VOLUMES:]
        if not rest:
            return lines
        groups = {}
        for r in rest:
            groups.setdefault(r.signature(), []).append(r.name)
        lines.append(f"No valid backend for {_plural(len(rest), 'more volume')}, grouped by the filters that "
                     "rejected the pools:")
        ordered = sorted(((signature, sorted(names)) for signature, names in groups.items()),
                         key=lambda item: (-len(item[1]), item[1][0]))
        for signature, names in ordered[:GROUPS]:
            shown = ", ".join(names[:NAMES]) + (f", and {len(names) - NAMES} more" if len(names) > NAMES else "")
            lines.append(f"  {_plural(len(names), 'volume')} ({shorten(shown, MAX_LINE)}): "
                         f"{shorten(signature, MAX_LINE)}")
        if len(ordered) > GROUPS:
            others = sum(len(names) for dummy, names in ordered[GROUPS:])
            lines.append(f"  and {_plural(others, 'volume')} in {_plural(len(ordered) - GROUPS, 'other group')}")
        seen = {flt for r in self.rejections for flt in r.by_filter}
        filters = [flt for flt in self.filters if flt in seen] + sorted(seen - set(self.filters))
        if filters:
            lines.append(f"Filters that rejected pools: {', '.join(filters)}")
        return lines


def bounded_message(problems, report=None):
    """One message from ``problems`` (one string each; at most MAX_LINES shown, each cut to MAX_LINE
    characters) and the ``report`` lines, the whole cut to MAX_MESSAGE characters keeping the last line."""
    lines = [shorten(p) for p in problems[:MAX_LINES]]
    if len(problems) > MAX_LINES:
        lines.append(f"... and {_plural(len(problems) - MAX_LINES, 'more problem')}")
    if report:
        lines.extend(report.lines())
    text = "\n".join(lines)
    if len(text) <= MAX_MESSAGE:
        return text
    tail = shorten(lines[-1])
    note = f"... (message cut at {MAX_MESSAGE} characters)"
    head = text[:MAX_MESSAGE - len(tail) - len(note) - 2].rsplit("\n", 1)[0]
    return f"{head}\n{note}\n{tail}"


class ScheduleError(ValueError):
    """Invalid input, or a plan that cannot be made (Cinder's ``InvalidInput`` and ``NoValidBackend``).

    ``errors`` holds one string per problem (each volume that fits nowhere is one, see
    :meth:`NoValidBackendReport.messages`); ``str()`` is bounded (under 8 KiB) however many there are.
    """

    def __init__(self, errors, report=None):
        if isinstance(errors, str):
            errors = [errors]
        problems = list(errors)
        self.report = report
        self.errors = problems + (report.messages() if report else [])
        super().__init__(bounded_message(problems, report))

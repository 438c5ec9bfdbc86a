# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's CapabilitiesFilter (cinder/scheduler/filters/capabilities_filter.py ``_satisfies_extra_specs``
l. 28-91 at Cinder master ab09bc39)."""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.extra_specs_ops import OPS, match

__all__ = ["CapabilitiesFilter"]


class CapabilitiesFilter:
    """Every unscoped or ``capabilities:``-scoped extra spec must match the pool's capability (nested scopes walk
    into dicts) with :func:`.extra_specs_ops.match`; other scopes (``provisioning:type``, ``RESKEY:``,
    ``qos:``...) are ignored; a capability the pool does not report fails; a list capability matches when any
    element matches. Cinder's extend-time ``online_extend_support`` check does not apply (volumes here are
    extended on the pool they are on, without the filters)."""

    name = "CapabilitiesFilter"

    @staticmethod
    def explain(pool, spec):
        """Why ``pool`` fails (without the filter's name), or None when it passes."""
        for key, req in (spec.extra_specs or {}).items():
            scope = key.split(":")
            if len(scope) > 1 and scope[0] != "capabilities":
                continue
            if scope[0] == "capabilities":
                del scope[0]
            cap = pool.capabilities
            for part in scope:
                try:
                    cap = cap[part]
                except (TypeError, KeyError):
                    return (f"pool does not report capability {':'.join(scope)!r} "
                            f"(type {spec.volume_type} wants {req!r})")
            values = cap if isinstance(cap, list) else [cap]
            if not any(match(value, req) for value in values):
                hint = ""
                words = req.split() if isinstance(req, str) else []
                if not isinstance(cap, (str, list)) and words and words[0] != "<or>" and words[0] not in OPS:
                    hint = f"; without an operator values are compared as they are: use '<is> {req}' or '== {req}'"
                return f"{key}: pool reports {cap!r}, type {spec.volume_type} wants {req!r}{hint}"
        return None

    @classmethod
    def passes(cls, pool, spec):
        why = cls.explain(pool, spec)
        return (True, "") if why is None else (False, f"{cls.name}: {why}")

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduler and planner behind the ``ember.blockstore.schedule`` filter and lookup (controller side).

The files mirror Cinder's ``cinder/scheduler/`` (see docs/scheduler.md for the release followed and the
differences); each one imports only the files below it, never one above::

    exception.py                          ScheduleError and bounded messages
    sched_utils.py                        capacity arithmetic (cinder/scheduler/sched_utils.py)
    host_manager.py                       PoolState, load_pools (cinder/scheduler/host_manager.py)
    filters/extra_specs_ops.py            extra spec operators (cinder/scheduler/filters/extra_specs_ops.py)
    filters/availability_zone_filter.py   AvailabilityZoneFilter
    filters/capacity_filter.py            CapacityFilter
    filters/capabilities_filter.py        CapabilitiesFilter
    weights/capacity.py                   CapacityWeigher (cinder/scheduler/weights/capacity.py)
    request_spec.py                       inventory validation, RequestSpec (cinder/objects/request_spec.py and
                                          the zone rules of cinder/volume/flows/api/create_volume.py)
    filter_scheduler.py                   plan() (cinder/scheduler/filter_scheduler.py)

Nothing is imported here, so importing one file never pulls in the others.
"""

#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Run the fault sweep on an in-process deployment of nova.

For each neighbour state, :meth:`Sweep.clean` migrates the instance once
without faults and keeps each pool's call log (from the mock's per-pool
log). Then, from a fresh scenario each time (``Deployment.reset``), for
every call index on each side and every fault kind, the fault is injected
at that index (a ``'*'`` rule skipping the first ``index`` calls of the
pool) and the migration is run and judged (:mod:`.judge`).

Second faults: for each first fault in ``FIRSTS`` (a call that makes nova
roll back), the first-fault case's call logs are recorded; the rollback's
calls are, on the first fault's side, the calls after it, and on the other
side the calls from the first one that differs from the clean migration's.
For each of those indexes and each kind of ``second_kinds``, both faults
are injected into a fresh scenario.
"""

import collections
import copy
import fnmatch
import functools
import inspect
import random
import time

from nova_xenapi_sr_tools.faultsweep import judge
from nova_xenapi_sr_tools.faultsweep import layout

EXTENSION = 'extension'
STOCK = 'stock'

#: Fault kinds of the sweep: the mock fault rules ``(kind, error, times)``
#: each injects, in order, at the call index. The XenAPI SDK (Python's
#: ``xmlrpc.client``) sends a request again, once, when the connection
#: closes without a reply, so a dropped connection that reaches the caller
#: is two drops in a row (the call and its resend: ``times=2``), and a lost
#: reply that reaches the caller is the call served with its reply lost,
#: then the resend dropped. A ``session_invalid`` is what the SDK itself
#: handles: it logs in again and repeats the call.
KINDS = collections.OrderedDict([
    ('failure', [('failure', ['INTERNAL_ERROR', 'injected by the fault '
                                                'sweep'], 1)]),
    ('drop', [('drop', None, 2)]),
    ('timeout', [('timeout', None, 1), ('drop', None, 1)]),
    ('session_invalid', [('session_expiry', None, 1)]),
])

#: First faults of the second-fault cases: ``(side, method)``, a XenAPI
#: Failure at the first call of ``method`` on that side.
FIRSTS = (('source', 'VM.migrate_send'), ('destination', 'SR.introduce'))

#: Driver methods whose ``block_device_info`` must come back unchanged.
BDI_METHODS = ('pre_live_migration', 'rollback_live_migration_at_destination',
               'post_live_migration', 'post_live_migration_at_destination',
               'cleanup', 'live_migration')

Fault = collections.namedtuple('Fault', 'side index method kind')


class Case(object):
    """One case: a flavour, the neighbour's state and one or two faults."""

    def __init__(self, flavour, neighbour, fault, first=None):
        self.flavour = flavour
        self.neighbour = neighbour
        self.fault = fault
        self.first = first
        self.seconds = None

    @property
    def name(self):
        text = '%s/%s/%s' % (self.flavour, self.neighbour.lower(),
                             _fault_name(self.fault))
        if self.first is not None:
            text = '%s/%s/then/%s' % (self.flavour, self.neighbour.lower(),
                                      _fault_name(self.first)) + \
                '/' + _fault_name(self.fault)
        return text

    @property
    def key(self):
        """What identifies the case across flavours (the fault only)."""
        return (self.neighbour, self.first, self.fault)


def result_to_dict(result):
    """A result as plain data (JSON)."""
    case = result['case']
    return {'flavour': case.flavour, 'neighbour': case.neighbour,
            'fault': list(case.fault),
            'first': list(case.first) if case.first else None,
            'seconds': case.seconds, 'outcome': result['outcome'],
            'detail': result['detail'],
            'calls_before': list(result['calls_before'])}


def result_from_dict(data):
    """The inverse of :func:`result_to_dict`."""
    case = Case(data['flavour'], data['neighbour'], Fault(*data['fault']),
                first=Fault(*data['first']) if data['first'] else None)
    case.seconds = data['seconds']
    return {'case': case, 'outcome': data['outcome'],
            'detail': data['detail'], 'calls_before': data['calls_before']}


def _fault_name(fault):
    return '%s#%d:%s:%s' % (fault.side, fault.index, fault.method,
                            fault.kind)


class Sweep(object):
    """The fault sweep of one flavour on one :class:`Deployment`.

    :param dep: a started ``Deployment`` whose computes both run the
        flavour's driver.
    :param flavour: ``'extension'`` (the instance has the legacy volume
        too) or ``'stock'`` (the uuid5 volumes only).
    :param kinds: fault kinds (keys of :data:`KINDS`).
    :param second_kinds: kinds of the second fault (empty: none).
    :param sample: ``None`` for every call index, or how many indexes to
        take per side (drawn with ``seed``).
    :param cold_cache: empty the computes' volume connector caches before
        each migration (:func:`.layout.cool_connector_caches`), so that the
        host stats calls (the ``host_data`` plugin, ``SR.scan``) are part
        of every migration, on the source after ``VM.migrate_send``.
    :param match: ``fnmatch`` patterns of case names (:attr:`Case.name`);
        when given, only matching cases run (the clean migrations, and the
        first-fault runs the second faults need, still do).
    :param progress: ``f(case, outcome, detail)`` called after each case.
    """

    def __init__(self, dep, flavour, neighbour_states=layout.NEIGHBOUR_STATES,
                 kinds=tuple(KINDS), second_kinds=('failure',), sample=None,
                 seed=0, firsts=FIRSTS, progress=None, on_result=None,
                 cold_cache=False, match=None):
        unknown = set(kinds) | set(second_kinds)
        unknown -= set(KINDS)
        if unknown:
            raise ValueError('unknown fault kinds %s (known: %s)' % (
                ', '.join(sorted(unknown)), ', '.join(KINDS)))
        self.dep = dep
        self.flavour = flavour
        self.legacy = flavour == EXTENSION
        self.neighbour_states = tuple(neighbour_states)
        self.kinds = tuple(kinds)
        self.second_kinds = tuple(second_kinds)
        self.sample = sample
        self.seed = seed
        self.firsts = tuple(firsts)
        self.progress = progress
        self.on_result = on_result
        self.cold_cache = cold_cache
        self.match = tuple(match or ())
        self.clean_calls = {}
        self.results = []

    # -- one case -----------------------------------------------------------
    def _run(self, neighbour, faults):
        """Run one migration with ``faults``; return its record."""
        dep = self.dep
        server = layout.start_case(dep, neighbour, self.legacy,
                                   cold_cache=self.cold_cache)
        baseline = judge.snapshot(dep)
        rules = []
        fired_before = collections.Counter()
        for fault in faults:
            offset = 0
            for kind, error, times in KINDS[fault.kind]:
                # this rule's first call is the fault's index plus the
                # calls the kind's earlier rules take; a rule that fired
                # earlier on the same pool returned before the later rules
                # saw that call (Injector.pick), so a later rule sees one
                # call less per earlier firing
                after = fault.index + offset - fired_before[fault.side]
                offset += times
                rules.append(dep.xapi.inject_fault(
                    layout.SIDES[fault.side], '*', kind=kind, error=error,
                    after=after, times=times))
                fired_before[fault.side] += times
        mutations = []
        with _watch_block_device_info(dep, mutations):
            dep.live_migrate(server, host=layout.DEST_HOST)
        # the calls fault rules count: xapi's own entries left out
        calls = {side: [m for m, _ in dep.xapi.pool(pool).api_calls()]
                 for side, pool in layout.SIDES.items()}
        if not all(rule.fired for rule in rules):
            outcome, detail = judge.NOT_REACHED, (
                'the call was not made (%d of %d faults fired)' % (
                    sum(1 for r in rules if r.fired), len(rules)))
        else:
            outcome, detail = judge.judge(
                dep, server, baseline, mutations,
                bystanders=[layout.neighbour_name(dep)])
        return outcome, detail, calls

    def _record(self, case, outcome, detail, calls_before):
        self.results.append({'case': case, 'outcome': outcome,
                             'detail': detail,
                             'calls_before': list(calls_before)})
        if self.progress is not None:
            self.progress(case, outcome, detail)
        if self.on_result is not None:
            self.on_result(self.results[-1])

    # -- the clean migration -------------------------------------------------
    def clean(self, neighbour):
        """Migrate once without faults; keep and return the call logs."""
        outcome, detail, calls = self._run(neighbour, [])
        if outcome != judge.MIGRATED:
            raise RuntimeError(
                'the clean %s migration (neighbour %s) did not migrate: %s '
                '%s; no fault sweep is possible' % (
                    self.flavour, neighbour, outcome, detail))
        self.clean_calls[neighbour] = calls
        return calls

    def _indexes(self, count, label):
        indexes = list(range(count))
        if self.sample is None or self.sample >= count:
            return indexes
        rng = random.Random('%s/%s' % (self.seed, label))
        return sorted(rng.sample(indexes, self.sample))

    # -- the sweep ------------------------------------------------------------
    def warm_up(self):
        """One migration first: later cases find nova's caches warm.

        nova's compute caches what the first migration reads (the volume
        connector's ``host_data`` plugin call), so only the first
        migration after a compute starts makes those calls.
        """
        self._run(self.neighbour_states[0], [])

    def run(self):
        """Run every case; return the results (also in ``self.results``)."""
        self.warm_up()
        for neighbour in self.neighbour_states:
            calls = self.clean(neighbour)
            for side in ('source', 'destination'):
                for index in self._indexes(
                        len(calls[side]), '%s/%s' % (neighbour, side)):
                    for kind in self.kinds:
                        fault = Fault(side, index, calls[side][index], kind)
                        self._one(Case(self.flavour, neighbour, fault),
                                  calls[side][:index])
            for kind in self.second_kinds:
                self._seconds(neighbour, calls, kind)
        return self.results

    def _selected(self, case):
        return not self.match or any(
            fnmatch.fnmatchcase(case.name, pattern) for pattern in self.match)

    def _one(self, case, calls_before):
        if not self._selected(case):
            return None
        faults = ([case.first] if case.first else []) + [case.fault]
        started = time.time()
        outcome, detail, calls = self._run(case.neighbour, faults)
        case.seconds = time.time() - started
        self._record(case, outcome, detail, calls_before)
        return calls

    def _seconds(self, neighbour, clean, kind):
        for side, method in self.firsts:
            try:
                index = clean[side].index(method)
            except ValueError:
                continue
            first = Fault(side, index, method, 'failure')
            outcome, detail, calls = self._run(neighbour, [first])
            for other in ('source', 'destination'):
                if other == side:
                    start = index + 1
                else:
                    start = _divergence(clean[other], calls[other])
                span = list(range(start, len(calls[other])))
                for pos in self._indexes(len(span), '%s/%s/%s/%s' % (
                        neighbour, side, method, other)):
                    at = span[pos]
                    self._one(Case(self.flavour, neighbour,
                                   Fault(other, at, calls[other][at], kind),
                                   first=first), calls[other][:at])


def configure(dep):
    """Settings of the sweep's deployment (time only, not outcomes).

    nova waits ``[xenserver] introduce_vdi_retry_wait`` (20 s) before
    rescanning for a VDI it did not find, and the extension waits
    ``[xenapi_sr] xapi_retry_interval`` between attempts: both 0 here.
    """
    from nova import conf as nova_conf

    from nova_xenapi_sr import opts
    opts.register_opts(nova_conf.CONF)
    dep.case.flags(introduce_vdi_retry_wait=0, group='xenserver')
    dep.case.flags(xapi_retry_interval=0, migration_locate_timeout=5,
                   group='xenapi_sr')


def deployment(flavour, **kwargs):
    """A :class:`Deployment` (not started) for ``flavour``.

    ``kwargs`` go to ``Deployment`` (``max_concurrent_live_migrations``).
    """
    from nova_xenapi_sr_tools import inprocess
    if flavour == EXTENSION:
        return inprocess.Deployment(drivers=(inprocess.EXTENSION,) * 2,
                                    **kwargs)
    if flavour == STOCK:
        return inprocess.Deployment(drivers=(inprocess.STOCK,) * 2,
                                    stock_registry=True, **kwargs)
    raise ValueError('unknown flavour %r' % flavour)


def run_flavour(flavour, **kwargs):
    """Start a deployment for ``flavour``, run its sweep, stop it."""
    dep = deployment(flavour)
    try:
        dep.setUp()
        configure(dep)
        return Sweep(dep, flavour, **kwargs).run()
    finally:
        dep.cleanUp()


def _divergence(clean, calls):
    for index, (a, b) in enumerate(zip(clean, calls)):
        if a != b:
            return index
    return min(len(clean), len(calls))


def _watch_block_device_info(dep, mutations):
    """Record driver calls that change their ``block_device_info``."""
    import contextlib

    @contextlib.contextmanager
    def watching():
        undo = []
        for host, compute in dep.computes.items():
            drv = compute.driver
            for name in BDI_METHODS:
                original = getattr(drv, name, None)
                if original is None:
                    continue
                try:
                    params = list(inspect.signature(original).parameters)
                except (TypeError, ValueError):
                    continue
                if 'block_device_info' not in params:
                    continue
                position = params.index('block_device_info')
                setattr(drv, name, _watched(original, host, name, position,
                                            mutations))
                undo.append((drv, name))
        try:
            yield
        finally:
            for drv, name in undo:
                delattr(drv, name)
    return watching()


def _watched(original, host, name, position, mutations):
    @functools.wraps(original)
    def call(*args, **kwargs):
        if 'block_device_info' in kwargs:
            bdi = kwargs['block_device_info']
        elif len(args) > position:
            bdi = args[position]
        else:
            bdi = None
        before = copy.deepcopy(bdi)
        try:
            return original(*args, **kwargs)
        finally:
            if bdi != before:
                mutations.append((host, name))
    return call

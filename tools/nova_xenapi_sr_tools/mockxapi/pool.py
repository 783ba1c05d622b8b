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

"""Pools, sessions, tasks and the dispatcher.

A :class:`World` holds every simulated pool and the iSCSI array they
share; one re-entrant world lock serialises database changes (cross-pool
migration touches two pools at once). A :class:`Pool` owns its database,
sessions, call log and injected faults, and :meth:`Pool.handle` is what the
HTTP layer calls for each request.

Order of checks for a call, as in xapi's generated dispatcher
(``gen_server.ml``, ``server_helpers.ml``): method known
(``MESSAGE_METHOD_UNKNOWN``; ``Async.`` is stripped first), argument count
(``MESSAGE_PARAMETER_COUNT_MISMATCH``), every argument unmarshalled (a
wrong type or a constructor record's missing field is ``INTERNAL_ERROR``,
see :mod:`.unmarshal`), session (``SESSION_INVALID``), for ``Async.``
calls whether the message has an async mode (accessors do not:
``["Fault", "No async mode for this operation (rpc: <method>)"]``), then
the handler.
"""

import collections
import contextlib
import copy
import threading
import time
from xml.sax.saxutils import escape as xml_escape
import xmlrpc.client

from oslo_log import log as logging

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import array as array_mod
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import faults
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import unmarshal

LOG = logging.getLogger(__name__)

#: xapi runs at most this many storage migrations at once per host
#: (``xapi_vm_migrate.ml`` ``with_migrate``: a counter in each host's xapi).
MAX_STORAGE_MIGRATIONS = 3

#: How long an SR operation waits for another to finish before it fails
#: with ``OTHER_OPERATION_IN_PROGRESS``: ``helpers.ml`` ``Policy.standard``
#: ``max_total_wait`` (2 hours).
SR_BUSY_TIMEOUT = 7200.0

#: ``db_gc.ml`` ``db_GC_TIMER``: the GC pass runs every 30 seconds.
GC_INTERVAL = 30.0

#: Keys whose values the call log masks (CHAP secrets in device_config).
_SECRET_SUFFIX = 'password'

LOGIN_METHODS = ('session.login_with_password',
                 'session.slave_local_login_with_password')


class Outcome(object):
    """What the HTTP layer must send: a reply or a transport fault."""

    def __init__(self, kind, value=None):
        self.kind = kind  # 'success', 'failure', or a faults.KINDS entry
        self.value = value

    def envelope(self):
        """The reply's struct, marshallable (see :func:`wire`)."""
        return wire(self.payload())

    def payload(self):
        """The reply's struct before :func:`wire`."""
        if self.kind == 'success':
            return {'Status': 'Success', 'Value': self.value}
        if self.kind == 'failure':
            return {'Status': 'Failure',
                    'ErrorDescription': [str(v) for v in self.value]}
        if self.kind == 'malformed':
            return {'Status': 'Success'}
        raise ValueError('%s has no envelope' % self.kind)


class Int32(int):
    """An int sent as an XML-RPC ``<i4>``, not as an int64 string.

    xapi sends its few int32 values (``event.from``'s
    ``valid_ref_counts``) as ``Rpc.Int32``, which ocaml-rpc's
    ``xmlrpc.ml`` writes as ``<i4>``; every int64 field travels as a
    string (:func:`wire`).
    """


def wire(value):
    """Make ``value`` marshallable the way xapi sends it (no None)."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return value
    if type(value) is Int32:
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return value


class Context(object):
    """What a handler sees: its pool, the world, the caller's session."""

    def __init__(self, pool, session, method, task=None):
        self.pool = pool
        self.world = pool.world
        self.db = pool.db
        self.session = session
        self.method = method
        #: the task of an ``Async.`` call, else None
        self.task = task

    def exn_if_cancelling(self):
        """``taskHelper.ml`` ``exn_if_cancelling``: a cancellation point.

        Raises ``TASK_CANCELLED [task]`` when ``task.cancel`` was called
        for this call's task. Call under the world lock.
        """
        if self.task is None or not self.db.has('task', self.task):
            return
        operations = self.db.get('task', self.task)['current_operations']
        if 'cancel' in operations.values():
            raise errors.XapiError(errors.TASK_CANCELLED, self.task)

    def set_cancellable(self, value):
        """``taskHelper.ml`` ``set_cancellable`` / ``set_not_cancellable``."""
        if self.task is not None and self.db.has('task', self.task):
            self.db.get('task', self.task)['allowed_operations'] = (
                ['cancel'] if value else [])

    def sleep_latency(self):
        seconds = self.pool.injector.latency(self.method)
        if seconds:
            time.sleep(seconds)


class Pool(object):
    """One simulated pool (one XAPI endpoint)."""

    def __init__(self, world, name, users=None, relax_xsm_sr_check=True,
                 sr_busy_timeout=SR_BUSY_TIMEOUT):
        self.world = world
        self.sr_busy_timeout = float(sr_busy_timeout)
        #: secrets xapi itself leaves behind, one per CHAP ``PBD.create``,
        #: failed ones included (see ``storage.pbd_create``)
        self.xapi_orphaned_secrets = []
        self.name = name
        self.db = model.Database()
        self.users = dict(users or {'root': 'mock'})
        self.relax_xsm_sr_check = relax_xsm_sr_check
        self.injector = faults.Injector()
        self.url = None
        self.pool_ref = None
        self.master = None
        self._calls = []
        #: indexes in ``_calls`` of xapi's own entries (see :meth:`_log`)
        self._internal = set()
        self._calls_lock = threading.Lock()
        #: ``xapi_local_session.ml``: the sessions of
        #: ``slave_local_login_with_password``, kept outside the database
        #: (``{ref: user}``)
        self.local_sessions = {}
        #: ``xapi_network.ml`` ``counter``: the next ``xapi<N>`` bridge name
        #: ``network.create`` tries
        self.bridge_counter = 0
        self._migrations = collections.Counter()
        self._migrations_lock = threading.Lock()
        #: xenstore of the pool's domains: ``{(dom_id, path): value}``
        self.xenstore = {}
        #: ``xenhost.py network_config`` requests: ``[(cmd, args)]``
        self.network_commands = []
        #: network devices ``network_config`` created (dom0 links/bridges)
        self.net_devices = set()

    # -- call log ---------------------------------------------------------
    def _log(self, method, args, api=False):
        """Record a call; ``api``: one a client made (faults apply).

        The other entries are what xapi does on its own during a call
        (``migrate_send``'s import on the destination, a pool member's
        referral): logged for tests, never counted by fault rules.
        """
        with self._calls_lock:
            self._calls.append((method, tuple(args)))
            if not api:
                self._internal.add(len(self._calls) - 1)

    def api_calls(self):
        """The call log without xapi's own entries.

        These are the calls that fault rules count: ``inject_fault(...,
        after=N)`` is an index in this list.
        """
        with self._calls_lock:
            return [call for i, call in enumerate(self._calls)
                    if i not in self._internal]

    def calls(self):
        """The call log: a list of ``(method, args)``, session excluded.

        Login passwords are logged as ``'***'``, and so is every map value
        whose key ends in ``password`` (CHAP secrets in ``device_config``
        and ``sm_config``), as xapi never logs them.
        """
        with self._calls_lock:
            return list(self._calls)

    def clear_calls(self):
        with self._calls_lock:
            del self._calls[:]
            self._internal.clear()

    # -- sessions ---------------------------------------------------------
    def new_session(self, user, originator=''):
        with self.world.lock:
            return self.db.create('session', this_host=self.master,
                                  originator=originator,
                                  auth_user_name=user,
                                  last_active=_now())

    def expire_session(self, ref):
        with self.world.lock:
            self.db.tables['session'].pop(ref, None)
            self.local_sessions.pop(ref, None)

    def _session_valid(self, ref):
        # session_check.ml check: a database session, or a local one
        # (xapi_local_session.ml local_session_hook); call under the lock
        if self.db.has('session', ref):
            self.db.get('session', ref)['last_active'] = _now()
            return True
        return ref in self.local_sessions

    # -- storage migrations -------------------------------------------------
    @contextlib.contextmanager
    def storage_migration_slot(self, host=None):
        """A slot of ``host``'s xapi (``xapi_vm_migrate.ml`` ``with_migrate``).

        ``TOO_MANY_STORAGE_MIGRATES ["3"]`` when that host runs three.
        """
        with self._migrations_lock:
            if self._migrations[host] >= MAX_STORAGE_MIGRATIONS:
                raise errors.XapiError(errors.TOO_MANY_STORAGE_MIGRATES,
                                       MAX_STORAGE_MIGRATIONS)
            self._migrations[host] += 1
        try:
            yield
        finally:
            with self._migrations_lock:
                self._migrations[host] -= 1

    @property
    def storage_migrations_in_flight(self):
        with self._migrations_lock:
            return sum(self._migrations.values())

    # -- database GC ------------------------------------------------------
    def run_gc(self):
        """One pass of xapi's database GC now (``db_gc.ml`` ``single_pass``).

        Returns ``{class: [refs removed]}``. See :mod:`.gc`.
        """
        from nova_xenapi_sr_tools.mockxapi import gc
        with self.world.lock:
            return gc.single_pass(self.db, time.time())

    # -- dispatch -------------------------------------------------------------
    def handle(self, method, params):
        """Serve one XML-RPC call; return an :class:`Outcome`."""
        params = list(params)
        is_login = method in LOGIN_METHODS
        args = params if is_login else params[1:]
        logged = [_masked(a) for a in args]
        if is_login and len(logged) > 1:
            logged[1] = '***'
        self._log(method, logged, api=True)
        rule = self.injector.pick(method, args)
        if rule is not None:
            LOG.debug('%s: injecting %s into %s', self.name, rule.kind,
                      method)
            if rule.kind == 'failure':
                return Outcome('failure', rule.error)
            if rule.kind == 'session_expiry':
                if params and not is_login:
                    self.expire_session(params[0])
            elif rule.kind == 'timeout':
                # served, then the reply is lost (the HTTP layer drops it)
                self._serve(method, params, is_login, args)
                return Outcome('drop')
            else:
                return Outcome(rule.kind)
        return self._serve(method, params, is_login, args)

    def _serve(self, method, params, is_login, args):
        try:
            if is_login:
                return Outcome('success', self._login(method, args))
            is_async = method.startswith('Async.')
            # server_helpers.ml sync_ty_and_maybe_remove_prefix, then the
            # generated dispatcher's match on the name
            msg = api.resolve(method[len('Async.'):] if is_async
                              else method)
            if not params:
                # gen_server.ml: no argument list matches, and "received"
                # is the count less the session: -1
                raise errors.XapiError(
                    errors.MESSAGE_PARAMETER_COUNT_MISMATCH, msg.name,
                    msg.min_args, -1)
            args = api.check_arity(msg, args)
            # gen_server.ml: unmarshalling (session ref first) precedes
            # Session_check.check
            session = unmarshal.check('string', params[0])
            args = api.unmarshal_args(msg, args)
            with self.world.lock:
                if not self._session_valid(session):
                    raise errors.XapiError(errors.SESSION_INVALID, session)
            if is_async:
                if not api.supports_async(msg):
                    raise api.no_async_mode(msg)
                return Outcome('success',
                               self._start_task(msg, session, args))
            return Outcome('success', self._run(msg, session, args))
        except errors.XapiError as exc:
            return Outcome('failure', exc.description)
        except Exception as exc:  # a mock bug must not look like success
            LOG.exception('%s: %s failed', self.name, method)
            return Outcome('failure', [errors.INTERNAL_ERROR,
                                       '%s: %s' % (type(exc).__name__, exc)])

    def _run(self, msg, session, args, task=None):
        ctx = Context(self, session, msg.name, task)
        if msg.locking == api.LOCK_SELF:
            return msg.func(ctx, *args)
        ctx.sleep_latency()
        with self.world.lock:
            return msg.func(ctx, *args)

    def _login(self, method, args):
        if method == 'session.login_with_password':
            # datamodel.ml: version and originator have defaults, so the
            # generated dispatcher takes two arguments or more and never
            # reads past the fourth
            if len(args) < 2:
                raise errors.XapiError(
                    errors.MESSAGE_PARAMETER_COUNT_MISMATCH, method, 2,
                    len(args))
            args = unmarshal.args(['string'] * 4, args[:4])
        else:
            # slave_local_login_with_password: uname and pwd, no defaults
            if len(args) != 2:
                raise errors.XapiError(
                    errors.MESSAGE_PARAMETER_COUNT_MISMATCH, method, 2,
                    len(args))
            args = unmarshal.args(['string'] * 2, args)
        user, password = args[0], args[1]
        originator = args[3] if len(args) > 3 else ''
        if self.users.get(user) != password:
            # xapi_session.ml login_with_password / slave_local_login_
            # with_password: do_local_auth fails with PAM's message;
            # SESSION_AUTHENTICATION_FAILED [uname, msg] (xapi also waits
            # 5 seconds first, which the mock does not)
            raise errors.XapiError(errors.SESSION_AUTHENTICATION_FAILED,
                                   user, 'Authentication failure')
        if method != 'session.login_with_password':
            # xapi_local_session.ml create: not in the database
            ref = model.new_ref()
            with self.world.lock:
                self.local_sessions[ref] = user
            return ref
        return self.new_session(user, originator)

    # -- tasks ----------------------------------------------------------------
    def _start_task(self, msg, session, args):
        with self.world.lock:
            task = self.db.create('task', name_label='Async.%s' % msg.name,
                                  created=_now(), resident_on=self.master,
                                  allowed_operations=['cancel'])

        def run():
            try:
                result = self._run(msg, session, args, task)
                update = {'status': 'success', 'progress': '1.0',
                          'result': task_result(result)}
            except errors.XapiError as exc:
                # taskHelper.ml: a task that stopped at a cancellation
                # point ends "cancelled"
                status = ('cancelled' if exc.code == errors.TASK_CANCELLED
                          else 'failure')
                update = {'status': status, 'error_info':
                          exc.description}
            except Exception as exc:
                LOG.exception('%s: Async.%s failed', self.name, msg.name)
                update = {'status': 'failure', 'error_info': [
                    errors.INTERNAL_ERROR, str(exc)]}
            update['finished'] = _now()
            with self.world.lock:
                if self.db.has('task', task):
                    rec = self.db.get('task', task)
                    if rec['status'] == 'pending':
                        rec.update(update)
                        # a task.destroy of the pending task stays marked
                        # for the GC (db_gc_util.ml timeout_tasks)
                        rec['current_operations'] = {
                            k: v for k, v in rec['current_operations'].items()
                            if v == 'destroy'}
                        rec['allowed_operations'] = []

        thread = threading.Thread(target=run, name='task-%s' % task)
        thread.daemon = True
        thread.start()
        return task

    # -- inspection ------------------------------------------------------
    def inspect(self):
        """A plain-dict snapshot of this pool for leak checks.

        ``{'SR': {ref: record}, 'PBD': ..., 'VDI': ..., 'VBD': ...,
        'VM': ..., 'VIF': ..., 'network': ..., 'secret': ..., 'task': ...,
        'host': ..., 'sessions': <count>, 'dangling_VBDs': [vbd ref,
        ...], 'xapi_orphaned_secrets': [secret ref, ...]}``; records are
        as ``get_record`` returns them. ``dangling_VBDs`` are VBDs whose
        VDI no longer exists (``SR.forget`` leaves them until the GC, as
        xapi does); ``xapi_orphaned_secrets`` the secrets in ``secret``
        that xapi itself orphaned (one per CHAP ``PBD.create``, failed ones
        included), not a client's leak. Run :meth:`run_gc` first for the
        state after xapi's next GC pass.
        """
        with self.world.lock:
            view = collections.OrderedDict()
            for cls in ('host', 'SR', 'PBD', 'VDI', 'VBD', 'VM', 'VIF',
                        'network', 'PIF', 'secret', 'task'):
                view[cls] = dict(self.db.export_all(cls))
            view['sessions'] = len(self.db.tables['session'])
            view['dangling_VBDs'] = dangling_vbds(view)
            view['xapi_orphaned_secrets'] = sorted(
                ref for ref in self.xapi_orphaned_secrets
                if ref in view['secret'])
            return copy.deepcopy(view)


class Member(object):
    """The endpoint of a pool member (a host that is not the master).

    As xapi on a pool member (``xapi_session.ml``, ``login_with_password``
    raises it when ``Pool_role.is_slave``), a login fails with ``HOST_IS_SLAVE
    [master address]``; every other call finds no session there
    (``SESSION_INVALID``). Calls are logged like a pool's.
    """

    def __init__(self, pool, host_ref):
        self.pool = pool
        self.host_ref = host_ref
        self.name = '%s/%s' % (pool.name,
                               pool.db.get('host', host_ref)['name_label'])
        self._calls = []
        self._calls_lock = threading.Lock()

    def calls(self):
        with self._calls_lock:
            return list(self._calls)

    def handle(self, method, params):
        params = list(params)
        logged = list(params if method in LOGIN_METHODS else params[1:])
        if method in LOGIN_METHODS and len(logged) > 1:
            logged[1] = '***'
        with self._calls_lock:
            self._calls.append((method, tuple(logged)))
        if method == 'session.login_with_password':
            with self.pool.world.lock:
                master = self.pool.db.get('host', self.pool.master)
                address = master['address']
            return Outcome('failure', [errors.HOST_IS_SLAVE, address])
        return Outcome('failure', [errors.SESSION_INVALID,
                                   params[0] if params else ''])


def _masked(value):
    """A copy of a call argument with CHAP secrets replaced by ``***``."""
    if isinstance(value, dict):
        return {k: ('***' if str(k).endswith(_SECRET_SUFFIX) else
                    _masked(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(v) for v in value)
    return value


def dangling_vbds(view):
    """Refs of the VBDs in an :meth:`Pool.inspect` view whose VDI is gone.

    A VBD whose ``VDI`` is a ref (not ``OpaqueRef:NULL``) that is not in
    ``view['VDI']``, sorted.
    """
    return sorted(ref for ref, rec in view['VBD'].items()
                  if rec['VDI'] != model.NULL_REF and
                  rec['VDI'] not in view['VDI'])


def task_result(value):
    """A task's ``result``: the XML-RPC ``<value>`` of the return value.

    Like xapi, a string is written without a ``<string>`` element.
    """
    value = wire(value)
    if value == '':
        return ''
    if isinstance(value, str):
        return '<value>%s</value>' % xml_escape(value)
    text = xmlrpc.client.dumps((value,), methodresponse=True)
    start = text.index('<value>')
    end = text.rindex('</value>') + len('</value>')
    return text[start:end]


def _now():
    return time.strftime('%Y%m%dT%H:%M:%SZ', time.gmtime())


class World(object):
    """Every pool, the shared iSCSI array, the copies made."""

    def __init__(self):
        self.lock = threading.RLock()
        self.array = array_mod.IscsiArray()
        self.pools = collections.OrderedDict()
        self.copies = []
        self._sr_locks = {}
        self._sr_locks_guard = threading.Lock()
        self._sr_busy = {}
        self.sr_journal = []

    def add_pool(self, name, **kwargs):
        if name in self.pools:
            raise ValueError('pool %s already exists' % name)
        pool = self.pools[name] = Pool(self, name, **kwargs)
        return pool

    def pool_of_host(self, host_ref):
        for pool in self.pools.values():
            if pool.db.has('host', host_ref):
                return pool
        return None

    def vm_operation(self, vm_ref, operation, timeout=SR_BUSY_TIMEOUT):
        """``message_forwarding.ml`` ``with_vm_operation``: one at a time.

        A second migration of the same VM waits for the first, and after
        ``timeout`` fails with ``OTHER_OPERATION_IN_PROGRESS ["VM", vm,
        op]``.
        """
        return self.sr_operation(vm_ref, operation, timeout, cls='VM')

    @contextlib.contextmanager
    def sr_operation(self, sr_ref, operation, timeout=SR_BUSY_TIMEOUT,
                     cls='SR'):
        """Serialise SR operations (scan, forget, plug, unplug) per SR.

        ``message_forwarding.ml`` ``with_sr_marked``: an operation waits
        while another marks the SR and, after ``timeout`` seconds, fails
        with ``OTHER_OPERATION_IN_PROGRESS ["SR", sr, op]`` naming the
        operation in progress (``xapi_sr_operations.ml``
        ``check_parallel_ops``). Each operation is journalled as
        ``(sr_ref, operation, start, end)`` in :attr:`sr_journal`
        (monotonic clock), so tests can check that operations on one SR
        never overlapped.
        """
        with self._sr_locks_guard:
            lock = self._sr_locks.setdefault((cls, sr_ref),
                                             threading.Lock())
        if not lock.acquire(timeout=max(float(timeout), 0.0)):
            with self._sr_locks_guard:
                busy = self._sr_busy.get(sr_ref, operation)
            raise errors.XapiError(errors.OTHER_OPERATION_IN_PROGRESS,
                                   cls, sr_ref, busy)
        try:
            with self._sr_locks_guard:
                self._sr_busy[sr_ref] = operation
            start = time.monotonic()
            try:
                yield
            finally:
                with self._sr_locks_guard:
                    self._sr_busy.pop(sr_ref, None)
                    if cls == 'SR':
                        self.sr_journal.append(
                            (sr_ref, operation, start, time.monotonic()))
        finally:
            lock.release()


# -- session and task messages ------------------------------------------------

@api.message('session.logout', 0)
def _logout(ctx):
    # xapi_session.ml logout -> destroy_db_session: the database session
    # goes (a failure to destroy it is ignored, so a local session stays)
    ctx.db.tables['session'].pop(ctx.session, None)
    return ''


@api.message('session.local_logout', 0)
def _local_logout(ctx):
    # xapi_session.ml local_logout -> xapi_local_session.ml destroy: only
    # the local session table; a database session stays valid
    ctx.pool.local_sessions.pop(ctx.session, None)
    return ''


@api.message('session.get_this_host', 1, kinds=('string',))
def _get_this_host(ctx, ref):
    # gen_db_actions.ml field getter of session.this_host: HANDLE_INVALID
    # ["session", ref] for a ref not in the database (a local session too)
    return ctx.db.get('session', ref)['this_host']


@api.message('task.create', 2, kinds=('string', 'string'))
def _task_create(ctx, label, description):
    # xapi_task.ml create: a new pending task in the database
    return ctx.db.create('task', name_label=label,
                         name_description=description, created=_now(),
                         resident_on=ctx.pool.master)


@api.message('task.destroy', 1, kinds=('string',))
def _task_destroy(ctx, ref):
    # xapi_task.ml destroy: a completed task goes; a pending one is only
    # marked (current_operations "task" -> destroy) and the database GC
    # destroys it once it completes (db_gc_util.ml timeout_tasks)
    rec = ctx.db.get('task', ref)
    if rec['status'] in ('success', 'failure', 'cancelled'):
        ctx.db.destroy('task', ref)
    else:
        rec['current_operations']['task'] = 'destroy'
    return ''


@api.message('task.cancel', 1, kinds=('string',))
def _task_cancel(ctx, ref):
    # xapi_task.ml cancel: only marks the task (current_operations); the
    # operation stops at its next cancellation point with TASK_CANCELLED
    # (taskHelper.ml exn_if_cancelling) or, past its point of no return
    # (set_not_cancellable), finishes as if never cancelled
    rec = ctx.db.get('task', ref)
    if rec['status'] == 'pending':
        rec['current_operations'] = {ctx.session: 'cancel'}
    return ''

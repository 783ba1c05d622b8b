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

"""The XAPI method table: generic per-class messages and a registry.

Specific messages register with :func:`message`, giving their arity
(arguments after the session ref; ``max`` for optional trailing ones), how
they lock, and how xapi unmarshals their arguments (``kinds``, see
:mod:`.unmarshal`). Every class also answers the generic messages xapi
generates for it: ``get_record``, ``get_all``, ``get_all_records``,
``get_all_records_where``, ``get_by_uuid``, ``get_by_name_label`` (classes
with a name), ``get_<field>``, and for writable fields ``set_<field>``,
``add_to_<field>`` / ``remove_from_<field>`` (maps). Anything else is
``MESSAGE_METHOD_UNKNOWN`` (see :func:`resolve`).
"""

import collections

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import unmarshal
from nova_xenapi_sr_tools.mockxapi import where

#: How a handler is run. ``world``: under the world lock (latency before);
#: ``self``: the handler locks and applies latency itself.
LOCK_WORLD = 'world'
LOCK_SELF = 'self'

Message = collections.namedtuple(
    'Message', ['name', 'func', 'min_args', 'max_args', 'locking',
                'session', 'kinds'])

_REGISTRY = {}


def message(name, min_args, max_args=None, locking=LOCK_WORLD,
            session=True, kinds=None):
    """Register ``func(ctx, *args)`` as the handler of ``name``.

    ``max_args`` greater than ``min_args`` means the trailing parameters
    have defaults in xapi's datamodel. ``kinds``: how each argument is
    unmarshalled (:func:`.unmarshal.check`); None checks none.
    """
    def decorate(func):
        _REGISTRY[name] = Message(name, func, min_args,
                                  min_args if max_args is None else max_args,
                                  locking, session, tuple(kinds or ()))
        return func
    return decorate


def _generic(cls, msg):
    """``(arity, handler, kinds)`` of a generated message, or None."""
    fields = model.fields_of(cls)
    db = lambda ctx: ctx.db  # noqa: E731
    ref = ('string',)

    if msg == 'get_record':
        return 1, lambda ctx, ref: db(ctx).export(cls, ref), ref
    if msg == 'get_all':
        # db_actions get_all -> db_cache_impl.ml read_refs: a fold over
        # the table (a map ordered by ref string) that conses, so the refs
        # come in descending ref order
        return 0, lambda ctx: model.xapi_order(db(ctx).refs(cls)), ()
    if msg == 'get_all_records':
        # get_all_records_where with expr True: read_records_where, same
        # order as get_all
        return 0, lambda ctx: _in_xapi_order(db(ctx).export_all(cls)), ()
    if msg == 'get_all_records_where':
        def where_(ctx, expr):
            # db_cache_impl.ml read_records_where ->
            # find_refs_with_filter_internal: the same fold and cons, so
            # matches come in descending ref order; a caller taking the
            # "first" match (nova's dom0 lookup by domid "0") gets the
            # record with the greatest ref, whichever was created first
            pred = where.compile_expr(expr, fields)
            records = _in_xapi_order(db(ctx).export_all(cls))
            return collections.OrderedDict(
                (ref, rec) for ref, rec in records.items() if pred(rec))
        return 1, where_, ('string',)
    if msg == 'get_by_uuid':
        # db_cache_impl.ml db_get_by_uuid: UUID_INVALID [cls, uuid]
        # (Read_missing_uuid, exnHelper.ml)
        return 1, lambda ctx, value: db(ctx).by_uuid(cls, value), \
            ('string',)
    if msg == 'get_by_name_label' and 'name_label' in fields:
        # db_cache_impl.ml db_get_by_name_label -> read_field_where: every
        # match (none is no error), in descending ref order
        return 1, lambda ctx, label: model.xapi_order(
            db(ctx).find(cls, name_label=label)), ('string',)
    if msg.startswith('get_') and msg[4:] in fields:
        # gen_db_actions.ml field getter: HANDLE_INVALID [cls, ref] for a
        # ref not in the table (Database.get)
        name = msg[4:]
        return 1, lambda ctx, ref: db(ctx).field(cls, ref, name), ref
    if msg.startswith('set_') and msg[4:] in model.WRITABLE & fields:
        # gen_db_actions.ml field setter; the value's type was checked
        # when the dispatcher unmarshalled it (gen_server.ml, before the
        # session), so a wrong type never gets here
        name = msg[4:]

        def set_(ctx, ref, value):
            db(ctx).get(cls, ref)[name] = value
            return ''
        return 2, set_, ('string', model.kind_of(cls, name))
    if msg.startswith('add_to_') and msg[7:] in model.WRITABLE:
        name = msg[7:]
        if model.is_map(cls, name):
            def add_to(ctx, ref, key, value):
                # db_cache_impl.ml process_structured_field AddMapLegacy
                # (the API's add_to_ on the master): a missing row is
                # HANDLE_INVALID; db_cache_types.ml add_to_map: an empty
                # key is Empty_key_in_map, a key already there (whatever
                # its value) Duplicate_key [cls, field, ref, key]
                rec = db(ctx).get(cls, ref)
                if not key:
                    raise errors.XapiError(errors.INTERNAL_ERROR,
                                           'Db_exn.Empty_key_in_map')
                if key in rec[name]:
                    raise errors.XapiError('MAP_DUPLICATE_KEY', cls, name,
                                           ref, key)
                rec[name][key] = value
                return ''
            return 3, add_to, ('string', 'string', 'string')
    if msg.startswith('remove_from_') and msg[12:] in model.WRITABLE:
        name = msg[12:]
        if model.is_map(cls, name):
            def remove_from(ctx, ref, key):
                # db_cache_types.ml remove_from_map: a key that is not
                # there is no error
                db(ctx).get(cls, ref)[name].pop(key, None)
                return ''
            return 2, remove_from, ('string', 'string')
    return None


def _in_xapi_order(records):
    """``{ref: record}`` reordered as xapi's table folds give them."""
    return collections.OrderedDict(
        (ref, records[ref]) for ref in model.xapi_order(records))


def resolve(method):
    """Return the :class:`Message` for ``method``.

    :raises XapiError: ``MESSAGE_METHOD_UNKNOWN [method]``.
    """
    found = _REGISTRY.get(method)
    if found is not None:
        return found
    cls, _, msg = method.partition('.')
    if cls in model.SCHEMA and msg:
        generic = _generic(cls, msg)
        if generic is not None:
            arity, func, kinds = generic
            return Message(method, func, arity, arity, LOCK_WORLD, True,
                           kinds)
    raise errors.XapiError(errors.MESSAGE_METHOD_UNKNOWN, method)


#: Accessor prefixes: xapi generates no ``Async.`` form for field getters
#: and setters, nor for the class-wide ``get_*`` messages.
_NO_ASYNC_PREFIXES = ('get_', 'set_', 'add_to_', 'remove_from_')


def supports_async(msg):
    """Whether ``Async.<msg.name>`` exists (messages, not accessors).

    xapi's dispatcher strips ``Async.``, checks arity and session, and then
    answers an accessor with ``["Fault", "No async mode for this operation
    (rpc: <method>)"]`` (``server_helpers.do_dispatch``).
    """
    return not msg.name.partition('.')[2].startswith(_NO_ASYNC_PREFIXES)


def no_async_mode(msg):
    """The failure xapi answers ``Async.<accessor>`` with."""
    return errors.XapiError('Fault', 'No async mode for this operation '
                            '(rpc: %s)' % msg.name)


def check_arity(msg, args):
    """The arguments the handler takes; ``MESSAGE_PARAMETER_COUNT_MISMATCH``.

    ``gen_server.ml``: a message without defaults matches an exact list
    of arguments; one whose trailing parameters have defaults matches
    ``a :: b :: default_args``, so any count from the mandatory ones up
    is accepted and arguments past the datamodel's are never read (the
    mock drops those past ``max_args``). A mismatch is ``[method,
    mandatory count, count]`` (``parameter_count_mismatch_failure``,
    ``count_mandatory_message_parameters``); ``args`` and both counts
    exclude the session ref.
    """
    count = len(args)
    has_defaults = msg.max_args > msg.min_args
    if count < msg.min_args or (count > msg.max_args and not has_defaults):
        raise errors.XapiError(errors.MESSAGE_PARAMETER_COUNT_MISMATCH,
                               msg.name, msg.min_args, count)
    return list(args[:msg.max_args])


def unmarshal_args(msg, args):
    """``gen_server.ml``: every argument through its ``*_of_rpc``.

    Done after the arity check and before the session check; a value of
    the wrong type is xapi's ``INTERNAL_ERROR [Failure(...)]`` (see
    :mod:`.unmarshal`). Returns the arguments as the handler takes them.
    """
    return unmarshal.args(msg.kinds, args)


#: Specific messages that change nothing (``event.from`` reads the
#: database: ``xapi_event.ml`` ``from`` keeps its subscription for the
#: call only).
_READ_ONLY = frozenset(('event.from',))


def read_only(method):
    """Whether ``method`` changes no object of the pool.

    A session's login and logout, a generic accessor (``<class>.get_*``)
    or ``event.from``: what a read-only client such as the audit may call.
    """
    if method in ('session.login_with_password', 'session.logout'):
        return True
    if method in _READ_ONLY:
        return True
    cls, _, msg = method.partition('.')
    return cls in model.SCHEMA and msg.startswith('get_')


def registered():
    """Names of all specific (non-generic) messages."""
    return sorted(_REGISTRY)

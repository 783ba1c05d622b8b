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
(arguments after the session ref; ``max`` for optional trailing ones) and
how they lock. Every class also answers the generic messages xapi
generates for it: ``get_record``, ``get_all``, ``get_all_records``,
``get_all_records_where``, ``get_by_uuid``, ``get_by_name_label`` (classes
with a name), ``get_<field>``, and for writable fields ``set_<field>``,
``add_to_<field>`` / ``remove_from_<field>`` (maps). Anything else is
``MESSAGE_METHOD_UNKNOWN`` (see :func:`resolve`).
"""

import collections

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import where

#: How a handler is run. ``world``: under the world lock (latency before);
#: ``self``: the handler locks and applies latency itself.
LOCK_WORLD = 'world'
LOCK_SELF = 'self'

Message = collections.namedtuple(
    'Message', ['name', 'func', 'min_args', 'max_args', 'locking',
                'session'])

_REGISTRY = {}


def message(name, min_args, max_args=None, locking=LOCK_WORLD,
            session=True):
    """Register ``func(ctx, *args)`` as the handler of ``name``."""
    def decorate(func):
        _REGISTRY[name] = Message(name, func, min_args,
                                  min_args if max_args is None else max_args,
                                  locking, session)
        return func
    return decorate


def _generic(cls, msg):
    fields = model.fields_of(cls)
    db = lambda ctx: ctx.db  # noqa: E731

    if msg == 'get_record':
        return 1, lambda ctx, ref: db(ctx).export(cls, ref)
    if msg == 'get_all':
        # db_actions get_all -> db_cache_impl.ml read_refs: a fold over
        # the table (a map ordered by ref string) that conses, so the refs
        # come in descending ref order
        return 0, lambda ctx: model.xapi_order(db(ctx).refs(cls))
    if msg == 'get_all_records':
        # get_all_records_where with expr True: read_records_where, same
        # order as get_all
        return 0, lambda ctx: _in_xapi_order(db(ctx).export_all(cls))
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
        return 1, where_
    if msg == 'get_by_uuid':
        # db_cache_impl.ml db_get_by_uuid: UUID_INVALID [cls, uuid]
        # (Read_missing_uuid, exnHelper.ml)
        return 1, lambda ctx, value: db(ctx).by_uuid(cls, value)
    if msg == 'get_by_name_label' and 'name_label' in fields:
        # db_cache_impl.ml db_get_by_name_label -> read_field_where: every
        # match (none is no error), in descending ref order
        return 1, lambda ctx, label: model.xapi_order(
            db(ctx).find(cls, name_label=label))
    if msg.startswith('get_') and msg[4:] in fields:
        name = msg[4:]
        return 1, lambda ctx, ref: db(ctx).field(cls, ref, name)
    if msg.startswith('set_') and msg[4:] in model.WRITABLE & fields:
        name = msg[4:]

        def set_(ctx, ref, value):
            rec = db(ctx).get(cls, ref)
            if type(value) is not type(model.SCHEMA[cls][name]):
                raise errors.XapiError(errors.FIELD_TYPE_ERROR, name)
            rec[name] = value
            return ''
        return 2, set_
    if msg.startswith('add_to_') and msg[7:] in model.WRITABLE:
        name = msg[7:]
        if model.is_map(cls, name):
            def add_to(ctx, ref, key, value):
                rec = db(ctx).get(cls, ref)
                if key in rec[name]:
                    raise errors.XapiError('MAP_DUPLICATE_KEY', cls, name,
                                           ref, key)
                rec[name][key] = value
                return ''
            return 3, add_to
    if msg.startswith('remove_from_') and msg[12:] in model.WRITABLE:
        name = msg[12:]
        if model.is_map(cls, name):
            def remove_from(ctx, ref, key):
                db(ctx).get(cls, ref)[name].pop(key, None)
                return ''
            return 2, remove_from
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
            arity, func = generic
            return Message(method, func, arity, arity, LOCK_WORLD, True)
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
    """Raise ``MESSAGE_PARAMETER_COUNT_MISMATCH`` for a wrong count.

    ``args`` excludes the session ref, and so do both counts reported,
    as in xapi.
    """
    count = len(args)
    if msg.min_args <= count <= msg.max_args:
        return
    expected = msg.min_args if count < msg.min_args else msg.max_args
    raise errors.XapiError(errors.MESSAGE_PARAMETER_COUNT_MISMATCH,
                           msg.name, expected, count)


def registered():
    """Names of all specific (non-generic) messages."""
    return sorted(_REGISTRY)

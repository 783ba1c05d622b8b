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

"""``event.from(classes, token, timeout)`` from the beginning.

xapi (``xapi_event.ml`` ``from`` / ``from_inner``) answers with a struct
``{"events": [...], "valid_ref_counts": {class: count}, "token": "..."}``.
From the empty token (the beginning) every current object of the classes
asked is one ``add`` event ``{"id", "timestamp", "class", "operation",
"ref", "snapshot"}`` whose snapshot is the object's record as
``get_record`` returns it. A bulk reader can so read several classes in
one call; it needs only the read-only role (``datamodel.ml``, ``Event``:
``_R_ALL``).

The mock keeps no database generations (xapi's ``Db_cache_types`` stats):
it serves the beginning only, that is ``""`` and any token that parses to
it (``0,0``). Any other well-formed token is ``NOT_IMPLEMENTED``, a mock
limitation, not xapi's answer. It numbers the events 1..N in the order it
sends them (their ``id``) and returns the token of generation N.
"""

import time

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import pool as pool_mod

EVENT_FROM_TOKEN_PARSE_FAILURE = 'EVENT_FROM_TOKEN_PARSE_FAILURE'
NOT_IMPLEMENTED = 'NOT_IMPLEMENTED'

#: The mock's classes that generate events, in xapi's table order
#: (``datamodel.ml`` ``all_system``, the objects with ``gen_events``;
#: ``session`` and ``secret`` have none).
EVENT_CLASSES = ('task', 'pool', 'VM', 'host', 'network', 'VIF', 'PIF',
                 'SM', 'SR', 'VDI', 'VBD', 'PBD', 'console', 'PCI', 'PGPU',
                 'GPU_group')

#: ``from_inner`` waits this long between looks at the database while
#: nothing matches (``Thread.delay 0.05``).
POLL_SECONDS = 0.05

# OCaml's Int64.of_string (runtime ints.c parse_sign_and_base,
# parse_intnat): a sign, a 0x/0o/0b/0u prefix, a digit, then digits or
# underscores
_BASES = {'': 10, 'x': 16, 'o': 8, 'b': 2, 'u': 10}
_DIGITS = {10: frozenset('0123456789'), 8: frozenset('01234567'),
           2: frozenset('01'), 16: frozenset('0123456789abcdefABCDEF')}


def _int64(text):
    """OCaml's ``Int64.of_string``; ValueError where it fails."""
    sign, rest = '', text
    if rest[:1] in ('-', '+'):
        sign, rest = rest[0], rest[1:]
    kind = ''
    if len(rest) > 1 and rest[0] == '0' and rest[1] in 'xXoObBuU':
        kind, rest = rest[1].lower(), rest[2:]
    digits = _DIGITS[_BASES[kind]]
    if not rest or rest[0] not in digits or \
            not set(rest) <= digits | {'_'}:
        raise ValueError(text)
    value = int(rest.replace('_', ''), _BASES[kind])
    if kind == '':
        # signed decimal: the int64 range
        if value > (1 << 63) - (0 if sign == '-' else 1):
            raise ValueError(text)
    elif value >= 1 << 64:
        raise ValueError(text)
    elif value >= 1 << 63:
        value -= 1 << 64    # the other forms wrap, as in OCaml
    return -value if sign == '-' else value


def parse_token(token):
    """``xapi_event.ml`` ``Token.of_string``: ``(generation, messages)``.

    ``""`` is ``(0, 0)``; else two int64s joined by one comma.

    :raises XapiError: ``EVENT_FROM_TOKEN_PARSE_FAILURE [token]``.
    """
    parts = token.split(',')
    if parts == ['']:
        return 0, 0
    try:
        if len(parts) != 2:
            raise ValueError(token)
        return _int64(parts[0]), _int64(parts[1])
    except ValueError:
        raise errors.XapiError(EVENT_FROM_TOKEN_PARSE_FAILURE, token)


def token_string(generation, message_generation=0):
    """``xapi_event.ml`` ``Token.to_string``: zero-padded, comparable."""
    return '%020d,%020d' % (generation, message_generation)


def parse_subscription(text):
    """``xapi_event.ml`` ``Subscription.of_string``, classes lower-cased.

    Returns ``('all',)``, ``('class', cls)`` or ``('object', cls, ref)``.
    """
    if text == '*':
        return ('all',)
    cls, slash, ref = text.partition('/')
    if slash:
        return ('object', cls.lower(), ref)
    return ('class', cls.lower())


def _table_matches(subs, table):
    """``xapi_event.ml`` ``Subscription.table_matches``."""
    table = table.lower()
    return any(sub[0] == 'all' or sub[1] == table for sub in subs)


def _object_matches(subs, table, ref):
    """``xapi_event.ml`` ``Subscription.object_matches``."""
    table = table.lower()
    return any(sub[0] == 'all' or (sub[1] == table and
                                   (sub[0] == 'class' or sub[2] == ref))
               for sub in subs)


def _events(db, subs):
    """The ``add`` events of every current object ``subs`` select.

    ``from_inner`` folds over its tables in datamodel order and, in each,
    over the rows in ascending ref order (``StringMap.fold``); its two
    conses keep that order.
    """
    events = []
    for cls in EVENT_CLASSES:
        if not _table_matches(subs, cls):
            continue
        records = db.export_all(cls)
        for ref in sorted(records):
            if _object_matches(subs, cls, ref):
                events.append({'id': str(len(events) + 1),
                               'timestamp': '0.0',
                               'class': cls.lower(),
                               'operation': 'add',
                               'ref': ref,
                               'snapshot': records[ref]})
    return events


def _valid_ref_counts(db):
    """Every table's row count, lower-cased, as ``<i4>`` values.

    xapi counts every table of its database, asked for or not
    (``from_inner``: ``TableSet.fold``).
    """
    return {cls.lower(): pool_mod.Int32(len(rows))
            for cls, rows in db.tables.items()}


def _timeout(value):
    # the generated unmarshaller's float_of_rpc takes a double, an int or
    # a string float_of_string reads
    if isinstance(value, bool):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'timeout')
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'timeout')


@api.message('event.from', 3, locking=api.LOCK_SELF)
def event_from(ctx, classes, token, timeout):
    """``xapi_event.ml`` ``from``: the token, then the subscriptions."""
    if not isinstance(classes, list) or not all(
            isinstance(c, str) for c in classes):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'classes')
    if not isinstance(token, str):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'token')
    seconds = _timeout(timeout)
    start = parse_token(token)
    subs = [parse_subscription(c) for c in classes]
    if start != (0, 0):
        raise errors.XapiError(
            NOT_IMPLEMENTED, 'event.from from token %s: the mock XAPI '
            'serves event.from from the beginning ("") only' % token)
    ctx.sleep_latency()
    deadline = time.monotonic() + seconds
    while True:
        # from / from_inner: an empty batch is not returned before the
        # deadline; the database is looked at again (wait2, then
        # Thread.delay 0.05)
        with ctx.world.lock:
            events = _events(ctx.db, subs)
            counts = _valid_ref_counts(ctx.db)
        remaining = deadline - time.monotonic()
        if events or not remaining > 0:
            break
        time.sleep(min(POLL_SECONDS, remaining))
    return {'events': events, 'valid_ref_counts': counts,
            'token': token_string(len(events))}

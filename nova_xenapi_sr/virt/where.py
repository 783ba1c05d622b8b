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

"""Building XAPI ``get_all_records_where`` expressions safely.

Values come from connection data (volume ids end up in legacy SR names),
so they are checked before they are quoted into an expression: a value that
could change the expression's meaning is refused, never escaped.
"""

import re

#: Characters a quoted value may contain: uuids, legacy SR names, refs.
#: (Matched whole, with ``fullmatch``: ``$`` would accept a final newline.)
_SAFE_VALUE = re.compile(r'[A-Za-z0-9:._-]+')


def is_safe(value):
    """Whether ``str(value)`` may be quoted into a where expression."""
    return bool(_SAFE_VALUE.fullmatch(str(value)))


class UnsafeWhereValue(ValueError):
    """A value that cannot be quoted into a XAPI where expression."""


def field_in(field, values):
    """Return ``field "f" = "v1" or field "f" = "v2" ...``.

    :param field: a XAPI record field name (``uuid``, ``SR``, ...).
    :param values: an iterable of at least one value; duplicates are
        dropped, order is kept so the expression is deterministic.
    :raises UnsafeWhereValue: a value holds characters that are not part of
        any uuid or reference, or no value was given.
    """
    unique = []
    for value in values:
        value = str(value)
        if not _SAFE_VALUE.fullmatch(value):
            raise UnsafeWhereValue(
                'refusing to query XAPI for %s %r: unexpected characters'
                % (field, value))
        if value not in unique:
            unique.append(value)
    if not unique:
        raise UnsafeWhereValue('no %s value to query XAPI for' % field)
    return ' or '.join('field "%s" = "%s"' % (field, value)
                       for value in unique)

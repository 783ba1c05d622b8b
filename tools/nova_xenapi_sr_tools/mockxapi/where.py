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

"""xapi's ``get_all_records_where`` expression language.

Grammar and lexer as in xapi's ``db_filter_parse.mly`` and
``db_filter_lex.mll``::

    expr    := expr ("and" | "or") expr | "not" expr | "(" expr ")"
             | "true" | "false" | value "=" value
    value   := "field" STRING | STRING
    STRING  := '"' any characters but '"' '"'      (no escapes)

* Precedence: ``%right LNOT`` is declared before ``%left LAND LOR``, so
  ``not`` binds *loosest*: it takes everything to its right up to a
  closing parenthesis or the end (``not A and B`` means ``not (A and B)``,
  ``A and not B or C`` means ``A and not (B or C)``). ``and`` and ``or``
  share one precedence and associate to the left (``a or b and c`` means
  ``(a or b) and c``).
* The only operator is ``=`` (there is no ``<>``); a string runs to the
  next ``"``, a backslash is an ordinary character. Whitespace is space,
  tab and newline. Keywords are matched where they start, as the lexer
  does (``field"a"`` is ``field "a"``).
* Fields are named as in xapi's database: a namespaced field is spelled
  with ``__`` (``name__label``, ``VCPUs__max``, ``memory__static_max``,
  ``PV__args``, ``HVM__boot_policy``, ``API_version__major``,
  ``qos__algorithm_type``) and answers the record's ``name_label``, ...;
  the API spelling ``name_label`` is not a database field. Fields outside
  those namespaces (``memory_overhead``, ``other_config``, ...) are
  spelled as in the record.

A syntax error raises ``INVALID_VALUE [expression, reason]`` when the
expression is compiled. A field the class does not have raises
``INTERNAL_ERROR ["missing field", field, ""]`` when a record is evaluated,
as xapi's database does: not at all for an empty table or an operand that
``and``/``or`` short-circuit away. Field values compare
as xapi renders them: booleans ``"true"``/``"false"``, int64 decimal strings,
refs and strings as they are.
"""

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import unmarshal

KEYWORDS = ('and', 'or', 'not', 'field', 'true', 'false')

#: xapi's namespaces: record key ``<ns>_<rest>`` is database field
#: ``<ns>__<rest>``.
NAMESPACES = ('name', 'VCPUs', 'memory', 'PV', 'HVM', 'API_version', 'qos')

#: Record keys that look namespaced but are top-level fields in xapi.
TOP_LEVEL = frozenset(['memory_overhead'])

_WHITESPACE = ' \t\n'


def db_field_name(key):
    """The database name of record key ``key`` (``name__label``)."""
    if key not in TOP_LEVEL:
        for ns in NAMESPACES:
            if key.startswith(ns + '_') and len(key) > len(ns) + 1:
                return '%s__%s' % (ns, key[len(ns) + 1:])
    return key


def _tokenize(text):
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
        elif ch in '()=':
            tokens.append((ch, ch))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise _syntax(text, 'unterminated string')
            tokens.append(('str', text[i + 1:end]))
            i = end + 1
        else:
            for word in KEYWORDS:
                if text.startswith(word, i):
                    tokens.append((word, word))
                    i += len(word)
                    break
            else:
                raise _syntax(text, 'unexpected character %r' % ch)
    return tokens


def _syntax(text, reason):
    return errors.XapiError(errors.INVALID_VALUE, text, reason)


class _Parser(object):
    def __init__(self, text, fields):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        #: database field name -> record key, None: any field
        self.columns = None
        if fields is not None:
            self.columns = {db_field_name(k): k for k in fields}

    def peek(self):
        if self.pos < len(self.tokens):
            return self.tokens[self.pos][0]
        return None

    def take(self, kind=None):
        if self.pos >= len(self.tokens):
            raise _syntax(self.text, 'unexpected end of expression')
        tok = self.tokens[self.pos]
        if kind is not None and tok[0] != kind:
            raise _syntax(self.text, 'expected %s, found %r' % (kind, tok[1]))
        self.pos += 1
        return tok

    def parse(self):
        node = self.expr()
        if self.pos != len(self.tokens):
            raise _syntax(self.text, 'trailing %r' % self.tokens[self.pos][1])
        return node

    def expr(self):
        # "not" takes a whole expression, so it ends the loop: whatever
        # follows it up to ")" or the end is its operand.
        node = self.unary()
        while self.peek() in ('and', 'or'):
            op = self.take()[0]
            node = (op, node, self.unary())
        return node

    def unary(self):
        if self.peek() == 'not':
            self.take()
            return ('not', self.expr())
        return self.primary()

    def primary(self):
        kind = self.peek()
        if kind == '(':
            self.take()
            node = self.expr()
            self.take(')')
            return node
        if kind in ('true', 'false'):
            self.take()
            return ('const', kind == 'true')
        left = self.value()
        self.take('=')
        return ('=', left, self.value())

    def value(self):
        kind = self.peek()
        if kind == 'field':
            self.take()
            name = self.take('str')[1]
            if self.columns is None:
                return ('field', name)
            if name in self.columns:
                return ('field', self.columns[name])
            return ('missing', name)
        if kind == 'str':
            return ('lit', self.take()[1])
        raise _syntax(self.text, 'expected field or string')


def render(value):
    """Render a field value the way xapi compares it in expressions."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '(%s)' % '; '.join("'%s'" % render(v) for v in value)
    if isinstance(value, dict):
        return '(%s)' % '; '.join("('%s' '%s')" % (k, render(v))
                                  for k, v in sorted(value.items()))
    return str(value)


def compile_expr(text, fields=None):
    """Parse ``text``; return a predicate ``f(record) -> bool``.

    :param fields: the class's record keys (API spelling), to map database
        field names onto them and reject unknown fields; None accepts any
        field name as a record key.
    :raises XapiError: ``INVALID_VALUE``; ``INTERNAL_ERROR`` for a
        ``text`` that is not a string; the predicate raises
        ``INTERNAL_ERROR`` for an unknown field.
    """
    # rpc.ml string_of_rpc, where xapi's dispatcher unmarshals expr
    unmarshal.check('string', text)
    tree = _Parser(text, fields).parse()

    def value(node, rec):
        if node[0] == 'field':
            return render(rec.get(node[1], ''))
        if node[0] == 'missing':
            # xapi's Row.find: DBCache_NotFound, raised when a row is read
            raise errors.XapiError(errors.INTERNAL_ERROR, 'missing field',
                                   node[1], '')
        return node[1]

    def evaluate(node, rec):
        kind = node[0]
        if kind == 'const':
            return node[1]
        if kind == 'not':
            return not evaluate(node[1], rec)
        if kind == 'and':
            return evaluate(node[1], rec) and evaluate(node[2], rec)
        if kind == 'or':
            return evaluate(node[1], rec) or evaluate(node[2], rec)
        return value(node[1], rec) == value(node[2], rec)

    return lambda rec: evaluate(tree, rec)

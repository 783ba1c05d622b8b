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

Grammar (as in xapi's ``db_filter``)::

    expr    := term (("and" | "or") term)*     # one precedence, left-assoc
    term    := "not" term | "(" expr ")" | "true" | "false"
             | operand ("=" | "<>") operand
    operand := "field" STRING | STRING
    STRING  := '"' chars, with \\" and \\\\ escapes '"'

``and`` and ``or`` share one precedence level and associate to the left, so
``a or b and c`` means ``(a or b) and c``. ``not`` binds tighter than both.
A syntax error raises ``INVALID_VALUE [expression, reason]``; a field the
class does not have raises ``INTERNAL_ERROR [reason]``. Field values compare
as xapi renders them: booleans ``"true"``/``"false"``, int64 decimal strings,
refs and strings as they are.
"""

from nova_xenapi_sr.mockxapi import errors

KEYWORDS = ('and', 'or', 'not', 'field', 'true', 'false')


def _tokenize(text):
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in '()=':
            tokens.append((ch, ch))
            i += 1
        elif text.startswith('<>', i):
            tokens.append(('<>', '<>'))
            i += 2
        elif ch == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise _syntax(text, 'unterminated string')
                ch = text[i]
                if ch == '\\' and i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    buf.append(ch)
                    i += 1
            tokens.append(('str', ''.join(buf)))
        elif ch.isalpha():
            j = i
            while j < n and (text[j].isalnum() or text[j] == '_'):
                j += 1
            word = text[i:j]
            if word not in KEYWORDS:
                raise _syntax(text, 'unexpected word %r' % word)
            tokens.append((word, word))
            i = j
        else:
            raise _syntax(text, 'unexpected character %r' % ch)
    return tokens


def _syntax(text, reason):
    return errors.XapiError(errors.INVALID_VALUE, text, reason)


class _Parser(object):
    def __init__(self, text, fields):
        self.text = text
        self.fields = fields
        self.tokens = _tokenize(text)
        self.pos = 0

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
        node = self.term()
        while self.peek() in ('and', 'or'):
            op = self.take()[0]
            node = (op, node, self.term())
        return node

    def term(self):
        kind = self.peek()
        if kind == 'not':
            self.take()
            return ('not', self.term())
        if kind == '(':
            self.take()
            node = self.expr()
            self.take(')')
            return node
        if kind in ('true', 'false'):
            self.take()
            return ('const', kind == 'true')
        left = self.operand()
        op = self.peek()
        if op not in ('=', '<>'):
            raise _syntax(self.text, 'expected = or <>')
        self.take()
        return (op, left, self.operand())

    def operand(self):
        kind = self.peek()
        if kind == 'field':
            self.take()
            # xapi's database spells namespaced fields with '__':
            # "name__label" is the record's name_label.
            name = self.take('str')[1].replace('__', '_')
            if self.fields is not None and name not in self.fields:
                raise errors.XapiError(
                    errors.INTERNAL_ERROR,
                    'Unknown field %s in expression' % name)
            return ('field', name)
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

    :param fields: the class's field names, to reject unknown fields.
    :raises XapiError: ``INVALID_VALUE`` or ``INTERNAL_ERROR``.
    """
    if not isinstance(text, str):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'expr')
    tree = _Parser(text, fields).parse()

    def value(node, rec):
        if node[0] == 'field':
            return render(rec.get(node[1], ''))
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
        equal = value(node[1], rec) == value(node[2], rec)
        return equal if kind == '=' else not equal

    return lambda rec: evaluate(tree, rec)

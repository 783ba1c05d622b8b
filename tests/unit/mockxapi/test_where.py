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

"""The get_all_records_where expression language."""

from nova_xenapi_sr.mockxapi import errors
from nova_xenapi_sr.mockxapi import where
from tests import base

FIELDS = {'a', 'b', 'c', 'flag', 'name'}


class WhereTest(base.TestCase):

    def match(self, expr, **rec):
        return where.compile_expr(expr, FIELDS)(rec)

    def test_equality_and_inequality(self):
        self.assertTrue(self.match('field "a" = "1"', a='1'))
        self.assertFalse(self.match('field "a" = "1"', a='2'))
        self.assertTrue(self.match('field "a" <> "1"', a='2'))
        self.assertTrue(self.match('"1"=field "a"', a='1'))
        self.assertTrue(self.match('field "a" = field "b"', a='x', b='x'))

    def test_rendering_of_values(self):
        self.assertTrue(self.match('field "flag" = "true"', flag=True))
        self.assertTrue(self.match('field "flag" = "false"', flag=False))
        self.assertFalse(self.match('field "flag" = "True"', flag=True))
        self.assertEqual('true', where.render(True))
        self.assertEqual('0', where.render('0'))

    def test_constants_and_not(self):
        self.assertTrue(self.match('true'))
        self.assertFalse(self.match('false'))
        self.assertTrue(self.match('not false'))
        self.assertFalse(self.match('not not false'))
        self.assertTrue(self.match('not field "a" = "1"', a='2'))

    def test_and_or_same_precedence_left_associative(self):
        # (true or true) and false -> false
        self.assertFalse(self.match('true or true and false'))
        # (false and false) or true -> true
        self.assertTrue(self.match('false and false or true'))
        # parentheses override
        self.assertTrue(self.match('true or (true and false)'))
        self.assertFalse(self.match('false and (false or true)'))

    def test_not_binds_tighter(self):
        # (not true) or true -> true
        self.assertTrue(self.match('not true or true'))
        self.assertFalse(self.match('not (true or true)'))

    def test_string_escapes(self):
        self.assertTrue(self.match(r'field "name" = "say \"hi\""',
                                   name='say "hi"'))
        self.assertTrue(self.match(r'field "name" = "a\\b"', name='a\\b'))

    def test_syntax_errors_are_invalid_value(self):
        for bad in ('', 'field', 'field "a"', 'field "a" =', '"a" "b"',
                    '(true', 'true)', 'true and', 'field "a" = "1',
                    'field a = "1"', 'true & false', 'TRUE',
                    'field "a" == "1"'):
            exc = self.assertRaises(errors.XapiError, where.compile_expr,
                                    bad, FIELDS)
            self.assertEqual(errors.INVALID_VALUE, exc.code, bad)
            self.assertEqual(bad, exc.params[0])

    def test_unknown_field_is_internal_error(self):
        exc = self.assertRaises(errors.XapiError, where.compile_expr,
                                'field "nope" = "1"', FIELDS)
        self.assertEqual(errors.INTERNAL_ERROR, exc.code)
        self.assertIn('nope', exc.params[0])

    def test_not_a_string(self):
        exc = self.assertRaises(errors.XapiError, where.compile_expr, 5)
        self.assertEqual(errors.FIELD_TYPE_ERROR, exc.code)

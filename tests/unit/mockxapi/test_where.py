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

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import where
from tests import base

FIELDS = {'a', 'b', 'c', 'flag', 'name', 'name_label', 'VCPUs_max',
          'memory_static_max', 'memory_overhead', 'PV_args',
          'HVM_boot_policy', 'other_config', 'API_version_major',
          'qos_algorithm_type'}


class WhereTest(base.TestCase):

    def match(self, expr, **rec):
        return where.compile_expr(expr, FIELDS)(rec)

    def assertInvalid(self, expr):
        exc = self.assertRaises(errors.XapiError, where.compile_expr,
                                expr, FIELDS)
        self.assertEqual(errors.INVALID_VALUE, exc.code, expr)
        self.assertEqual(expr, exc.params[0])

    def assertUnknownField(self, expr, name):
        predicate = where.compile_expr(expr, FIELDS)
        exc = self.assertRaises(errors.XapiError, predicate, {})
        self.assertEqual(errors.INTERNAL_ERROR, exc.code, expr)
        self.assertEqual(['missing field', name, ''], exc.params)

    def test_equality(self):
        self.assertTrue(self.match('field "a" = "1"', a='1'))
        self.assertFalse(self.match('field "a" = "1"', a='2'))
        self.assertTrue(self.match('"1"=field "a"', a='1'))
        self.assertTrue(self.match('field "a" = field "b"', a='x', b='x'))
        self.assertTrue(self.match('field"a"="1"', a='1'))
        self.assertTrue(self.match('\tfield "a"\n=\n"1" ', a='1'))

    def test_no_inequality_operator(self):
        # xapi's lexer has no "<>": inequality is "not (... = ...)"
        self.assertInvalid('field "a" <> "1"')
        self.assertTrue(self.match('not field "a" = "1"', a='2'))

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

    def test_not_binds_loosest(self):
        # %right LNOT is declared before %left LAND LOR: "not" takes
        # everything to its right
        # not (true or true) -> false; (not true) or true would be true
        self.assertFalse(self.match('not true or true'))
        # not (false and false) -> true; (not false) and false: false
        self.assertTrue(self.match('not false and false'))
        # true and not (false or true) -> false
        self.assertFalse(self.match('true and not false or true'))
        # parentheses limit it
        self.assertTrue(self.match('(not true) or true'))
        self.assertFalse(self.match('(not false) and false'))
        self.assertTrue(self.match('not field "a" = "1" and field "b" = '
                                   '"2"', a='1', b='3'))

    def test_strings_have_no_escapes(self):
        # a string runs to the next double quote; backslash is a character
        self.assertTrue(self.match(r'field "name" = "a\b"', name='a\\b'))
        self.assertTrue(self.match(r'field "name" = "a\"', name='a\\'))
        self.assertInvalid(r'field "name" = "say \"hi\""')

    def test_namespaced_fields_use_database_names(self):
        rec = {'name_label': 'vm', 'VCPUs_max': '2',
               'memory_static_max': '4', 'PV_args': 'x',
               'HVM_boot_policy': '', 'API_version_major': '2',
               'qos_algorithm_type': ''}
        for key, value in rec.items():
            db_name = where.db_field_name(key)
            self.assertIn('__', db_name)
            self.assertTrue(self.match('field "%s" = "%s"' % (db_name, value),
                                       **rec), db_name)
            self.assertUnknownField('field "%s" = "%s"' % (key, value), key)
        self.assertTrue(self.match('field "name__label" = "vm"',
                                   name_label='vm'))
        self.assertUnknownField('field "name_label" = "vm"', 'name_label')

    def test_plain_fields_keep_their_names(self):
        # memory_overhead is a top-level field, not in the memory namespace
        self.assertTrue(self.match('field "memory_overhead" = "0"',
                                   memory_overhead='0'))
        self.assertUnknownField('field "memory__overhead" = "0"',
                                'memory__overhead')
        self.assertTrue(self.match('field "other_config" = "()"',
                                   other_config={}))
        self.assertUnknownField('field "other__config" = "()"',
                                'other__config')

    def test_syntax_errors_are_invalid_value(self):
        for bad in ('', 'field', 'field "a"', 'field "a" =', '"a" "b"',
                    '(true', 'true)', 'true and', 'field "a" = "1',
                    'field a = "1"', 'true & false', 'TRUE',
                    'field "a" == "1"', 'field "a" != "1"',
                    'field "a" = "1"\r', 'not', 'true = "1"'):
            self.assertInvalid(bad)

    def test_unknown_field_is_internal_error(self):
        self.assertUnknownField('field "nope" = "1"', 'nope')
        self.assertUnknownField('"1" = field "nope"', 'nope')

    def test_unknown_field_is_found_when_read(self):
        # xapi reads fields while evaluating rows: an operand that is
        # short-circuited away, or no row at all, raises nothing
        self.assertTrue(self.match('true or field "nope" = "1"'))
        self.assertFalse(self.match('false and field "nope" = "1"'))
        where.compile_expr('field "nope" = "1"', FIELDS)

    def test_not_a_string(self):
        """rpc.ml string_of_rpc: xapi's dispatcher cannot read expr."""
        exc = self.assertRaises(errors.XapiError, where.compile_expr, 5)
        self.assertEqual(['INTERNAL_ERROR',
                          'Failure("Expected string, got \'I(5)\'")'],
                         exc.description)

    def test_nova_and_driver_expressions(self):
        # every expression nova 21 and this project build
        vm = {'is_control_domain': False, 'is_a_template': False,
              'resident_on': 'OpaqueRef:h', 'domid': '0',
              'name_label': 'instance-00000001'}
        exprs = {
            'VM': ['field "is_control_domain"="false" and '
                   'field "is_a_template"="false" and '
                   'field "resident_on"="OpaqueRef:h"',
                   'field "domid"="0" and field "resident_on"="OpaqueRef:h"',
                   'field "domid"="0"',
                   'field "is_control_domain" = "true" and '
                   'field "resident_on" = "OpaqueRef:h"',
                   'field "name__label" = "instance-00000001"'],
        }
        from nova_xenapi_sr_tools.mockxapi import model
        fields = model.fields_of('VM')
        results = [where.compile_expr(e, fields)(vm) for e in exprs['VM']]
        self.assertEqual([True, True, True, False, True], results)
        checks = [
            ('PBD', 'field "host"="OpaqueRef:h" and field "SR"="OpaqueRef:s"'),
            ('VDI', 'field "name__label"="x" and field "SR" = "OpaqueRef:s"'),
            ('network', 'field "name__label" = "br" or field "bridge" = '
                        '"br"'),
            ('PIF', 'field "management" = "true" and field "host" = "h"'),
            ('PIF', 'field "IP"="198.51.100.2"'),
            ('VIF', 'field "network" = "OpaqueRef:n"'),
            ('PGPU', 'field "GPU_group" = "OpaqueRef:g"'),
            ('SR', 'field "uuid" = "u1" or field "uuid" = "u2"'),
            ('PBD', 'field "SR" = "OpaqueRef:s"'),
        ]
        for cls, expr in checks:
            where.compile_expr(expr, model.fields_of(cls))

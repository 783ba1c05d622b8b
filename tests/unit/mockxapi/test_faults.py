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

"""Fault rules and latency, without a server."""

from nova_xenapi_sr_tools.mockxapi import faults
from tests import base


class FaultRuleTest(base.TestCase):

    def test_method_patterns(self):
        rule = faults.FaultRule('SR.*', error=['X'])
        self.assertTrue(rule.matches('SR.scan', []))
        self.assertFalse(rule.matches('PBD.plug', []))
        self.assertTrue(faults.FaultRule('PBD.plug', error=['X']).matches(
            'PBD.plug', []))

    def test_argument_match(self):
        rule = faults.FaultRule('SR.scan', error=['X'], match=['ref-1'])
        self.assertTrue(rule.matches('SR.scan', ['ref-1']))
        self.assertTrue(rule.matches('SR.scan', ['ref-1', 'more']))
        self.assertFalse(rule.matches('SR.scan', ['ref-2']))
        rule = faults.FaultRule('SR.scan', error=['X'],
                                match=lambda args: len(args) == 2)
        self.assertTrue(rule.matches('SR.scan', ['a', 'b']))
        self.assertFalse(rule.matches('SR.scan', ['a']))

    def test_after_and_times(self):
        inj = faults.Injector()
        rule = inj.add_fault(faults.FaultRule('m', error=['X'], times=2,
                                              after=1))
        picked = [inj.pick('m', []) for _ in range(5)]
        self.assertEqual([None, rule, rule, None, None], picked)
        self.assertTrue(rule.exhausted)

    def test_forever(self):
        inj = faults.Injector()
        rule = inj.add_fault(faults.FaultRule('m', error=['X'], times=None))
        self.assertEqual([rule] * 10, [inj.pick('m', []) for _ in range(10)])
        self.assertFalse(rule.exhausted)

    def test_first_matching_rule_wins(self):
        inj = faults.Injector()
        first = inj.add_fault(faults.FaultRule('m', kind='http500'))
        second = inj.add_fault(faults.FaultRule('m', kind='drop'))
        self.assertEqual([first, second, None],
                         [inj.pick('m', []) for _ in range(3)])

    def test_validation(self):
        self.assertRaises(ValueError, faults.FaultRule, 'm', kind='boom')
        self.assertRaises(ValueError, faults.FaultRule, 'm')
        self.assertEqual(['1', 'x'], faults.FaultRule(
            'm', error=[1, 'x']).error)

    def test_latency(self):
        inj = faults.Injector()
        inj.set_latency('SR.*', 0.5)
        inj.set_latency('SR.scan', 1.5)
        self.assertEqual(1.5, inj.latency('SR.scan'))
        self.assertEqual(0.5, inj.latency('SR.forget'))
        self.assertEqual(0.0, inj.latency('PBD.plug'))
        inj.set_latency('SR.scan', 0)
        self.assertEqual(0.5, inj.latency('SR.scan'))
        inj.clear()
        self.assertEqual(0.0, inj.latency('SR.forget'))

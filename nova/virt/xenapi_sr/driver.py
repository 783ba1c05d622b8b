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

"""Shim for ``compute_driver = xenapi_sr.driver.XenAPISRDriver``.

nova 21 loads ``'nova.virt.%s' % CONF.compute_driver``; this module, shipped
inside nova's namespace by nova-xenapi-sr, re-exports the real class from
:mod:`nova_xenapi_sr.virt.driver`.
"""

from nova_xenapi_sr.virt.driver import XenAPISRDriver

__all__ = ['XenAPISRDriver']

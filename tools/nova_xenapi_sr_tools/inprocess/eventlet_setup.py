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

"""nova's eventlet monkey-patching, done by hand, once per process.

nova 21's own ``nova.monkey_patch`` ends with
``eventlet.hubs.use_hub("oslo_service:service_hub")``, which current
oslo.service no longer has, so importing nova's functional-test package
with patching enabled fails. :func:`monkey_patch` does what nova does
(``eventlet.monkey_patch()``, then nova's fix of ``threading._active`` for
eventlet issue 592) and skips only ``use_hub``; it keeps multiprocessing's
pipes OS-level (children of a patched process are not patched); it sets
``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` so that nova does not try again.

Call it before anything imports nova, oslo or ``threading``-using code:
the test suite does it in ``tests/__init__.py``, the benchmark on its
first line. It imports nothing of nova.
"""

import os

_done = []


def monkey_patch():
    """Patch this process as nova-compute would be (idempotent)."""
    if _done:
        return
    os.environ['EVENTLET_NO_GREENDNS'] = 'yes'
    os.environ['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
    import eventlet
    eventlet.monkey_patch()
    import __original_module_threading as orig_threading
    import threading
    orig_threading.current_thread.__globals__['_active'] = threading._active
    # multiprocessing's pipes stay OS sockets: a green socketpair is
    # non-blocking at the OS level, and a child process (which is not
    # patched) inherits that flag and fails reading it with EAGAIN.
    import multiprocessing.connection
    multiprocessing.connection.socket = eventlet.patcher.original('socket')
    _done.append(True)


def is_patched():
    """Whether :func:`monkey_patch` ran (or eventlet patched otherwise)."""
    import eventlet.patcher
    return bool(_done) or eventlet.patcher.is_monkey_patched('thread')

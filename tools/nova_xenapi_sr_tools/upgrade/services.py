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


"""The private services a verification run starts, and their clean-up.

* :func:`ensure_packages`: the Debian packages of the broker and the
  database (``rabbitmq-server``, ``mariadb-server``), installed with
  ``apt-get`` when missing and running as root; otherwise a clear error.
* :class:`Broker`: RabbitMQ through pifpaf's ``RabbitMQDriver``, on a free
  loopback port, with its own Erlang port mapper (``epmd``) on a private
  port (``ERL_EPMD_PORT``), which pifpaf leaves running and :meth:`stop`
  stops.
* :class:`Database`: MariaDB through pifpaf's ``MySQLDriver`` (unix socket
  only), and the databases nova and placement need.
* :class:`Supervisor`: the service processes, each the leader of its own
  process group (so a service's children stop with it), each told by the
  kernel to stop if the runner dies (``PR_SET_PDEATHSIG``), logged to a
  file of its own.
* :class:`Workspace`: the one temporary directory that holds every
  service's data, configuration and logs; removed at the end unless kept.
* :func:`exit_on_signals`: SIGTERM and SIGINT raise :class:`Interrupted`
  (a ``KeyboardInterrupt``), so every ``with`` block and ``finally`` runs
  its clean-up; :mod:`atexit` stops whatever is still running.
"""

import atexit
import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import fixtures

# pifpaf warns about every helper process that already exited by itself
# (rabbitmqctl, mysql) when it cleans up: not news.
logging.getLogger('pifpaf').setLevel(logging.ERROR)

#: Debian packages that provide the broker and the database servers.
PACKAGES = {'rabbitmq-server': 'rabbitmq-server', 'mysqld': 'mariadb-server'}
#: Taken while installing them, so that concurrent runs install once.
APT_LOCK = os.path.join(tempfile.gettempdir(), 'nova-xenapi-sr-apt.lock')

#: Seconds a service gets to stop on SIGTERM before SIGKILL.
STOP_GRACE = 10

_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A service could not start, or stopped when it should not have."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: stop everything and exit."""

    def __init__(self, signum):
        super(Interrupted, self).__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def exit_on_signals():
    """Turn SIGTERM/SIGINT into :class:`Interrupted` inside the block."""
    def handler(signum, frame):
        raise Interrupted(signum)

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def missing_packages():
    """Debian packages whose server program is not installed."""
    search = os.environ.get('PATH', os.defpath).split(os.pathsep) + [
        '/usr/sbin', '/usr/lib/rabbitmq/bin']
    missing = []
    for program, package in sorted(PACKAGES.items()):
        if not any(os.access(os.path.join(path, program), os.X_OK)
                   for path in search):
            missing.append(package)
    return missing


def ensure_packages(say=None):
    """Install the broker and database packages if they are missing.

    :param say: called with a line for the user before installing.
    :returns: the packages installed (empty when all were there).
    :raises ServiceError: they are missing and this is not root on a
        machine with ``apt-get``, or the installation failed.
    """
    if not missing_packages():
        return []
    if os.geteuid() != 0 or not shutil.which('apt-get'):
        missing = missing_packages()
        raise ServiceError(
            'the verification runs a private RabbitMQ and MariaDB, and %s '
            'is not installed; install it (Debian: apt-get install %s) or '
            'run this command as root on Debian, which installs it'
            % (', '.join(missing), ' '.join(missing)))
    # Several verifications may start at once (the test suite runs two):
    # one installs, the others wait for it and find the packages there.
    with open(APT_LOCK, 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _install(missing_packages(), say)


def _install(missing, say):
    if not missing:
        return []
    if say is not None:
        say('installing the Debian packages %s (apt-get, as root)'
            % ', '.join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for command in (['apt-get', 'update', '-q'],
                    ['apt-get', 'install', '-y', '-q',
                     '--no-install-recommends'] + missing):
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if done.returncode != 0:
            raise ServiceError('%s failed (%d):\n%s' % (
                ' '.join(command), done.returncode, done.stdout[-2000:]))
    return missing


def free_port(low=10000, high=40000):
    """A TCP port free on 127.0.0.1, in ``[low, high)``.

    RabbitMQ's distribution port is its AMQP port + 20000, so the default
    range keeps both valid.
    """
    import random
    for _ in range(200):
        port = random.randrange(low, high)
        with contextlib.closing(socket.socket()) as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
        return port
    raise ServiceError('no free loopback port in %d-%d' % (low, high))


class Workspace(object):
    """The run's temporary directory: data, configuration, logs."""

    def __init__(self, keep=False, prefix='verify-upgrade-'):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self.keep = keep

    def sub(self, *names):
        path = os.path.join(self.path, *names)
        os.makedirs(path, exist_ok=True)
        return path

    def remove(self):
        if not self.keep and self.path and os.path.isdir(self.path):
            shutil.rmtree(self.path, ignore_errors=True)


class Broker(object):
    """A private RabbitMQ (pifpaf) on loopback, and its own epmd."""

    name = 'rabbitmq'

    def __init__(self, workspace):
        self.workspace = workspace
        self.port = free_port()
        self.epmd_port = free_port(40000, 50000)
        self.url = None
        self.version = None
        self._driver = None
        self._env = []

    def start(self):
        from pifpaf.drivers import rabbitmq
        # epmd and every Erlang program of this broker use this port,
        # so the epmd it starts is this run's alone; a crash dump goes to
        # the broker's own directory, not to the working directory.
        self._env = [
            fixtures.EnvironmentVariable('ERL_EPMD_PORT',
                                         str(self.epmd_port)),
            fixtures.EnvironmentVariable('ERL_CRASH_DUMP', os.path.join(
                self.workspace.sub('rabbitmq'), 'erl_crash.dump'))]
        for variable in self._env:
            variable.setUp()
        self._driver = rabbitmq.RabbitMQDriver(
            port=self.port, nodename='verify%d' % self.port,
            tmp_rootdir=self.workspace.sub('rabbitmq'))
        self._driver.setUp()
        self.url = self._driver.env['PIFPAF_URL'].replace(
            '@localhost:', '@127.0.0.1:')
        self.version = _dpkg_version('rabbitmq-server')
        return self.url

    @property
    def data_dir(self):
        return os.path.join(self.workspace.path, 'rabbitmq')

    def _connection(self):
        import kombu
        return kombu.Connection(self.url.replace('rabbit://', 'amqp://', 1),
                                connect_timeout=10)

    def purge(self, queues):
        """Drop the messages waiting in ``queues``; return how many.

        A queue that does not exist counts as empty.
        """
        dropped = 0
        with self._connection() as connection:
            for name in queues:
                dropped += _on_queue(connection, name,
                                     lambda ch: ch.queue_purge(name))
        return dropped

    def consumers(self, queue):
        """How many consumers ``queue`` has (0 if there is no queue)."""
        with self._connection() as connection:
            return _on_queue(connection, queue, lambda ch: ch.queue_declare(
                queue, passive=True).consumer_count)

    def stop(self):
        if self._driver is not None:
            try:
                self._driver.cleanUp()
            finally:
                self._driver = None
                _stop_epmd(self.epmd_port)
        for variable in reversed(self._env):
            variable.cleanUp()
        self._env = []


def _on_queue(connection, name, action):
    """``action(channel)`` on a fresh channel; 0 if ``name`` is unknown."""
    import amqp
    channel = connection.channel()
    try:
        return action(channel) or 0
    except amqp.exceptions.NotFound:
        return 0    # the broker closed the channel with the error
    finally:
        if channel.is_open:
            channel.close()


def _stop_epmd(port):
    env = dict(os.environ, ERL_EPMD_PORT=str(port))
    epmd = shutil.which('epmd') or '/usr/bin/epmd'
    if os.path.exists(epmd):
        subprocess.run([epmd, '-kill'], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


class Database(object):
    """A private MariaDB (pifpaf), reachable on its unix socket only."""

    name = 'mariadb'

    def __init__(self, workspace):
        self.workspace = workspace
        self.socket = None
        self.version = None
        self._driver = None

    def start(self):
        from pifpaf.drivers import mysql
        self._driver = mysql.MySQLDriver(
            tmp_rootdir=self.workspace.sub('mariadb'))
        self._driver.setUp()
        self.socket = self._driver.socket
        self.version = _dpkg_version('mariadb-server')
        return self.socket

    @property
    def data_dir(self):
        return os.path.join(self.workspace.path, 'mariadb')

    def url(self, database):
        return ('mysql+pymysql://root@localhost/%s?unix_socket=%s'
                '&charset=utf8' % (database, self.socket))

    def create(self, *names):
        import pymysql
        conn = pymysql.connect(unix_socket=self.socket, user='root')
        try:
            with conn.cursor() as cursor:
                for name in names:
                    cursor.execute('CREATE DATABASE IF NOT EXISTS `%s`'
                                   % name)
            conn.commit()
        finally:
            conn.close()

    def connect(self, database):
        import pymysql
        return pymysql.connect(unix_socket=self.socket, user='root',
                               database=database,
                               cursorclass=pymysql.cursors.DictCursor,
                               autocommit=True)

    def stop(self):
        if self._driver is not None:
            try:
                self._driver.cleanUp()
            finally:
                self._driver = None


def _dpkg_version(package):
    try:
        return subprocess.run(
            ['dpkg-query', '-W', '-f=${Version}', package],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            universal_newlines=True).stdout.strip() or None
    except OSError:
        return None


def _die_with_parent():
    """In the child: SIGTERM when the runner dies; own process group."""
    os.setsid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Process(object):
    """One service process (the leader of its own process group)."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.popen = None
        self.started_at = None

    def start(self):
        log = open(self.log_path, 'ab')
        try:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.env, close_fds=True,
                preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def poll(self):
        return self.popen.poll() if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, 'rb') as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8000))
                text = handle.read().decode('utf-8', 'replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def terminate(self):
        """SIGTERM the process group (see :meth:`stop`)."""
        if self.popen is not None:
            _killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, grace=STOP_GRACE):
        """SIGTERM the process group, SIGKILL it after ``grace`` s."""
        if self.popen is None:
            return None
        pgid = self.popen.pid
        _killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is left of the group (children of the service).
        _killpg(pgid, signal.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # SIGKILL is delivered when the kernel next runs each process: on
        # a busy machine a child may still run for a moment after the
        # leader is reaped. Return once none of the group runs.
        deadline = time.monotonic() + 5
        while _group_running(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        code = self.popen.returncode
        self.popen = None
        return code


def _group_running(pgid):
    """Whether a process of group ``pgid`` runs (zombies do not).

    Reads ``/proc``; where there is none, no process is known to run.
    """
    try:
        entries = os.listdir('/proc')
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != 'Z':
            return True
    return False


def _killpg(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except OSError as exc:
        if exc.errno not in (errno.ESRCH, errno.EPERM):
            raise


class Supervisor(object):
    """Starts, watches and stops the service processes of a run."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.processes = {}
        atexit.register(self.stop_all)

    def start(self, name, argv, env=None):
        if name in self.processes and self.processes[name].alive():
            raise ServiceError('%s is already running' % name)
        process = Process(name, argv, os.path.join(self.log_dir,
                                                   name + '.log'), env=env)
        self.processes[name] = process.start()
        return process

    def run(self, name, argv, env=None, timeout=600):
        """Run a one-shot command to completion (its output to its log)."""
        process = self.start(name, argv, env=env)
        try:
            code = process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise ServiceError('%s did not finish in %ds; see %s' % (
                name, timeout, process.log_path))
        del self.processes[name]
        if code != 0:
            raise ServiceError('%s failed (exit status %d); see %s:\n%s' % (
                name, code, process.log_path, process.log_tail()))
        return process

    def check(self):
        """:raises ServiceError: a service process has exited."""
        for name, process in sorted(self.processes.items()):
            code = process.poll()
            if code is not None:
                raise ServiceError(
                    'the service %s stopped (exit status %s); see %s:\n%s'
                    % (name, code, process.log_path, process.log_tail()))

    def stop(self, name, grace=STOP_GRACE):
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop(grace)

    def stop_all(self):
        # Every group gets SIGTERM at once, then each its grace period.
        for process in self.processes.values():
            process.terminate()
        for name in sorted(self.processes):
            self.stop(name)

    def close(self):
        self.stop_all()
        try:
            atexit.unregister(self.stop_all)
        except Exception:  # pragma: no cover - interpreter shutting down
            pass


def python_argv(module, *args):
    return [sys.executable, '-m', module] + list(args)

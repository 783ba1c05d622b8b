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

"""Output of ``verify-upgrade``: a matrix for people, JSON for machines.

Both take the list of case results the runner returns (dicts with at least
``conductor``, ``source``, ``destination``, ``volumes``, ``outcome``,
``detail``, ``copies``, ``leftovers``, ``xapi_calls``) and work on plain
data only.

JSON document::

    {"cases": [{"layout", "conductor", "source", "destination", "volumes",
                "outcome", "detail", "copies", "leftovers",
                "xapi_calls", "wall_time", "extension_driver"}, ...],
     "summary": {"cases", "migrated", "refused", "failed_clean",
                 "UNSAFE", "unsafe", "unsafe_before_upgrade",
                 "all_extension_cases",
                 "all_extension_migrated", "all_extension_ok",
                 "all_extension_refused_in_pool", "exit_status", "wall_time",
                 "complete", "extension_driver", "do_no_harm_unchecked"}}
"""

import collections
import json
import textwrap

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import verdict

#: Keys of a case in the JSON document, in order.
CASE_KEYS = ('layout', 'conductor', 'source', 'destination', 'volumes',
             'outcome',
             'detail', 'copies', 'leftovers', 'xapi_calls', 'wall_time',
             'extension_driver')
#: Extra keys written with ``debug=True``.
DEBUG_KEYS = ('signature', 'drivers', 'flow', 'trace', 'nova',
              'conductor_loop')


def summarize(results, wall_time=None, complete=True, extension_driver=None):
    """Return the ``summary`` dict of a run."""
    counts = collections.Counter(result['outcome'] for result in results)
    all_ext = [result for result in results
               if cases_mod.is_all_extension(result)]
    status = verdict.exit_status([(result, result['outcome'])
                                  for result in results])
    summary = {'cases': len(results)}
    for outcome in verdict.OUTCOMES:
        summary[outcome] = counts.get(outcome, 0)
    summary.update({
        'unsafe': counts.get(verdict.UNSAFE, 0),
        # UNSAFE as stock nova 21 is on its own, before the computes are
        # upgraded: not counted by the exit status
        'unsafe_before_upgrade': len(verdict.unsafe_before_upgrade(
            [(result, result['outcome']) for result in results])),
        'all_extension_cases': len(all_ext),
        'all_extension_migrated': bool(all_ext) and all(
            result['outcome'] == verdict.MIGRATED for result in all_ext),
        # migrated, or refused inside one pool (verdict.extension_case_ok)
        'all_extension_ok': bool(all_ext) and all(
            verdict.extension_case_ok(result, result['outcome'])
            for result in all_ext),
        'all_extension_refused_in_pool': sum(
            1 for result in all_ext
            if result['outcome'] == verdict.REFUSED and
            verdict.extension_case_ok(result, result['outcome'])),
        'exit_status': status,
        'wall_time': round(wall_time, 1) if wall_time is not None else None,
        'complete': complete,
        'extension_driver': extension_driver,
        # Volume sets the do-no-harm rule could not judge: their all-stock
        # case was filtered out.
        'do_no_harm_unchecked': verdict.unchecked_do_no_harm(results),
    })
    return summary


def to_document(results, summary, debug=False):
    keys = CASE_KEYS + (DEBUG_KEYS if debug else ())
    return {'cases': [dict((key, result.get(key)) for key in keys
                           if key in result or key in CASE_KEYS)
                      for result in results],
            'summary': summary}


def render_json(results, summary, debug=False):
    """The JSON document as text."""
    return json.dumps(to_document(results, summary, debug), indent=2,
                      sort_keys=False) + '\n'


_SHORT = {'stock': 'stock', 'extension': 'extension'}


#: Titles of the matrices of a run with several layouts.
LAYOUT_TITLES = {
    cases_mod.CROSS_POOL:
        'Between two pools (block migration, VM.migrate_send):',
    cases_mod.SAME_POOL: 'Inside one pool (VM.pool_migrate):',
}


def _matrix_lines(results, notes):
    """One matrix: a row per node mix, a column per volume set."""
    sets = []
    for result in results:
        if result['volumes'] not in sets:
            sets.append(result['volumes'])
    rows = collections.OrderedDict()
    for result in results:
        key = (result['conductor'], result['source'], result['destination'])
        cell = result['outcome'] or '?'
        if result['outcome'] != verdict.MIGRATED:
            number = notes.setdefault(result['detail'], len(notes) + 1)
            cell = '%s [%d]' % (cell, number)
        rows.setdefault(key, {})[result['volumes']] = cell
    headers = ['conductor', 'source', 'destination'] + sets
    body = [list(key) + [cells.get(name, '-') for name in sets]
            for key, cells in rows.items()]
    widths = [max(len(str(row[i])) for row in [headers] + body)
              for i in range(len(headers))]

    def line(values):
        left = '  '.join(str(v).ljust(w) for v, w in
                         zip(values[:3], widths[:3]))
        right = '  '.join(str(v).ljust(w) for v, w in
                          zip(values[3:], widths[3:]))
        return ('%s | %s' % (left, right)).rstrip()

    return ([line(headers), line(['-' * w for w in widths])] +
            [line(row) for row in body])


def render_table(results, summary, width=100):
    """The matrices: one per layout, a row per node mix, a column per set.

    Every cell shows the outcome and a note number; notes below the tables
    say what happened and what to do (identical notes are shared).
    """
    layouts = collections.OrderedDict()
    for result in results:
        layouts.setdefault(result.get('layout'), []).append(result)
    notes = collections.OrderedDict()
    out = ['nova-xenapi-sr rolling-upgrade verification: %d cases '
           '(each node stock nova 21 or nova with the extension)'
           % summary['cases']]
    for layout, chosen in layouts.items():
        out.append('')
        if len(layouts) > 1:
            out.extend([LAYOUT_TITLES.get(layout, layout), ''])
        out.extend(_matrix_lines(chosen, notes))
    out.append('')
    if notes:
        out.append('Notes:')
        for detail, number in notes.items():
            prefix = '[%d] ' % number
            out.extend(textwrap.wrap(detail, width=width,
                                     initial_indent=prefix,
                                     subsequent_indent=' ' * len(prefix)))
        out.append('')
    counts = ', '.join('%d %s' % (summary.get(outcome, 0), outcome)
                       for outcome in verdict.OUTCOMES)
    closing = ['Summary: %s.' % counts]
    unsafe = '%d' % summary['unsafe']
    if summary.get('unsafe_before_upgrade'):
        unsafe += (' (%d of them with stock nova on both computes, as in '
                   'the all-stock case: how nova 21 behaves before the '
                   'upgrade, not counted by the exit status)'
                   % summary['unsafe_before_upgrade'])
    if summary['all_extension_migrated']:
        ext = 'yes'
    elif summary.get('all_extension_ok'):
        ext = ('yes, except %d refused by the extension inside one pool, '
               'where XAPI cannot move nova\'s unshared SRs'
               % summary['all_extension_refused_in_pool'])
    else:
        ext = 'NO'
    closing.append('All-extension cases migrated: %s. Unsafe cases: %s.' % (
        ext, unsafe))
    if not summary.get('complete', True):
        closing.append('Partial run: only the selected cases ran.')
    if summary.get('do_no_harm_unchecked'):
        closing.append(
            'Do-no-harm rule not applied to volume set(s) %s: their '
            'all-stock case did not run, so an extension conductor case '
            'that fails where stock nova migrates cannot be told apart.'
            % ', '.join(summary['do_no_harm_unchecked']))
    driver = summary.get('extension_driver')
    if driver:
        closing.append('Extension nodes loaded %s.' % driver)
    if summary.get('wall_time') is not None:
        timings = summary.get('timings') or {}
        split = ', '.join('%s %.1f s' % (label, timings[key])
                          for key, label in (('install', 'installing'),
                                             ('start', 'starting services'),
                                             ('cases', 'cases'))
                          if key in timings)
        closing.append('Wall time: %.1f s%s.' % (
            summary['wall_time'], ' (%s)' % split if split else ''))
    closing.append('Exit status: %d (%s).' % (
        summary['exit_status'],
        'safe to proceed' if summary['exit_status'] == 0 else
        'not safe: see the notes'))
    for text in closing:
        out.extend(textwrap.wrap(text, width=width, subsequent_indent='  '))
    if summary.get('services'):
        out.extend(['', 'Services of this run (%s):' % (
            'kept in %s' % summary['kept'] if summary.get('kept') else
            'logs removed; keep them with --keep-logs')])
        for row in summary['services']:
            name = row['service']
            if len(layouts) > 1 and row.get('layout'):
                name = '%s: %s' % (row['layout'], name)
            out.append('  %-44s %-36s %s' % (
                name, row['version'] or '-', row['where'] or ''))
    return '\n'.join(out) + '\n'


def progress_line(index, total, result):
    """One line per finished case, for a terminal."""
    return '[%2d/%d] conductor=%-9s source=%-9s destination=%-9s ' \
        'volumes=%-8s %s (%.1fs)' % (
            index, total, result['conductor'], result['source'],
            result['destination'], result['volumes'], result['outcome'],
            result.get('wall_time') or 0.0)

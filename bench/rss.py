"""Peak resident memory of a command, its own and nobody else's.

``wait4``'s ``ru_maxrss`` of a child is the largest resident size of any memory the child ever
had -- including, on Linux, its parent's, which the child shares between fork (or vfork) and
exec. A bench that has grown to 54 MB while timing other things then reports 54 MB for a
command that peaks at 37 (it did: `modelstore migrate` of 1M rows, measured right after the
whole migrate ran in the bench's process). So the command is started by a small probe
process, whose own few MB are all the command can inherit, and the probe reports.
"""
import json
import os
import subprocess
import sys

__all__ = ['peak_rss']

# The probe imports nothing but what it needs: what it holds is the least the command inherits.
PROBE = r'''
import json, os, subprocess, sys, time
argv, cwd = json.loads(sys.argv[1]), sys.argv[2] or None
with open(os.devnull, 'w') as sink:
    began = time.monotonic()
    child = subprocess.Popen(argv, stdout=sink, cwd=cwd)
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({'kb': usage.ru_maxrss, 'seconds': time.monotonic() - began,
                  'code': os.waitstatus_to_exitcode(status)}))
'''


def peak_rss(argv, cwd=None, stderr=subprocess.PIPE):
    """Run ``argv`` (its stdout to /dev/null); returns (peak RSS in MiB, seconds, exit code,
    its stderr as text, or None when ``stderr`` is not PIPE)."""
    probe = subprocess.run([sys.executable, '-S', '-c', PROBE, json.dumps(list(argv)),
                            cwd or ''], stdout=subprocess.PIPE, stderr=stderr, text=True,
                           check=False)
    try:
        report = json.loads(probe.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError('the memory probe failed: %s' % (probe.stderr or '')[-2000:])
    return report['kb'] / 1024.0, report['seconds'], report['code'], probe.stderr

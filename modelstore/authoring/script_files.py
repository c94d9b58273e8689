"""Where the next script goes: the directory, its next free number, and writing it.

A migrations directory is an existing directory whose Python files are all scripts
(``NNNN_slug.py``) -- an ``__init__.py`` aside. A directory holding other Python modules (a
package's source, a project root) is refused: a script written there would never be found, or
would be found among unrelated code. So are a slug that is not ``[a-z0-9_]+``, a slug an
existing script already has, and a number in use; each with nothing written. Files are created
with ``O_EXCL``, so two authors racing for a number cannot overwrite each other.
"""
import os
import re

from ..engine import installed_directory
from ..exceptions import ConfigError

__all__ = ['SLUG', 'check_slug', 'check_directory', 'next_names', 'write_new']

SLUG = re.compile(r'[a-z0-9_]+\Z')
SCRIPT = re.compile(r'(\d+)_(\w+)\.py\Z')
NUMBERED = re.compile(r'(\d+)_')
MAX_SLUG = 80


def check_slug(slug):
    if not slug or not SLUG.match(slug):
        raise ConfigError('the slug must be lower-case letters, digits and underscores '
                          '([a-z0-9_]+), got %r' % slug)
    if len(slug) > MAX_SLUG:
        raise ConfigError('the slug is %d characters long; keep it to %d' % (len(slug),
                                                                             MAX_SLUG))
    return slug


def check_directory(directory, writing=False):
    """The directory's scripts as ``[(number, slug)]``; ConfigError if it is not a migrations
    directory (or, ``writing``, if it is the installed package's own)."""
    if not os.path.exists(directory):
        raise ConfigError('the migrations directory %s does not exist; create it (mkdir) or '
                          'name another with --migrations DIR' % directory)
    if not os.path.isdir(directory):
        raise ConfigError('%s is not a directory; --migrations names the directory of the '
                          'scripts' % directory)
    installed = installed_directory()
    if writing and installed and os.path.realpath(directory) == os.path.realpath(installed):
        raise ConfigError('%s holds the scripts shipped inside the installed modelstore package; '
                          'a script written there is lost on upgrade. Write to your project\'s '
                          'migrations directory with --migrations DIR' % directory)
    scripts, strangers = [], []
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.py') or name == '__init__.py':
            continue
        match = SCRIPT.match(name)
        if match:
            scripts.append((int(match.group(1)), match.group(2)))
        else:
            strangers.append(name)
    if strangers:
        raise ConfigError('%s is not a migrations directory: it holds Python files that are not '
                          'NNNN_slug.py scripts (%s%s)' % (directory, ', '.join(strangers[:3]),
                                                          ', ...' if len(strangers) > 3 else ''))
    return scripts


def _used_numbers(directory):
    # Any NNNN_ entry counts (0006_x.py.disabled too): a number is never reused.
    return [int(m.group(1)) for m in map(NUMBERED.match, os.listdir(directory)) if m]


def next_names(directory, slug, count=1):
    """The names of the next ``count`` scripts: ``[NNNN_slug, NNNN+1_slug_indexes]``."""
    check_slug(slug)
    scripts = check_directory(directory, writing=True)
    for number, existing in scripts:
        if existing == slug or (count > 1 and existing == slug + '_indexes'):
            raise ConfigError('a script named %s already exists (%04d_%s.py); choose another '
                              'slug' % (existing, number, existing))
    first = max(_used_numbers(directory), default=0) + 1
    names = ['%04d_%s' % (first, slug)]
    if count > 1:
        names.append('%04d_%s_indexes' % (first + 1, slug))
    return names


def write_new(directory, files):
    """Create each ``(name, text)`` as ``directory/name.py``; all or none. Returns the paths."""
    written = []
    try:
        for name, text in files:
            path = os.path.join(directory, name + '.py')
            number = NUMBERED.match(name).group(1)
            taken = [n for n in os.listdir(directory) if n.startswith(number + '_')]
            if taken:
                raise ConfigError('the number %s is in use already (%s)' % (number, taken[0]))
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise ConfigError('%s exists already' % path) from None
            except OSError as exc:
                raise ConfigError('cannot write %s: %s' % (path, exc.strerror)) from None
            written.append(path)
            with os.fdopen(fd, 'w', encoding='utf-8') as fh:
                fh.write(text)
    except BaseException:
        for path in written:
            os.unlink(path)
        raise
    return written

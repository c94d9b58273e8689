"""How the CLI prints: lines or one JSON object, colour only on a terminal without NO_COLOR."""
import json
import os
import sys
import time

from ..exceptions import one_line

__all__ = ['Output', 'OK', 'PENDING', 'ERROR', 'TERMINAL_LIMIT', 'PROGRESS_EVERY', 'plural',
           'progress_line', 'progress_event', 'one_line']

OK, PENDING, ERROR = 0, 1, 2
TERMINAL_LIMIT = 50  # Rows `list` shows on a terminal unless --limit or --all says otherwise.
PROGRESS_EVERY = 5.0  # Seconds between two progress lines off a terminal (a CI log, a file).


class Output:
    """Where and how to print: colour only on a terminal without NO_COLOR."""

    def __init__(self, stream, as_json):
        self.stream = stream
        self.as_json = as_json
        terminal = hasattr(stream, 'isatty') and stream.isatty()
        self.color = (not as_json and not os.environ.get('NO_COLOR')
                      and os.environ.get('TERM') != 'dumb' and terminal)
        # A progress line, rewritten in place: only for a person watching (not --json, not a
        # pipe or a file, where it would be noise).
        self.live = terminal and not as_json
        self._shown = 0  # Length of the progress line on screen (0: none).
        self.closed = False  # The reader went away (a broken pipe).
        self._last = 0.0
        self._logged = time.monotonic()  # When a progress line was last logged (off a terminal).
        self._stderr_gone = False  # stderr's reader went away: log lines are dropped.

    def paint(self, text, code):
        return '\033[%sm%s\033[0m' % (code, text) if self.color else text

    def line(self, text=''):
        self.clear_progress()
        self._write(text.rstrip())

    def progress(self, text, final=False):
        """Show ``text`` as the progress line (at most ten times a second, unless ``final``)."""
        now = time.monotonic()
        if not self.live or (not final and now - self._last < 0.1):
            return
        self._last = now
        self._raw('\r%s%s' % (text, ' ' * max(self._shown - len(text), 0)))
        self._shown = len(text)

    def due(self):
        """Off a terminal: is a progress line due (PROGRESS_EVERY seconds since the last one,
        or since the command began)? A short run logs none."""
        now = time.monotonic()
        if now - self._logged < PROGRESS_EVERY:
            return False
        self._logged = now
        return True

    def event(self, data):
        """One JSON object on a line of stderr (with --json, stdout holds the result)."""
        self._stderr(json.dumps(data, sort_keys=True))

    def _stderr(self, text):
        """A line on stderr, as a log: never on stdout (a closed stderr is no stream, and
        print would fall back to stdout, breaking --json's one object), and a reader that went
        away stops the lines, never the command."""
        if sys.stderr is None or self._stderr_gone:
            return
        try:
            print(text, file=sys.stderr, flush=True)
        except (BrokenPipeError, ValueError, OSError):
            self._stderr_gone = True

    def clear_progress(self):
        if self._shown:
            self._raw('\r%s\r' % (' ' * self._shown))
            self._shown = 0

    def _raw(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            pass

    def ask(self, question):
        """Ask a yes/no question on the terminal (stdout, not input()'s stderr); True for yes.
        End of input is no."""
        self.clear_progress()
        self._raw('%s [y/N] ' % question)
        answer = sys.stdin.readline()
        return answer.strip().lower() in ('y', 'yes')

    def raw_line(self, text, end='\n', flush=False):
        """``text`` as it is (a streamed JSON value keeps its spacing); buffered unless
        ``flush``: a listing writes one a row."""
        self._write(text, end, flush)

    def json(self, payload):
        self._write(json.dumps(payload, indent=2, default=str))

    def _write(self, text, end='\n', flush=True):
        # A reader that went away (`modelstore migrate | head`) must not abort a run: this is
        # called from inside the migration lock, where an exception would roll it back.
        try:
            print(text, file=self.stream, end=end, flush=flush)
        except BrokenPipeError:
            self.closed = True  # (A listing stops reading rows nobody will see.)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())


PACES = {'full': 'nobody waiting', 'writers': 'yielding to writers', 'offline': 'offline'}


def progress_line(progress):
    """'0010_x: 412,000 of 1,000,000 rows (41%), 35,200 rows/s, 17 s left; batches of 2,400
    rows, 20 ms apart (yielding to writers)'."""
    if progress.total:
        done = '%s of %s rows (%d%%)' % (format(progress.rows, ','), format(progress.total, ','),
                                          100 * progress.rows // progress.total)
    else:
        done = '%s rows' % format(progress.rows, ',')
    left = progress.left
    pace = '' if progress.size is None else '; batches of %s rows%s%s' % (
        format(progress.size, ','), '' if progress.pause is None
        else ', back to back' if progress.pause == 0
        else ', %d ms apart' % round(progress.pause * 1000),
        ' (%s)' % PACES[progress.pace] if progress.pace in PACES else '')
    return '  %s: %s, %s rows/s%s%s' % (progress.name, done, format(round(progress.rate), ','),
                                        '' if left is None else ', %s left' % _duration(left),
                                        pace)


def progress_event(progress):
    """The progress line as a JSON object (``--json`` off a terminal, on stderr)."""
    left = progress.left
    return {'event': 'progress', 'script': progress.name, 'rows': progress.rows,
            'total': progress.total, 'batches': progress.batches,
            'elapsed': round(progress.elapsed, 3), 'rows_per_second': round(progress.rate, 1),
            'seconds_left': None if left is None else round(left, 1),
            'batch_size': progress.size,
            'pause': None if progress.pause is None else round(progress.pause, 4),
            'pace': progress.pace}


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return '%d s' % seconds
    if seconds < 3600:
        return '%d min %02d s' % divmod(seconds, 60)
    return '%d h %02d min' % divmod(seconds // 60, 60)


def plural(n, word):
    return '%d %s%s' % (n, word, '' if n == 1 else 's')



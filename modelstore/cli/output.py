"""How the CLI prints: lines or one JSON object, colour only on a terminal without NO_COLOR."""
import json
import os

from ..exceptions import one_line

__all__ = ['Output', 'OK', 'PENDING', 'ERROR', 'plural', 'one_line']

OK, PENDING, ERROR = 0, 1, 2


class Output:
    """Where and how to print: colour only on a terminal without NO_COLOR."""

    def __init__(self, stream, as_json):
        self.stream = stream
        self.as_json = as_json
        self.color = (not as_json and not os.environ.get('NO_COLOR')
                      and os.environ.get('TERM') != 'dumb'
                      and hasattr(stream, 'isatty') and stream.isatty())

    def paint(self, text, code):
        return '\033[%sm%s\033[0m' % (code, text) if self.color else text

    def line(self, text=''):
        self._write(text.rstrip())

    def json(self, payload):
        self._write(json.dumps(payload, indent=2, default=str))

    def _write(self, text):
        # A reader that went away (`modelstore migrate | head`) must not abort a run: this is
        # called from inside the migration lock, where an exception would roll it back.
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())


def plural(n, word):
    return '%d %s%s' % (n, word, '' if n == 1 else 's')



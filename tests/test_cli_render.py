"""The CLI's shape: a command returns a result and prints nothing of it; one renderer prints
any result, as text or as JSON, and what it prints is what `modelstore <command>` prints."""
import io
import json

import pytest

from modelstore.cli import Output, results
from modelstore.cli.parser import build_parser
from modelstore.cli.render import TEXT, render


def test_every_result_type_has_a_text_formatter_and_a_json_form():
    types = [getattr(results, name) for name in results.__all__ if name != 'columns']
    for kind in types:
        if kind is results.Listing:  # Streamed as it is read (render_listing).
            continue
        assert kind in TEXT, kind.__name__
        assert callable(getattr(kind, 'as_json', None)), kind.__name__


@pytest.mark.parametrize('argv, kind', [
    (['status'], results.Status), (['history'], results.History),
    (['check'], results.Check), (['migrate'], results.Run)])
@pytest.mark.parametrize('as_json', [False, True])
def test_a_command_returns_its_result_and_render_prints_what_the_cli_prints(
        cli, db_url, argv, kind, as_json):
    cli('migrate', '--database', db_url)  # A second migrate: nothing to do, the same twice.
    flags = ['--json'] if as_json else []
    code, expected, _ = cli(*argv, '--database', db_url, *flags)
    args = build_parser().parse_args(argv + ['--database', db_url] + flags)
    stream = io.StringIO()
    out = Output(stream, as_json)
    result = args.func(args, out)
    if kind is not results.Run or as_json:  # (migrate's text streams a header first.)
        assert stream.getvalue() == ''
    assert isinstance(result, kind)
    assert render(out, result) == code
    assert stream.getvalue() == expected
    if as_json:
        assert json.loads(stream.getvalue()) == json.loads(json.dumps(result.as_json(),
                                                                      default=str))

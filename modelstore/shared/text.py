"""Names from the filesystem and the database, shown on a terminal without harm."""

__all__ = ['shown', 'utf8', 'printable']


def utf8(text):
    """``text`` (a name from the filesystem) is valid UTF-8, so a row can hold it."""
    try:
        text.encode('utf-8')
        return True
    except UnicodeEncodeError:
        return False


def shown(text):
    """``text`` printable: a name that is not UTF-8 (surrogate-escaped) with its bytes as \\x..,
    and control characters (an ESC that would drive the terminal) escaped as ``repr`` does."""
    text = text if isinstance(text, str) else str(text)
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        text = text.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    if text.isprintable():
        return text
    return ''.join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def printable(text):
    """``text`` with every character that is not printable written as its escape (``\\n``):
    what a generated script's comments and the CLI's reports of them show."""
    return ''.join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))

"""The layers the registry and the engine share: where a URL points (``urls``), opening a
database with modelstore's settings (``database``), files beside it (``files``), the models
(``models``), and table shapes from introspection (``shape``). What differs by backend is
``modelstore.dialects`` (the same layer, below this package: nothing there imports it). The
field types are ``modelstore.fields`` (the same layer), where migration scripts import them.
Nothing here imports the registry, the engine or the CLI.
"""

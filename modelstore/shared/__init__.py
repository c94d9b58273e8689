"""The layers the registry and the engine share: where a URL points (``urls``), opening a
database with modelstore's settings (``database``), files beside it (``files``), driver errors
by code (``dberrors``), the models (``models``), and table shapes from introspection
(``shape``). The field types are ``modelstore.fields`` (the same layer), where migration scripts
import them. Nothing here imports the registry, the engine or the CLI.
"""

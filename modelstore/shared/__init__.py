"""The layers the registry and the engine share, above the dialects.

Where a URL points (``urls``), opening a database with modelstore's settings (``database``), files
beside it (``files``), the models (``models``), table shapes from introspection (``shape``),
acting inside a directory tree (``confine``) and names shown on a terminal (``text``). What
differs by backend is ``modelstore.dialects``, the layer below (nothing there imports this
package). The field types are ``modelstore.fields`` (the same layer), where migration scripts
import them. Nothing here imports the registry, the engine or the CLI.
"""

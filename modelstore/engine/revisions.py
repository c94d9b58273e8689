"""Earlier texts of the shipped scripts that are still what was applied.

A shipped script's text is its identity: an applied script whose file changed is refused
(ChecksumMismatch). When a new backend arrives, a shipped script may need a branch for it that
changes nothing on the backends it ran on before (modelstore 0.x's MySQL support: 0001, 0008,
0009 and 0010 gained ``if is_mysql(db):`` paths). Each such revision lists the checksums of the
texts it replaces here, so a database migrated by an earlier release is not told its scripts
were edited. Only the shipped directory's scripts are matched against this list; a project's
own scripts never are. A revision that changes what a script does on a backend it already ran
on is a new script, never an entry here.
"""
__all__ = ['EARLIER']

# script name -> checksums of its earlier, equivalent texts (newest last)
EARLIER = {
    # MySQL/MariaDB: key text columns are VARCHAR(255) there (TEXT cannot be indexed).
    '0001_initial': (
        '7894ece87ae1a09360d7cee3104b7337fd8a9cb0fb516a60a4be713cc520b6b9',),
    '0008_model_versions': (
        '30e51b8bd98773d5c2b3545db897a0e0f1f657bca83f8e745213ed8fa0e13619',),
    # MySQL/MariaDB: a plain unique index (NULLs never collide there); no partial indexes.
    '0009_model_version_index': (
        '9d939c39d1086409bbdad6143fb755bde6ce9ff7dcfa7498125723b930655a17',),
    # MySQL/MariaDB: its own triggers and upserts.
    '0010_number_model_versions': (
        '12ed5919cf2a7f2860a0c11f6845356e3f19287f224ab0ae31a1d7d288da5f37',),
}

"""The ``virtkit`` command line: virsh's commands and output, plus JSON and a shell.

``virtkit [OPTIONS] COMMAND [ARGS...]`` runs one command, ``virtkit [OPTIONS]
'CMD1; CMD2'`` a sequence, and ``virtkit`` alone an interactive shell. The
entry point is :func:`virtkit.cli.main.main`; the command table is in
:mod:`virtkit.cli.commands`. Modules here import lazily: start-up time is a
feature.
"""

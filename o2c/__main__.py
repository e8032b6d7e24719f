"""``python -m o2c``: the same as the ``o2c`` command."""

from o2c.cli import main

main()
